"""Non-maximum suppression with fixed output shapes: ``nms``, ``batched_nms`` and ``soft_nms``.

Greedy NMS (torchvision.ops.nms semantics): visit boxes in decreasing score order; keep a box unless a box
kept before it overlaps it with IoU > ``iou_threshold``. Results are padded index arrays, so everything runs
under ``jit`` and ``vmap`` (batch over images by vmapping the call).

Two algorithms give identical results; ``algorithm='auto'`` picks one by the platform the call is compiled for
(``lax.platform_dependent``):

* ``'tiled'`` (CPU): a tiled walk with many cheap sequential steps and little memory,
  :mod:`jaxvision.ops.suppression_tiled`.
* ``'fixed_point'`` (GPU, TPU): a packed overlap matrix and a fixed-point iteration that takes (longest
  suppression chain + 1) wide steps, :mod:`jaxvision.ops.suppression_fixed_point`.

Under ``vmap`` a ``custom_vmap`` rule runs either algorithm once for the whole batch (JAX's generic while-loop
batching would turn every slice into a gather).

IoU is computed in float32 exactly as torchvision's CPU kernel (``inter / (area_i + area_j - inter)``). A
concrete (Python number) threshold is compared the way C++ compares a float with a double, so kept sets match
torchvision at every threshold; a traced threshold is compared in float32.
"""
from __future__ import annotations

import functools
import numbers

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_batching import custom_vmap

from jaxvision._checks import check_choice, check_rank, check_same_leading
from jaxvision.ops.suppression_fixed_point import fixed_point_nms
from jaxvision.ops.suppression_tiled import tiled_nms

ALGORITHMS = ("auto", "tiled", "fixed_point")


# --------------------------------------------------------------------------------------------- checks


def _check_boxes_scores(boxes, scores):
    check_rank("boxes", boxes, 2, "[N, 4]")
    if np.shape(boxes)[-1] != 4:
        raise ValueError(f"boxes: expected shape [N, 4], got {tuple(np.shape(boxes))}")
    check_rank("scores", scores, 1, "[N]")
    check_same_leading("boxes", boxes, "scores", scores)


def _check_threshold(name, value):
    """Concrete thresholds must be finite and >= 0; traced ones are used as given."""
    if isinstance(value, jax.core.Tracer):
        return
    v = np.asarray(value)
    if v.shape != ():
        raise ValueError(f"{name}: expected a scalar, got shape {v.shape}")
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"{name}: expected a finite value >= 0, got {value!r}")


def _output_size(max_output_size, n):
    if max_output_size is None:
        return n
    if not isinstance(max_output_size, numbers.Integral) or isinstance(max_output_size, bool):
        raise ValueError(f"max_output_size: expected a static int > 0 or None, got {max_output_size!r}")
    if max_output_size <= 0:
        raise ValueError(f"max_output_size: expected an int > 0, got {max_output_size}")
    return int(max_output_size)


def _float32_threshold(value):
    """float32 ``t`` with ``x > t  <=>  x > value`` for every float32 ``x`` (C++ float-vs-double compare)."""
    if isinstance(value, jax.core.Tracer):
        return jnp.asarray(value, jnp.float32)
    d = float(value)
    f = np.float32(d)
    if float(f) > d:
        f = np.nextafter(f, np.float32(-np.inf))
    return jnp.float32(f)


def _nms_images(boxes, scores, idxs, valid, thr, n_out, with_class, algorithm):
    """NMS for a batch of images (boxes ``[B, N, 4]``, scores/idxs/valid ``[B, N]``, thr ``[B]``) by the chosen
    algorithm; 'auto' resolves when the call is lowered: tiled on CPU, fixed point elsewhere."""
    tiled = functools.partial(tiled_nms, n_out=n_out, with_class=with_class)
    fixed_point = functools.partial(fixed_point_nms, n_out=n_out, with_class=with_class)
    if algorithm == "tiled":
        return tiled(boxes, scores, idxs, valid, thr)
    if algorithm == "fixed_point":
        return fixed_point(boxes, scores, idxs, valid, thr)
    return lax.platform_dependent(boxes, scores, idxs, valid, thr, cpu=tiled, default=fixed_point)


