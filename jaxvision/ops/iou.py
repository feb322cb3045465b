"""IoU family (torchvision.ops semantics): pairwise IoU / GIoU / DIoU / CIoU and the elementwise IoU losses.

Pairwise functions take xyxy boxes ``boxes1 [..., N, 4]`` and ``boxes2 [..., M, 4]`` (absolute pixels,
continuous coordinates) and return ``[..., N, M]``. Leading batch axes must match (they broadcast).
The losses take two equally shaped ``[..., 4]`` arrays and compare them element by element.

Numerics: bfloat16/float16 inputs are computed in float32 (as torchvision's ``_upcast``) and the result is
cast back to the input's floating dtype; integer inputs give float32. Unlike torchvision, a pair with zero
union (e.g. two zero-area boxes) gives IoU 0, and a zero-height box gives a finite CIoU aspect term, never
NaN; gradients are NaN-free too (every division is guarded with ``jnp.where`` on both branches).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxvision._checks import check_choice, check_last_dim, check_positive

REDUCTIONS = ("none", "mean", "sum")


def _safe_div(num, den):
    """num / den, with 0 where den == 0 (no NaN, no inf, NaN-free gradients). Negative den divides normally."""
    ok = den != 0
    return jnp.where(ok, num / jnp.where(ok, den, 1), 0)


def _prepare(*boxes_named):
    """Check ``[..., 4]`` shapes; return float32 arrays plus the output dtype."""
    arrays = []
    for name, boxes in boxes_named:
        check_last_dim(name, boxes, 4)
        arrays.append(jnp.asarray(boxes))
    out_dtype = jnp.result_type(*arrays)
    if not jnp.issubdtype(out_dtype, jnp.floating):
        out_dtype = jnp.float32
    compute = jnp.promote_types(out_dtype, jnp.float32)
    return [a.astype(compute) for a in arrays], out_dtype


def _inter_union(boxes1, boxes2):
    """Pairwise intersection and union areas, ``[..., N, M]`` each (union = area1 + area2 - inter)."""
    area1 = (boxes1[..., 2] - boxes1[..., 0]) * (boxes1[..., 3] - boxes1[..., 1])  # [..., N]
    area2 = (boxes2[..., 2] - boxes2[..., 0]) * (boxes2[..., 3] - boxes2[..., 1])  # [..., M]
    lt = jnp.maximum(boxes1[..., :, None, :2], boxes2[..., None, :, :2])  # [..., N, M, 2]
    rb = jnp.minimum(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])  # [..., N, M, 2]
    wh = jnp.clip(rb - lt, 0)
    inter = wh[..., 0] * wh[..., 1]  # [..., N, M]
    union = area1[..., :, None] + area2[..., None, :] - inter
    return inter, union


def _enclosing_wh(boxes1, boxes2):
    """Width/height of the smallest enclosing box of each pair, ``[..., N, M, 2]``, clamped at 0."""
    lti = jnp.minimum(boxes1[..., :, None, :2], boxes2[..., None, :, :2])
    rbi = jnp.maximum(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])
    return jnp.clip(rbi - lti, 0)


def _centre_dist2(boxes1, boxes2):
    """Squared distance between box centres, pairwise ``[..., N, M]``."""
    c1 = (boxes1[..., :2] + boxes1[..., 2:]) / 2  # [..., N, 2]
    c2 = (boxes2[..., :2] + boxes2[..., 2:]) / 2  # [..., M, 2]
    d = c1[..., :, None, :] - c2[..., None, :, :]  # [..., N, M, 2]
    return d[..., 0] ** 2 + d[..., 1] ** 2


def _aspect_atan(boxes):
    """atan(w / h) per box; a zero-height box gives +-pi/2 (or 0 for a 0x0 box) instead of NaN."""
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    ok = h != 0
    limit = jnp.sign(w) * (math.pi / 2)
    return jnp.where(ok, jnp.arctan(w / jnp.where(ok, h, 1)), limit)


def _diou_iou(boxes1, boxes2, eps):
    inter, union = _inter_union(boxes1, boxes2)
    iou = _safe_div(inter, union)
    whi = _enclosing_wh(boxes1, boxes2)
    diag2 = whi[..., 0] ** 2 + whi[..., 1] ** 2 + eps
    return iou - _safe_div(_centre_dist2(boxes1, boxes2), diag2), iou


def box_iou(boxes1, boxes2):
    """Pairwise intersection-over-union (torchvision.ops.box_iou).

    Args:
      boxes1: ``[..., N, 4]`` xyxy boxes, absolute pixels, float32/bfloat16 (ints are promoted to float32).
      boxes2: ``[..., M, 4]`` xyxy boxes, same leading axes (broadcastable).

    Returns:
      ``[..., N, M]`` IoU in [0, 1] for well-formed boxes; 0 (not NaN) where the union is zero.
    """
    (b1, b2), dtype = _prepare(("boxes1", boxes1), ("boxes2", boxes2))
    inter, union = _inter_union(b1, b2)
    return _safe_div(inter, union).astype(dtype)


def generalized_box_iou(boxes1, boxes2):
    """Pairwise generalized IoU (torchvision.ops.generalized_box_iou): IoU - (C - U) / C.

    ``C`` is the area of the smallest enclosing box and ``U`` the union. Values lie in [-1, 1].

    Args:
      boxes1: ``[..., N, 4]`` xyxy boxes, absolute pixels, float32/bfloat16.
      boxes2: ``[..., M, 4]`` xyxy boxes.

    Returns:
      ``[..., N, M]``; pairs with a zero-area enclosing box give 0 for the penalty instead of NaN.
    """
    (b1, b2), dtype = _prepare(("boxes1", boxes1), ("boxes2", boxes2))
    inter, union = _inter_union(b1, b2)
    iou = _safe_div(inter, union)
    whi = _enclosing_wh(b1, b2)
    areai = whi[..., 0] * whi[..., 1]
    return (iou - _safe_div(areai - union, areai)).astype(dtype)


def distance_box_iou(boxes1, boxes2, eps: float = 1e-7):
    """Pairwise distance IoU (torchvision.ops.distance_box_iou): IoU - d^2 / (c^2 + eps).

    ``d`` is the distance between the box centres and ``c`` the diagonal of the smallest enclosing box.

    Args:
      boxes1: ``[..., N, 4]`` xyxy boxes, absolute pixels, float32/bfloat16.
      boxes2: ``[..., M, 4]`` xyxy boxes.
      eps: small non-negative number added to ``c^2``.

    Returns:
      ``[..., N, M]`` in [-1, 1].
    """
    check_positive("eps", eps, allow_zero=True)
    (b1, b2), dtype = _prepare(("boxes1", boxes1), ("boxes2", boxes2))
    diou, _ = _diou_iou(b1, b2, eps)
    return diou.astype(dtype)


def complete_box_iou(boxes1, boxes2, eps: float = 1e-7):
    """Pairwise complete IoU (torchvision.ops.complete_box_iou): DIoU - alpha * v.

    ``v = 4 / pi^2 * (atan(w1 / h1) - atan(w2 / h2))^2`` measures aspect-ratio mismatch and
    ``alpha = v / (1 - IoU + v + eps)`` is treated as a constant under differentiation (as torchvision's
    ``no_grad``).

    Args:
      boxes1: ``[..., N, 4]`` xyxy boxes, absolute pixels, float32/bfloat16.
      boxes2: ``[..., M, 4]`` xyxy boxes.
      eps: small non-negative number used in both denominators.

    Returns:
      ``[..., N, M]``.
    """
    check_positive("eps", eps, allow_zero=True)
    (b1, b2), dtype = _prepare(("boxes1", boxes1), ("boxes2", boxes2))
    diou, iou = _diou_iou(b1, b2, eps)
    dangle = _aspect_atan(b1)[..., :, None] - _aspect_atan(b2)[..., None, :]  # [..., N, M]
    v = (4 / math.pi**2) * dangle**2
    alpha = jax.lax.stop_gradient(_safe_div(v, 1 - iou + v + eps))
    return (diou - alpha * v).astype(dtype)


# ----------------------------------------------------------------------------------------------- losses


def _loss_inter_union(boxes1, boxes2):
    """Elementwise intersection and union ``[...]`` (torchvision ops._utils._loss_inter_union)."""
    x1, y1, x2, y2 = jnp.moveaxis(boxes1, -1, 0)
    x1g, y1g, x2g, y2g = jnp.moveaxis(boxes2, -1, 0)
    w = jnp.minimum(x2, x2g) - jnp.maximum(x1, x1g)
    h = jnp.minimum(y2, y2g) - jnp.maximum(y1, y1g)
    overlap = (w > 0) & (h > 0)
    inter = jnp.where(overlap, w * h, 0)
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    return inter, union


def _loss_setup(boxes1, boxes2, reduction, eps):
    check_choice("reduction", reduction, REDUCTIONS)
    check_positive("eps", eps, allow_zero=True)
    (b1, b2), dtype = _prepare(("boxes1", boxes1), ("boxes2", boxes2))
    if b1.shape != b2.shape:
        raise ValueError(f"boxes1 and boxes2: expected equal shapes [..., 4], got {b1.shape} and {b2.shape}")
    return b1, b2, dtype


def _reduce(loss, reduction, dtype):
    if reduction == "mean":
        loss = jnp.mean(loss) if loss.size > 0 else jnp.sum(loss) * 0.0
    elif reduction == "sum":
        loss = jnp.sum(loss)
    return loss.astype(dtype)


def _enclosing_elementwise(boxes1, boxes2):
    lo = jnp.minimum(boxes1[..., :2], boxes2[..., :2])
    hi = jnp.maximum(boxes1[..., 2:], boxes2[..., 2:])
    return hi - lo  # [..., 2]: enclosing width, height (not clamped, as torchvision)


def _diou_loss(b1, b2, eps):
    inter, union = _loss_inter_union(b1, b2)
    iou = _safe_div(inter, union + eps)
    wh = _enclosing_elementwise(b1, b2)
    diag2 = wh[..., 0] ** 2 + wh[..., 1] ** 2 + eps
    c1 = (b1[..., :2] + b1[..., 2:]) / 2
    c2 = (b2[..., :2] + b2[..., 2:]) / 2
    dist2 = ((c1 - c2) ** 2).sum(-1)
    return 1 - iou + _safe_div(dist2, diag2), iou


def generalized_box_iou_loss(boxes1, boxes2, reduction: str = "none", eps: float = 1e-7):
    """GIoU loss ``1 - GIoU`` (torchvision.ops.generalized_box_iou_loss), elementwise.

    Args:
      boxes1: ``[..., 4]`` xyxy boxes (e.g. predictions), absolute pixels, float32/bfloat16.
      boxes2: ``[..., 4]`` xyxy boxes (e.g. targets), same shape as ``boxes1``.
      reduction: 'none' (shape ``[...]``), 'mean' or 'sum' (scalars; the mean of zero boxes is 0).
      eps: small non-negative number added to the denominators.

    Returns:
      Loss in [0, 2] for well-formed boxes.
    """
    b1, b2, dtype = _loss_setup(boxes1, boxes2, reduction, eps)
    inter, union = _loss_inter_union(b1, b2)
    iou = _safe_div(inter, union + eps)
    wh = _enclosing_elementwise(b1, b2)
    area_c = wh[..., 0] * wh[..., 1]
    loss = 1 - (iou - _safe_div(area_c - union, area_c + eps))
    return _reduce(loss, reduction, dtype)


def distance_box_iou_loss(boxes1, boxes2, reduction: str = "none", eps: float = 1e-7):
    """DIoU loss ``1 - IoU + d^2 / (c^2 + eps)`` (torchvision.ops.distance_box_iou_loss), elementwise.

    Args:
      boxes1: ``[..., 4]`` xyxy boxes, absolute pixels, float32/bfloat16.
      boxes2: ``[..., 4]`` xyxy boxes, same shape.
      reduction: 'none', 'mean' or 'sum'.
      eps: small non-negative number added to the denominators.

    Returns:
      ``[...]`` for 'none', else a scalar.
    """
    b1, b2, dtype = _loss_setup(boxes1, boxes2, reduction, eps)
    loss, _ = _diou_loss(b1, b2, eps)
    return _reduce(loss, reduction, dtype)


def complete_box_iou_loss(boxes1, boxes2, reduction: str = "none", eps: float = 1e-7):
    """CIoU loss ``DIoU loss + alpha * v`` (torchvision.ops.complete_box_iou_loss), elementwise.

    ``alpha = v / (1 - IoU + v + eps)`` is constant under differentiation, as in torchvision.

    Args:
      boxes1: ``[..., 4]`` xyxy boxes, absolute pixels, float32/bfloat16.
      boxes2: ``[..., 4]`` xyxy boxes, same shape.
      reduction: 'none', 'mean' or 'sum'.
      eps: small non-negative number added to the denominators.

    Returns:
      ``[...]`` for 'none', else a scalar.
    """
    b1, b2, dtype = _loss_setup(boxes1, boxes2, reduction, eps)
    loss, iou = _diou_loss(b1, b2, eps)
    v = (4 / math.pi**2) * (_aspect_atan(b2) - _aspect_atan(b1)) ** 2
    alpha = jax.lax.stop_gradient(_safe_div(v, 1 - iou + v + eps))
    return _reduce(loss + alpha * v, reduction, dtype)
