"""PASCAL VOC detection AP following the devkit's ``voc_eval`` rules, on padded fixed-shape arrays.

Rules (per class): detections are visited by descending score; each takes the same-class GT of its image with
the highest IoU (first on ties). If that IoU passes the threshold: a *difficult* GT makes the detection neither
TP nor FP; an unclaimed GT makes it a TP (and claims it); an already-claimed GT makes it a FP (duplicate) even if
another GT would also pass. Below the threshold it is a FP. Difficult GT are left out of the positive count.

Flags: ``strict=True`` uses the devkit's ``IoU > threshold`` (default ``>=``); ``plus_one=True`` uses its
``+1``-pixel box widths/heights (integer pixel indices); the default is continuous coordinates like the rest of
jaxvision. Score ties are ranked in input order (image-major, then detection index); the devkit's unstable
``np.argsort`` leaves that order unspecified.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxvision._checks import check_choice, check_last_dim, check_rank
from jaxvision.metrics.detection.precision_recall import average_precision
from jaxvision.ops import box_iou

__all__ = ["evaluate_voc", "voc_match", "match_float64", "VocResult", "voc_ap_from_matches"]


def _iou_plus_one(boxes1, boxes2):
    """The devkit's IoU with +1-pixel extents: ``[N, 4] x [M, 4] -> [N, M]``."""
    lt = jnp.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = jnp.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = jnp.maximum(rb - lt + 1.0, 0.0)
    inter = wh[..., 0] * wh[..., 1]
    a1 = (boxes1[:, 2] - boxes1[:, 0] + 1.0) * (boxes1[:, 3] - boxes1[:, 1] + 1.0)
    a2 = (boxes2[:, 2] - boxes2[:, 0] + 1.0) * (boxes2[:, 3] - boxes2[:, 1] + 1.0)
    union = a1[:, None] + a2[None, :] - inter
    return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1.0), 0.0)


def _match_image(boxes, scores, labels, valid, gt_boxes, gt_labels, gt_valid, gt_difficult, threshold, strict,
                 plus_one):
    iou = _iou_plus_one(boxes, gt_boxes) if plus_one else box_iou(boxes, gt_boxes)  # [D, G]
    same = (labels[:, None] == gt_labels[None, :]) & gt_valid[None, :]
    iou = jnp.where(same, iou, -1.0)
    best = jnp.argmax(iou, axis=1)  # first max, as np.argmax
    ov = jnp.max(iou, axis=1)
    hit = (ov > threshold) if strict else (ov >= threshold)
    hit = hit & jnp.any(same, axis=1)
    order = jnp.argsort(jnp.where(valid, -scores, jnp.inf), stable=True)

    def step(claimed, d):
        j, h, ok = best[d], hit[d], valid[d]
        diff = gt_difficult[j]
        tp = ok & h & ~diff & ~claimed[j]
        fp = ok & ~(h & diff) & ~tp
        claimed = claimed.at[j].set(claimed[j] | tp)
        return claimed, (tp, fp)

    _, (tp, fp) = lax.scan(step, jnp.zeros(gt_boxes.shape[0], bool), order)
    inv = jnp.argsort(order)
    return tp[inv], fp[inv]


@partial(jax.jit, static_argnames=("strict", "plus_one"))
def voc_match(pred_boxes, pred_scores, pred_labels, pred_valid, gt_boxes, gt_labels, gt_valid, gt_difficult,
              iou_threshold=0.5, strict: bool = False, plus_one: bool = False):
    """Devkit matching for a batch of images.

    Args:
      pred_boxes: ``[B, D, 4]`` float xyxy pixels. pred_scores: ``[B, D]`` float. pred_labels: ``[B, D]`` int.
      pred_valid: ``[B, D]`` bool. gt_boxes: ``[B, G, 4]`` xyxy. gt_labels: ``[B, G]`` int.
      gt_valid: ``[B, G]`` bool. gt_difficult: ``[B, G]`` bool.
      iou_threshold: scalar. strict: use ``>`` (devkit). plus_one: +1-pixel extents (devkit).

    Returns:
      ``(tp [B, D] bool, fp [B, D] bool)``; a detection matched to a difficult GT is neither.
    """
    fn = partial(_match_image, threshold=iou_threshold, strict=strict, plus_one=plus_one)
    return jax.vmap(fn)(pred_boxes, pred_scores, pred_labels, pred_valid, gt_boxes, gt_labels, gt_valid,
                        gt_difficult)


