"""Training-region sampling of the proposal-based detectors (R-CNN, Fast R-CNN), fixed shapes, one image.

Each candidate (the image's proposals plus, as in both papers, its ground-truth boxes) is labelled by its best IoU
with a valid ground-truth box: foreground (that box's class) if ``IoU >= fg_iou``, background if
``bg_iou_low <= IoU < fg_iou``, ignored otherwise (and when it is padding). ``balanced_sample`` then draws at most
``num_samples`` candidates with up to ``positive_fraction`` foreground, and they are packed into the first slots of
a fixed ``[num_samples]`` output (unused slots are marked invalid).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvision.ops import balanced_sample, box_iou

BACKGROUND = 0  # the class index of background in the K + 1 way classifiers; object class c is c + 1


def sample_regions(key, proposals, proposal_mask, gt_boxes, gt_labels, gt_mask, num_samples: int,
                   positive_fraction: float = 0.25, fg_iou: float = 0.5, bg_iou_low: float = 0.0,
                   add_gt: bool = True) -> dict:
    """Sample the training regions of one image.

    Args:
      key: PRNG key.
      proposals: float [P, 4] xyxy px; proposal_mask: bool [P] (False: padding).
      gt_boxes: float [G, 4] xyxy px; gt_labels: int [G] 0-based classes; gt_mask: bool [G].
      num_samples: N, regions returned (static).
      positive_fraction: most foreground regions as a fraction of N.
      fg_iou: foreground threshold; bg_iou_low: background is ``[bg_iou_low, fg_iou)`` (R-CNN 0, Fast R-CNN 0.1).
      add_gt: also offer the valid ground-truth boxes as candidates.

    Returns:
      dict of 'boxes' float32 [N, 4], 'labels' int32 [N] (0 background, c + 1 object class c), 'gt_boxes'
      float32 [N, 4] (the matched ground truth; for background its best-overlapping box, unused), 'iou' float32
      [N] (best IoU), 'valid' bool [N] (a sampled region; invalid slots hold label 0 and must be masked).
    """
    proposals, proposal_mask, gt_boxes = jnp.asarray(proposals), jnp.asarray(proposal_mask, bool), jnp.asarray(gt_boxes)
    gt_labels, gt_mask = jnp.asarray(gt_labels), jnp.asarray(gt_mask, bool)
    cand = jnp.concatenate([proposals, gt_boxes], 0) if add_gt else proposals
    cand_mask = jnp.concatenate([proposal_mask, gt_mask], 0) if add_gt else proposal_mask
    cand = cand.astype(jnp.float32)
    iou = jnp.where(gt_mask[:, None], box_iou(gt_boxes.astype(jnp.float32), cand), -1.0)  # [G, P']
    best = jnp.max(iou, 0) if iou.shape[0] else jnp.full(cand.shape[:1], -1.0)
    match = jnp.argmax(iou, 0) if iou.shape[0] else jnp.zeros(cand.shape[:1], jnp.int32)
    fg = cand_mask & (best >= fg_iou)
    bg = cand_mask & (best < fg_iou) & (jnp.maximum(best, 0.0) >= bg_iou_low)
    codes = jnp.where(fg, match, jnp.where(bg, -1, -2)).astype(jnp.int32)
    pos, neg = balanced_sample(key, codes, num_samples, positive_fraction)
    chosen = pos | neg
    order = jnp.argsort(~chosen, stable=True)[:num_samples]  # chosen candidates first
    if order.shape[0] < num_samples:  # fewer candidates than slots: pad with the first (marked invalid)
        order = jnp.concatenate([order, jnp.zeros(num_samples - order.shape[0], order.dtype)])
    valid = chosen[order] & (jnp.arange(num_samples) < cand.shape[0])
    m = match[order]
    labels = jnp.where(valid & pos[order], gt_labels[m].astype(jnp.int32) + 1, BACKGROUND)
    return {"boxes": cand[order], "labels": labels.astype(jnp.int32),
            "gt_boxes": gt_boxes.astype(jnp.float32)[m], "iou": jnp.maximum(best[order], 0.0), "valid": valid}


def sample_batch(key, batch: dict, num_samples: int, **options) -> dict:
    """``sample_regions`` over a batch (``vmap``, one key per image): ``batch`` holds 'proposals' [B, P, 4],
    'proposal_mask' [B, P], 'boxes' [B, G, 4], 'labels' [B, G], 'mask' [B, G]; every output gains a B axis."""
    keys = jax.random.split(key, batch["proposals"].shape[0])
    fn = lambda k, p, pm, g, gl, gm: sample_regions(k, p, pm, g, gl, gm, num_samples, **options)  # noqa: E731
    return jax.vmap(fn)(keys, batch["proposals"], batch["proposal_mask"], batch["boxes"], batch["labels"],
                        batch["mask"])
