"""Precision-recall curves and average precision (VOC 2007 11-point, VOC 2010+ all-point, COCO 101-point).

All functions are ``jax.numpy`` programs: they run eagerly on numpy inputs and also under ``jit``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxvision._checks import check_choice, check_rank, check_same_leading

__all__ = ["precision_recall_curve", "average_precision", "AP_METHODS"]

AP_METHODS = ("voc07", "voc", "coco")


def precision_recall_curve(scores, is_tp, num_positives, valid=None):
    """Cumulative precision/recall over detections ranked by descending score.

    Ties keep their input order (stable sort). ``precision = tp / max(tp + fp, eps)`` and
    ``recall = tp / num_positives`` as in the VOC devkit. Entries with ``valid=False`` (padding) and detections
    that are neither TP nor FP (e.g. matched to a *difficult* object; pass them as invalid) are sorted last and
    repeat the final value, so they add nothing to :func:`average_precision`.

    Args:
      scores: ``[N]`` float confidences.
      is_tp: ``[N]`` bool, True for true positives (False = false positive).
      num_positives: scalar int, number of positive ground-truth objects (> 0 for a meaningful recall).
      valid: optional ``[N]`` bool mask.

    Returns:
      ``(precision [N], recall [N], sorted_scores [N])`` float32 (float64 with x64), in ranked order.
    """
    check_rank("scores", scores, 1, "[N]")
    check_same_leading("scores", scores, "is_tp", is_tp)
    scores = jnp.asarray(scores)
    is_tp = jnp.asarray(is_tp, bool)
    valid = jnp.ones(scores.shape, bool) if valid is None else jnp.asarray(valid, bool)
    key = jnp.where(valid, -scores, jnp.inf)
    order = jnp.argsort(key, stable=True)
    tp = jnp.cumsum((is_tp & valid)[order])
    fp = jnp.cumsum((~is_tp & valid)[order])
    dtype = jnp.result_type(scores.dtype, jnp.float32)
    tp, fp = tp.astype(dtype), fp.astype(dtype)
    recall = tp / jnp.asarray(num_positives, dtype)
    precision = tp / jnp.maximum(tp + fp, jnp.finfo(dtype).eps)
    # padding rows repeat the last valid value (tp, fp frozen) except before any valid entry
    return precision, recall, scores[order]


def _envelope(precision):
    """Monotone (non-increasing from the right) envelope: ``max(precision[i:])``."""
    return lax.cummax(precision, axis=precision.ndim - 1, reverse=True)


def average_precision(recall, precision, method: str = "voc"):
    """Area under a precision-recall curve.

    Args:
      recall: ``[..., N]`` non-decreasing recall values (e.g. from :func:`precision_recall_curve`).
      precision: ``[..., N]`` matching precision values.
      method: ``'voc07'`` 11-point interpolated AP (mean over recall 0, 0.1, ..., 1 of the max precision at
        recall >= r); ``'voc'`` all-point AP (VOC 2010+: exact area under the monotone envelope);
        ``'coco'`` 101-point AP (envelope read at ``searchsorted(recall, linspace(0, 1, 101), 'left')``,
        0 beyond the last recall, as COCOeval.accumulate).

    Returns:
      ``[...]`` AP in [0, 1]. float64 numpy inputs are evaluated in float64 (exact devkit/COCO comparisons,
      e.g. recall 0.3 vs the 11-point threshold 0.30000000000000004).
    """
    check_choice("method", method, AP_METHODS)
    if all(isinstance(x, np.ndarray) and x.dtype == np.float64 for x in (recall, precision)):
        with jax.enable_x64(True):  # float64 numpy in -> float64 out, like the devkit / pycocotools
            return _average_precision(recall, precision, method)
    return _average_precision(recall, precision, method)


def _average_precision(recall, precision, method):
    recall, precision = jnp.asarray(recall), jnp.asarray(precision)
    if recall.shape != precision.shape or recall.ndim == 0:
        raise ValueError(f"recall and precision: expected equal shapes [..., N], got {recall.shape} and "
                         f"{precision.shape}")
    dtype = jnp.result_type(recall.dtype, precision.dtype, jnp.float32)
    recall, precision = recall.astype(dtype), precision.astype(dtype)
    if method == "voc07":
        points = jnp.asarray(np.arange(0.0, 1.1, 0.1), dtype)  # the devkit's 11 points
        hit = recall[..., None, :] >= points[:, None]  # [..., 11, N]
        best = jnp.max(jnp.where(hit, precision[..., None, :], 0.0), axis=-1)
        return jnp.sum(best / 11.0, axis=-1)
    env = _envelope(precision)
    if method == "voc":
        prev = jnp.concatenate([jnp.zeros_like(recall[..., :1]), recall[..., :-1]], axis=-1)
        return jnp.sum((recall - prev) * env, axis=-1)
    thresholds = jnp.asarray(np.linspace(0.0, 1.0, 101), dtype)
    n = recall.shape[-1]
    search = jax.vmap(lambda r: jnp.searchsorted(r, thresholds, side="left"))
    idx = search(recall.reshape(-1, n)).reshape(recall.shape[:-1] + (101,))
    q = jnp.where(idx < n, jnp.take_along_axis(env, jnp.minimum(idx, n - 1), axis=-1), 0.0)
    return jnp.mean(q, axis=-1)