def match_float64(pred_boxes, pred_scores, pred_labels, pred_valid, gt_boxes, gt_labels, gt_valid, gt_difficult,
                  iou_threshold=0.5, strict=False, plus_one=False):
    """:func:`voc_match` on host arrays in float64 (like the devkit's numpy), returning numpy ``(tp, fp)``."""
    with jax.enable_x64(True):
        tp, fp = voc_match(np.asarray(pred_boxes, np.float64), np.asarray(pred_scores, np.float64),
                           np.asarray(pred_labels, np.int32), np.asarray(pred_valid, bool),
                           np.asarray(gt_boxes, np.float64), np.asarray(gt_labels, np.int32),
                           np.asarray(gt_valid, bool), np.asarray(gt_difficult, bool), float(iou_threshold),
                           strict=strict, plus_one=plus_one)
        return np.asarray(tp), np.asarray(fp)


@dataclass
class VocResult:
    """Result of :func:`evaluate_voc`.

    Attributes:
      ap: ``[C]`` float64 AP per class (NaN for a class without non-difficult GT).
      map: mean AP over classes with GT.
      precision, recall: per-class ``[n_c]`` float64 curves (ranked detections of that class).
      num_positives: ``[C]`` int64 non-difficult GT per class.
      method: 'voc07' or 'voc'.
    """

    ap: np.ndarray
    map: float
    precision: list
    recall: list
    num_positives: np.ndarray
    method: str


def voc_ap_from_matches(scores, labels, tp, fp, num_positives, method: str = "voc") -> VocResult:
    """PR curves and AP per class from flat match flags (detections that are neither TP nor FP are dropped).

    Args:
      scores: ``[N]`` float. labels: ``[N]`` int class index. tp, fp: ``[N]`` bool.
      num_positives: ``[C]`` int, non-difficult GT per class.
      method: 'voc07' or 'voc' (see :func:`average_precision`).
    """
    check_choice("method", method, ("voc07", "voc"))
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
    tp, fp = np.asarray(tp, bool), np.asarray(fp, bool)
    npos = np.asarray(num_positives, np.int64)
    keep = tp | fp
    aps, precs, recs = np.full(len(npos), np.nan), [], []
    for c in range(len(npos)):
        sel = np.flatnonzero(keep & (labels == c))
        order = sel[np.argsort(-scores[sel], kind="stable")]
        t = np.cumsum(tp[order]).astype(np.float64)
        f = np.cumsum(fp[order]).astype(np.float64)
        rec = t / max(npos[c], 1)
        prec = t / np.maximum(t + f, np.finfo(np.float64).eps)
        precs.append(prec)
        recs.append(rec)
        if npos[c] > 0:
            with jax.enable_x64(True):  # float64 like the devkit: recall 0.3 vs the 11-point 0.30000000000000004
                aps[c] = float(average_precision(rec, prec, method)) if len(order) else 0.0
    valid = npos > 0
    return VocResult(aps, float(np.mean(aps[valid])) if valid.any() else float("nan"), precs, recs, npos, method)


def _valid_mask(name, valid, shape):
    if valid is None:
        return np.ones(shape, bool)
    valid = np.asarray(valid)
    if valid.shape == shape[:1] and np.issubdtype(valid.dtype, np.integer):  # counts [B]
        return np.arange(shape[1])[None, :] < valid[:, None]
    if valid.shape != shape:
        raise ValueError(f"{name}: expected bool {list(shape)} or int counts [{shape[0]}], got {valid.shape}")
    return valid.astype(bool)


def _pad1(boxes, scores, labels, valid, extra=None):
    """Give a zero-size box axis one invalid entry, so the matching program has a non-empty GT/detection axis."""
    boxes = np.asarray(boxes, np.float64)
    if boxes.shape[1] > 0:
        return (boxes, scores, labels, valid) if extra is None else (boxes, scores, labels, valid, extra)
    b = boxes.shape[0]
    out = (np.zeros((b, 1, 4), np.float64), np.zeros((b, 1), np.float64), np.full((b, 1), -1, np.int32),
           np.zeros((b, 1), bool))
    return out if extra is None else out + (np.zeros((b, 1), bool),)