@functools.cache
def _single_image_fn(n_out, with_class, algorithm):
    """Jitted one-image NMS whose ``vmap`` runs the natively batched loops (shared loop counters) instead of
    JAX's generic while-loop batching (which turns every slice into a gather). Cached per static config, so
    eager calls compile once per input shape; the threshold is a traced float32 argument."""

    @custom_vmap
    def single(boxes, scores, idxs, valid, thr):
        out = _nms_images(boxes[None], scores[None], idxs[None], valid[None], thr[None], n_out, with_class, algorithm)
        return jax.tree.map(lambda x: x[0], out)

    @single.def_vmap
    def rule(axis_size, in_batched, boxes, scores, idxs, valid, thr):
        args = [
            x if b else jnp.broadcast_to(x, (axis_size,) + x.shape)
            for x, b in zip((boxes, scores, idxs, valid, thr), in_batched)
        ]
        return _nms_images(*args, n_out, with_class, algorithm), (True, True)

    return jax.jit(single)


def _run(boxes, scores, idxs, iou_threshold, max_output_size, valid, algorithm):
    n = boxes.shape[0]
    n_out = _output_size(max_output_size, n)
    if n == 0:
        return jnp.full((n_out,), -1, jnp.int32), jnp.int32(0)
    with_class = idxs is not None
    idxs = jnp.zeros((n,), jnp.int32) if idxs is None else idxs.astype(jnp.int32)
    thr = _float32_threshold(iou_threshold)
    boxes, scores = lax.stop_gradient(boxes), lax.stop_gradient(scores)  # integer outputs: no gradient
    return _single_image_fn(n_out, with_class, algorithm)(boxes, scores, idxs, valid, thr)


# ----------------------------------------------------------------------------------------------- public


def nms(boxes, scores, iou_threshold, max_output_size=None, score_threshold=None, *, algorithm="auto"):
    """Greedy non-maximum suppression (torchvision.ops.nms) with a fixed-size result.

    Args:
      boxes: ``[N, 4]`` xyxy boxes, absolute pixels, float32/bfloat16/float16 (IoU is computed in float32).
      scores: ``[N]`` float scores. NaN scores are never kept.
      iou_threshold: float >= 0; a box is dropped if it overlaps a higher-scoring kept box with IoU > this.
        A Python number is compared exactly as torchvision does (float32 IoU vs a double); a traced value
        is compared in float32. Either way the compiled program is shared across thresholds.
      max_output_size: static int > 0, length of the result (default N); at most this many boxes are kept.
      score_threshold: optional float; only boxes with ``score > score_threshold`` take part.
      algorithm: 'auto' (by platform: 'tiled' on CPU, 'fixed_point' on GPU/TPU), 'tiled' or 'fixed_point'.
        Both give the same result; they differ in speed and memory (module docstring).

    Returns:
      ``(indices, num_valid)``: int32 ``[max_output_size]`` indices into ``boxes`` of the kept boxes in
      decreasing score order (ties: lower index first), then padding -1; and the int32 scalar number of kept
      boxes. Only ``indices[:num_valid]`` are boxes. -1 is not safe as an index (JAX wraps it to the last
      box, so ``boxes[indices]`` silently repeats a box): gather with :func:`jaxvision.ops.take_valid`
      (``take_valid(boxes, indices)`` fills padding slots with zeros) and mask with ``indices >= 0``.
    """
    _check_boxes_scores(boxes, scores)
    _check_threshold("iou_threshold", iou_threshold)
    boxes, scores = jnp.asarray(boxes), jnp.asarray(scores)
    check_choice("algorithm", algorithm, ALGORITHMS)
    return _run(boxes, scores, None, iou_threshold, max_output_size, _above(scores, score_threshold), algorithm)


def _above(scores, score_threshold):
    """bool mask of the boxes that take part: all, or ``scores > score_threshold`` (a scalar)."""
    if score_threshold is None:
        return jnp.ones(scores.shape, bool)
    if not isinstance(score_threshold, jax.core.Tracer) and np.shape(score_threshold) != ():
        raise ValueError(f"score_threshold: expected a scalar, got shape {np.shape(score_threshold)}")
    return scores > score_threshold


