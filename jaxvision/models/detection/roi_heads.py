"""The RoI box head shared by the two-stage detectors (Fast R-CNN, Faster R-CNN): sampling, pooling, head, loss, decode.

Static-shape versions of torchvision's ``roi_heads.RoIHeads`` pieces (fixed ``S`` samples per image, masks for
padding), all per image and vmapped by the callers:

- ``sample_rois``: append the ground truth to the proposals, match (IoU >= ``fg_iou`` foreground, < ``bg_iou``
  background, optionally ignore below ``bg_iou_low`` as Fast R-CNN did), draw ``num_samples`` with at most
  ``positive_fraction`` foreground (``ops.balanced_sample``) and encode the foreground regression targets;
- ``pool_rois``: ``roi_align`` (or ``roi_pool``) of ``[B, R, 4]`` boxes on one feature map;
- ``classify_valid_rois``: pool + head at test time, on the CPU only on about as many rows as there are valid
  RoIs (most of a fixed-size proposal batch is padding);
- ``RoIBoxHead``: torchvision's ``TwoMLPHead`` + ``FastRCNNPredictor`` (class logits with background at 0,
  class-specific deltas for ``C + 1`` classes);
- ``box_head_loss``: ``fastrcnn_loss`` (cross-entropy over the sampled RoIs + smooth-L1 beta 1/9 of the true
  class's deltas on the foreground, divided by the number of sampled RoIs);
- ``decode_head``: softmax, class-specific ``BoxCoder`` decoding, clipping, tiny boxes and padding RoIs scored 0,
  background dropped -> ``(boxes [B, R, C, 4], scores [B, R, C])`` for ``multiclass_nms``.

Labels: the data's 0-based foreground labels ``l`` are head classes ``l + 1``; 0 is background.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision._checks import check_rank
from jaxvision.ops import BoxCoder, balanced_sample, box_iou, clip_boxes_to_image, match_boxes, roi_align, roi_pool
from jaxvision.ops.losses import smooth_l1, softmax_cross_entropy
from jaxvision.ops.matching import BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS

HEAD_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


class RoISamples(NamedTuple):
    """Fixed-size RoI samples of one image (or a batch, with a leading ``B``).

    Attributes:
        boxes: ``float32 [S, 4]`` xyxy px sampled RoIs (zeros where not ``valid``).
        labels: ``int32 [S]`` head class: 0 background, ``l + 1`` for data label ``l`` (0 where not valid).
        targets: ``float32 [S, 4]`` ``BoxCoder`` regression targets of the foreground RoIs (0 elsewhere).
        valid: ``bool [S]`` sampled slots (fewer than ``S`` when the image has too few candidates).
    """

    boxes: jax.Array
    labels: jax.Array
    targets: jax.Array
    valid: jax.Array


def valid_boxes(boxes, mask):
    """``mask`` without degenerate boxes (zero or negative width or height, non-finite): such ground truth is
    ignored (torchvision refuses it; a zero-size box would otherwise match every anchor at IoU 0)."""
    w, h = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    return mask & (w > 0) & (h > 0) & jnp.all(jnp.isfinite(boxes), axis=-1)


def match_proposals(proposals, proposal_valid, gt_boxes, gt_valid, fg_iou: float = 0.5, bg_iou: float = 0.5,
                    bg_iou_low: float = 0.0):
    """Match codes of candidate RoIs (torchvision ``assign_targets_to_proposals``; Fast R-CNN's background range).

    Args:
        proposals: ``[P, 4]`` xyxy px. proposal_valid: ``bool [P]`` (padding never matches: code -2).
        gt_boxes: ``[G, 4]`` xyxy px. gt_valid: ``bool [G]``.
        fg_iou: IoU >= this is foreground; bg_iou: IoU < this is background (between: ignored).
        bg_iou_low: background only from this IoU up (Fast R-CNN: 0.1); below it ignored (0: every IoU).

    Returns:
        int32 ``[P]``: matched ground-truth index, -1 background, -2 ignored.
    """
    iou = box_iou(gt_boxes, proposals)  # [G, P]
    matches = match_boxes(iou, gt_valid, high=fg_iou, low=bg_iou)
    if bg_iou_low > 0:
        best = jnp.max(jnp.where(gt_valid[:, None], iou, 0.0), axis=0)
        matches = jnp.where((matches == BELOW_LOW_THRESHOLD) & (best < bg_iou_low), BETWEEN_THRESHOLDS, matches)
    return jnp.where(proposal_valid, matches, BETWEEN_THRESHOLDS)


def sample_rois(key, proposals, proposal_valid, gt_boxes, gt_labels, gt_valid, *, num_samples: int = 512,
                positive_fraction: float = 0.25, fg_iou: float = 0.5, bg_iou: float = 0.5, bg_iou_low: float = 0.0,
                box_weights: Sequence[float] = HEAD_BOX_WEIGHTS, append_gt: bool = True) -> RoISamples:
    """Training RoIs of one image (torchvision ``RoIHeads.select_training_samples``), fixed size.

    Args:
        key: PRNG key (one per image).
        proposals: ``float32 [P, 4]`` xyxy px. proposal_valid: ``bool [P]``.
        gt_boxes: ``float32 [G, 4]``; gt_labels: ``int [G]`` 0-based; gt_valid: ``bool [G]`` (degenerate boxes
            are dropped, see ``valid_boxes``).
        num_samples: RoIs per image ``S`` (static; the output has ``min(S, P + G)`` slots).
        positive_fraction: at most this share of foreground.
        fg_iou, bg_iou, bg_iou_low: see ``match_proposals``.
        box_weights: ``BoxCoder`` weights of the targets.
        append_gt: add the ground-truth boxes to the candidates first (torchvision and Fast R-CNN do).

    Returns:
        ``RoISamples`` with ``S' = min(S, P (+ G))`` slots; the sampled ones are ``valid`` (in candidate order).
    """
    gt_valid = valid_boxes(gt_boxes, gt_valid)
    cand, cand_valid = proposals, proposal_valid
    if append_gt:
        cand = jnp.concatenate([proposals, gt_boxes.astype(proposals.dtype)], 0)
        cand_valid = jnp.concatenate([proposal_valid, gt_valid], 0)
    matches = match_proposals(cand, cand_valid, gt_boxes, gt_valid, fg_iou, bg_iou, bg_iou_low)
    pos, neg = balanced_sample(key, matches, int(num_samples), float(positive_fraction))
    k = min(int(num_samples), cand.shape[0])
    sel = pos | neg
    # top_k of a 0/1 vector returns the selected indices first, in index order (ties keep the lower index)
    _, idx = jax.lax.top_k(sel.astype(jnp.float32), k)
    valid = sel[idx]
    fg = pos[idx]
    m = jnp.maximum(matches[idx], 0)
    boxes = jnp.where(valid[:, None], cand[idx], 0.0)
    labels = jnp.where(fg, gt_labels[m].astype(jnp.int32) + 1, 0)
    # background / padding RoIs may face padded zero-size ground truth (-inf deltas): zero them first
    targets = jnp.where(fg[:, None], BoxCoder(tuple(box_weights)).encode(jnp.where(fg[:, None], boxes, 1.0),
                                                                           jnp.where(fg[:, None], gt_boxes[m], 1.0)),
                        0.0)
    return RoISamples(boxes, labels, targets, valid)


def pool_rois(features, rois, output_size: int = 7, spatial_scale: float = 1.0, sampling_ratio: int = 2,
              mode: str = "align"):
    """RoI features of a batch: ``features [B, H, W, C]``, ``rois [B, R, 4]`` xyxy image px -> ``[B, R, o, o, C]``.

    ``mode='align'``: ``roi_align`` (``aligned=False``, ``sampling_ratio``; torchvision ``MultiScaleRoIAlign`` on
    one level); ``'pool'``: ``roi_pool`` (Fast R-CNN).
    """
    check_rank("features", features, 4, "[B, H, W, C]")
    check_rank("rois", rois, 3, "[B, R, 4]")
    b, r = rois.shape[:2]
    index = jnp.repeat(jnp.arange(b, dtype=jnp.int32), r)
    out = _pool_flat(features, rois.reshape(-1, 4), index, output_size, spatial_scale, sampling_ratio, mode)
    return out.reshape(b, r, *out.shape[1:])


def _pool_flat(features, boxes, index, output_size: int = 7, spatial_scale: float = 1.0, sampling_ratio: int = 2,
               mode: str = "align"):
    """``pool_rois`` of ``boxes [N, 4]`` on the images ``index [N]`` -> ``[N, o, o, C]``."""
    if mode == "align":
        return roi_align(features, boxes, index, output_size, spatial_scale, sampling_ratio, aligned=False)
    if mode == "pool":
        return roi_pool(features, boxes, index, output_size, spatial_scale)
    raise ValueError(f"mode: expected 'align' or 'pool', got {mode!r}")


def bucket_sizes(num_rois: int, smallest: int = 4) -> tuple[int, ...]:
    """Row counts of ``classify_valid_rois``'s ``'bucketed'`` branches: ``smallest``, then growing by sqrt(2)
    (rounded up to multiples of 4), the last one ``num_rois``: ``4, 8, 12, 16, 24, 32, 48, 64, 92, ..., num_rois``."""
    if num_rois < 1 or smallest < 1:
        raise ValueError(f"num_rois, smallest: expected >= 1, got {num_rois}, {smallest}")
    sizes, s = [], float(smallest)
    while not sizes or sizes[-1] < num_rois:
        size = min(num_rois, -(-math.ceil(s - 1e-9) // 4) * 4)
        if not sizes or size > sizes[-1]:
            sizes.append(size)
        s *= math.sqrt(2.0)
    return tuple(sizes)


def classify_valid_rois(head_apply, features, rois, roi_valid, *, strategy: str | None = None, **pool_kwargs):
    """``head_apply(pool_rois(features, rois, **pool_kwargs))`` at test time, rows of padding RoIs zeroed.

    Args:
        head_apply: pure ``pooled [B, r, o, o, Cf] -> (class_logits [B, r, K], box_regression [B, r, K, 4])``.
        features: ``[B, H, W, Cf]``. rois: ``[B, R, 4]`` xyxy image px. roi_valid: ``bool [B, R]``.
        strategy: ``None`` (by platform, below), ``'bucketed'`` or ``'dense'`` to force one.
        pool_kwargs: ``pool_rois``'s ``output_size``, ``spatial_scale``, ``sampling_ratio``, ``mode``.

    Returns:
        ``(class_logits [B, R, K], box_regression [B, R, K, 4])``, zero where ``roi_valid`` is False.

    The RoI head of a fixed-shape predict runs on every proposal slot, and after the RPN's NMS most slots are
    padding (a dozen valid of 1000 is typical with random weights, a few hundred with trained ones).
    ``'bucketed'`` (the CPU's, chosen by ``lax.platform_dependent``) moves the valid RoIs of all images to the
    front (a stable sort of the ``B R`` slots), takes the smallest of ``bucket_sizes(B R)`` that holds them and
    runs the pooling and the head once on that many rows (``lax.switch``: one branch per size, compiled ahead),
    then puts the rows back in place. The head's first layer reads all its weights once per call (411 MB for
    ResNet-50's C5 head) and its FLOPs follow the rows, so one pass over at most sqrt(2) x the valid rows is the
    cheapest fixed-shape form. ``'dense'`` (accelerators, where a ``switch`` costs a host round trip) takes all
    RoIs at once. Valid rows agree between the two.
    """
    check_rank("rois", rois, 3, "[B, R, 4]")
    if roi_valid.shape != rois.shape[:2]:
        raise ValueError(f"roi_valid: expected shape {rois.shape[:2]} (rois' [B, R]), got {roi_valid.shape}")
    dense = functools.partial(_classify_dense, head_apply, pool_kwargs)
    bucketed = functools.partial(_classify_bucketed, head_apply, pool_kwargs)
    if strategy is None:
        return jax.lax.platform_dependent(features, rois, roi_valid, cpu=bucketed, default=dense)
    if strategy not in ("bucketed", "dense"):
        raise ValueError(f"strategy: expected None, 'bucketed' or 'dense', got {strategy!r}")
    return (bucketed if strategy == "bucketed" else dense)(features, rois, roi_valid)


def _classify_dense(head_apply, pool_kwargs, features, rois, roi_valid):
    logits, deltas = head_apply(pool_rois(features, rois, **pool_kwargs))
    return jnp.where(roi_valid[..., None], logits, 0.0), jnp.where(roi_valid[..., None, None], deltas, 0.0)


def _classify_bucketed(head_apply, pool_kwargs, features, rois, roi_valid):
    b, r = rois.shape[:2]
    valid = roi_valid.reshape(-1)
    order = jnp.argsort((~valid).astype(jnp.int32), stable=True)  # the valid RoIs of all images first, in order
    front_rois, front_image = rois.reshape(-1, 4)[order], (order // r).astype(jnp.int32)

    def zeros():
        one_row = jax.ShapeDtypeStruct((1, 1, *_pooled_shape(features, pool_kwargs)), features.dtype)
        return tuple(jnp.zeros((b * r, *x.shape[2:]), x.dtype) for x in jax.eval_shape(head_apply, one_row))

    def first(size):
        def run():
            pooled = _pool_flat(features, front_rois[:size], front_image[:size], **pool_kwargs)
            slots, keep = order[:size], valid[order[:size]]
            outputs = (o[0] for o in head_apply(pooled[None]))
            return tuple(z.at[slots].set(jnp.where(keep.reshape(-1, *(1,) * (o.ndim - 1)), o, 0.0))
                         for z, o in zip(zeros(), outputs))
        return run

    sizes = bucket_sizes(b * r)
    count = jnp.sum(valid)
    index = jnp.where(count == 0, 0, 1 + jnp.searchsorted(jnp.asarray(sizes), count))
    out = jax.lax.switch(index, [zeros] + [first(s) for s in sizes])
    return tuple(x.reshape(b, r, *x.shape[1:]) for x in out)


def _pooled_shape(features, pool_kwargs) -> tuple[int, int, int]:
    o = pool_kwargs.get("output_size", 7)
    return o, o, features.shape[-1]


class RoIBoxHead(nn.Module):
    """torchvision ``TwoMLPHead`` + ``FastRCNNPredictor``: flatten, two ReLU FC layers, class and box outputs.

    Attributes:
        num_classes: foreground classes ``C`` (outputs ``C + 1``, background 0).
        representation_size: width of both FC layers (torchvision 1024).
        dtype: computation dtype.

    ``__call__(pooled [..., o, o, Cf]) -> (class_logits [..., C + 1], box_regression [..., C + 1, 4])``.
    """

    num_classes: int
    representation_size: int = 1024
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, pooled):
        x = pooled.reshape(*pooled.shape[:-3], -1)
        x = nn.relu(nn.Dense(self.representation_size, dtype=self.dtype, name="fc6")(x))
        x = nn.relu(nn.Dense(self.representation_size, dtype=self.dtype, name="fc7")(x))
        k = self.num_classes + 1
        logits = nn.Dense(k, dtype=self.dtype, kernel_init=nn.initializers.normal(0.01), name="cls_score")(x)
        deltas = nn.Dense(4 * k, dtype=self.dtype, kernel_init=nn.initializers.normal(0.001), name="bbox_pred")(x)
        return logits.astype(jnp.float32), deltas.astype(jnp.float32).reshape(*x.shape[:-1], k, 4)


def box_head_loss(class_logits, box_regression, labels, targets, valid, beta: float = 1.0 / 9):
    """torchvision ``fastrcnn_loss`` on fixed-size samples (all images together).

    Args:
        class_logits: ``[..., S, C + 1]``. box_regression: ``[..., S, C + 1, 4]``.
        labels, targets, valid: the ``RoISamples`` fields, ``[..., S]``, ``[..., S, 4]``, ``[..., S]``.
        beta: smooth-L1 beta (torchvision 1/9).

    Returns:
        ``(classification, box_regression)`` scalars: mean cross-entropy over valid samples; smooth-L1 sum over
        foreground samples (their class's deltas) / number of valid samples. Both 0 without valid samples.
    """
    n = jnp.maximum(jnp.sum(valid), 1).astype(jnp.float32)
    ce = softmax_cross_entropy(class_logits, labels)
    cls = jnp.sum(jnp.where(valid, ce, 0.0)) / n
    fg = valid & (labels > 0)
    pred = jnp.take_along_axis(box_regression, labels[..., None, None], axis=-2)[..., 0, :]  # [..., S, 4]
    box = jnp.sum(jnp.where(fg[..., None], smooth_l1(pred, targets, beta=beta), 0.0)) / n
    return cls, box


def decode_head(class_logits, box_regression, rois, roi_valid, image_hw, box_weights=HEAD_BOX_WEIGHTS,
                min_size: float = 1e-2):
    """Head outputs -> per-class boxes and scores (torchvision ``postprocess_detections`` before NMS).

    Args:
        class_logits: ``[B, R, C + 1]``. box_regression: ``[B, R, C + 1, 4]``. rois: ``[B, R, 4]`` xyxy px.
        roi_valid: ``bool [B, R]`` (padding RoIs get score 0). image_hw: (H, W) for clipping.
        box_weights: ``BoxCoder`` weights. min_size: boxes narrower or lower than this get score 0.

    Returns:
        ``(boxes [B, R, C, 4] clipped xyxy px, scores [B, R, C] softmax probabilities)`` without background.
    """
    boxes = BoxCoder(tuple(box_weights)).decode(rois[:, :, None, :], box_regression)[:, :, 1:]
    boxes = clip_boxes_to_image(boxes, tuple(image_hw))
    scores = jax.nn.softmax(class_logits, axis=-1)[..., 1:]
    big = ((boxes[..., 2] - boxes[..., 0]) >= min_size) & ((boxes[..., 3] - boxes[..., 1]) >= min_size)
    return boxes, jnp.where(big & roi_valid[..., None], scores, 0.0)