def evaluate_voc(pred_boxes, pred_scores, pred_labels, gt_boxes, gt_labels, gt_difficult=None, *,
                 pred_valid=None, gt_valid=None, num_classes: int | None = None, iou_threshold: float = 0.5,
                 method: str = "voc", strict: bool = False, plus_one: bool = False) -> VocResult:
    """PASCAL VOC per-class AP and mAP over a data set of padded predictions and targets.

    Args:
      pred_boxes: ``[B, D, 4]`` float xyxy absolute pixels. pred_scores: ``[B, D]`` float.
      pred_labels: ``[B, D]`` int class index in ``[0, num_classes)``.
      gt_boxes: ``[B, G, 4]`` float xyxy pixels. gt_labels: ``[B, G]`` int (-1 = padding).
      gt_difficult: optional ``[B, G]`` bool.
      pred_valid: optional ``[B, D]`` bool or ``[B]`` int counts (a ``Detections.num_valid``).
      gt_valid: optional ``[B, G]`` bool; default ``gt_labels >= 0``.
      num_classes: C; default ``max label + 1``.
      iou_threshold: match threshold, default 0.5. method: 'voc' (all-point, 2010+) or 'voc07' (11-point).
      strict: devkit ``IoU > threshold``. plus_one: devkit +1-pixel convention.

    Returns:
      :class:`VocResult`.
    """
    check_choice("method", method, ("voc07", "voc"))
    check_rank("pred_boxes", pred_boxes, 3, "[B, D, 4]")
    check_last_dim("pred_boxes", pred_boxes, 4)
    check_rank("gt_boxes", gt_boxes, 3, "[B, G, 4]")
    check_last_dim("gt_boxes", gt_boxes, 4)
    b, d = np.shape(pred_boxes)[:2]
    g = np.shape(gt_boxes)[1]
    for name, x, shp in (("pred_scores", pred_scores, (b, d)), ("pred_labels", pred_labels, (b, d)),
                         ("gt_labels", gt_labels, (np.shape(gt_boxes)[0], g))):
        if np.shape(x) != shp:
            raise ValueError(f"{name}: expected shape {list(shp)}, got {np.shape(x)}")
    if np.shape(gt_boxes)[0] != b:
        raise ValueError(f"gt_boxes: expected batch {b} like pred_boxes, got {np.shape(gt_boxes)[0]}")
    gt_labels = np.asarray(gt_labels)
    gt_valid = _valid_mask("gt_valid", gt_valid if gt_valid is not None else gt_labels >= 0, (b, g))
    pred_valid = _valid_mask("pred_valid", pred_valid, (b, d))
    difficult = np.zeros((b, g), bool) if gt_difficult is None else np.asarray(gt_difficult, bool)
    if difficult.shape != (b, g):
        raise ValueError(f"gt_difficult: expected shape {[b, g]}, got {difficult.shape}")
    pred_labels = np.asarray(pred_labels)
    if num_classes is None:
        num_classes = int(max(gt_labels[gt_valid].max(initial=-1), pred_labels[pred_valid].max(initial=-1))) + 1
    for name, x, m in (("pred_boxes", pred_boxes, pred_valid), ("pred_scores", pred_scores, pred_valid),
                       ("gt_boxes", gt_boxes, gt_valid)):
        if not np.isfinite(np.asarray(x)[m]).all():
            raise ValueError(f"{name}: expected finite values in valid entries")
    pred_boxes, pred_scores, pb_labels, pb_valid = _pad1(pred_boxes, pred_scores, pred_labels, pred_valid)
    gt_boxes_p, _, gt_labels_p, gt_valid_p, difficult_p = _pad1(gt_boxes, None, gt_labels, gt_valid, difficult)
    tp, fp = match_float64(pred_boxes, pred_scores, pb_labels, pb_valid, gt_boxes_p, gt_labels_p, gt_valid_p,
                           difficult_p, iou_threshold, strict, plus_one)
    tp, fp = tp[:, :d], fp[:, :d]
    pred_scores = np.asarray(pred_scores)[:, :d]
    pos = gt_valid & ~difficult
    npos = np.bincount(gt_labels[pos].astype(np.int64), minlength=num_classes)[:num_classes]
    return voc_ap_from_matches(np.asarray(pred_scores)[pred_valid], pred_labels[pred_valid],
                               tp[pred_valid], fp[pred_valid], npos, method)