def batched_nms(boxes, scores, idxs, iou_threshold, max_output_size=None, score_threshold=None, *,
                algorithm="auto"):
    """Class-aware NMS (torchvision.ops.batched_nms): boxes only suppress boxes with the same ``idxs``.

    Unlike torchvision's coordinate-offset trick, pairs of different classes are masked out of the IoU test,
    so low-precision (bfloat16/float16) boxes and huge coordinates stay exact.

    Args:
      boxes: ``[N, 4]`` xyxy boxes, absolute pixels, float32/bfloat16/float16.
      scores: ``[N]`` float scores. NaN scores are never kept.
      idxs: ``[N]`` int class (or image) id per box.
      iou_threshold: float >= 0.
      max_output_size: static int > 0, length of the result (default N).
      score_threshold: optional float; only boxes with ``score > score_threshold`` take part (the CPU's tiled
        walk then stops after them, so its cost follows the boxes above the threshold).
      algorithm: 'auto', 'tiled' or 'fixed_point', as in :func:`nms`.

    Returns:
      ``(indices, num_valid)`` as :func:`nms` (padding -1, see there how to use it safely): kept boxes of all
      classes together, decreasing score order.
    """
    _check_boxes_scores(boxes, scores)
    check_rank("idxs", idxs, 1, "[N]")
    check_same_leading("boxes", boxes, "idxs", idxs)
    _check_threshold("iou_threshold", iou_threshold)
    boxes, scores, idxs = jnp.asarray(boxes), jnp.asarray(scores), jnp.asarray(idxs)
    if not jnp.issubdtype(idxs.dtype, jnp.integer):
        raise ValueError(f"idxs: expected an integer array, got dtype {idxs.dtype}")
    check_choice("algorithm", algorithm, ALGORITHMS)
    return _run(boxes, scores, idxs, iou_threshold, max_output_size, _above(scores, score_threshold), algorithm)


def soft_nms(boxes, scores, sigma=0.5, iou_threshold=0.3, method="gaussian", score_threshold=0.001):
    """Soft-NMS (Bodla et al. 2017): decay the scores of overlapping boxes instead of dropping them.

    Repeatedly select the remaining box with the highest current score (ties: lower index), then multiply
    the score of every other remaining box by ``exp(-IoU^2 / sigma)`` ('gaussian') or by ``1 - IoU`` when
    ``IoU > iou_threshold`` ('linear'). A box whose score falls below ``score_threshold`` is discarded.

    Args:
      boxes: ``[N, 4]`` xyxy boxes, absolute pixels, float32/bfloat16 (IoU in float32).
      scores: ``[N]`` float scores (NaN scores are discarded).
      sigma: float > 0, Gaussian width.
      iou_threshold: float >= 0, overlap above which the linear method decays (unused by 'gaussian').
      method: 'gaussian' or 'linear'.
      score_threshold: float; boxes whose (decayed) score is below it are discarded.

    Returns:
      ``(indices, num_valid, scores)``, the tuple of :func:`nms` plus scores: int32 ``[N]`` indices of the
      selected boxes in selection order (non-increasing updated score), padded with -1 (gather with
      :func:`jaxvision.ops.take_valid`, never ``x[indices]``); int32 scalar number of selected boxes; float32 ``[N]``
      decayed score of every box (0 for discarded boxes), indexed like ``boxes``.
    """
    _check_boxes_scores(boxes, scores)
    check_choice("method", method, ("gaussian", "linear"))
    _check_threshold("iou_threshold", iou_threshold)
    if not isinstance(sigma, jax.core.Tracer) and not (np.ndim(sigma) == 0 and sigma > 0):
        raise ValueError(f"sigma: expected a scalar > 0, got {sigma!r}")
    n = np.shape(scores)[0]
    if n == 0:
        return jnp.zeros((0,), jnp.int32), jnp.int32(0), jnp.zeros((0,), jnp.float32)
    b = jnp.asarray(boxes).astype(jnp.float32)
    s = jnp.asarray(scores).astype(jnp.float32)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    remaining = ~jnp.isnan(s) & (s >= score_threshold)
    s = jnp.where(remaining, s, 0)

    def cond(state):
        i, _, remaining, _ = state
        return (i < n) & jnp.any(remaining)

    def body(state):
        i, s, remaining, order = state
        best = jnp.argmax(jnp.where(remaining, s, -jnp.inf))
        remaining = remaining.at[best].set(False)
        w = jnp.maximum(jnp.minimum(b[best, 2], b[:, 2]) - jnp.maximum(b[best, 0], b[:, 0]), 0)
        h = jnp.maximum(jnp.minimum(b[best, 3], b[:, 3]) - jnp.maximum(b[best, 1], b[:, 1]), 0)
        inter = w * h
        union = area[best] + area - inter
        iou = jnp.where(union > 0, inter / jnp.where(union > 0, union, 1), 0)  # [N]
        if method == "gaussian":
            decay = jnp.exp(-(iou * iou) / sigma)
        else:
            decay = jnp.where(iou > iou_threshold, 1 - iou, 1)
        s_new = jnp.where(remaining, s * decay, s)
        dropped = remaining & (s_new < score_threshold)
        return i + 1, jnp.where(dropped, 0, s_new), remaining & ~dropped, order.at[i].set(best.astype(jnp.int32))

    init = (jnp.int32(0), s, remaining, jnp.full((n,), -1, jnp.int32))
    num_valid, s, _, order = lax.while_loop(cond, body, init)
    return order, num_valid, s
