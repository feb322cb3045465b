"""Pairwise IoU family: IoU, generalized, distance and complete IoU (torchvision.ops semantics).

Inputs are xyxy boxes ``boxes1 [..., N, 4]`` and ``boxes2 [..., M, 4]``; outputs ``[..., N, M]``.
Unlike torchvision, a pair with zero union (e.g. two zero-area boxes) gives IoU 0, never NaN.
"""
from __future__ import annotations

import jax.numpy as jnp

from jaxvision._checks import check_last_dim
from jaxvision.ops.boxes import box_area


def _inter_union(boxes1, boxes2):
    """Intersection and union areas, ``[..., N, M]`` each."""
    area1 = box_area(boxes1)  # [..., N]
    area2 = box_area(boxes2)  # [..., M]
    lt = jnp.maximum(boxes1[..., :, None, :2], boxes2[..., None, :, :2])  # [..., N, M, 2]
    rb = jnp.minimum(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])  # [..., N, M, 2]
    wh = jnp.clip(rb - lt, 0)
    inter = wh[..., 0] * wh[..., 1]  # [..., N, M]
    union = area1[..., :, None] + area2[..., None, :] - inter
    return inter, union


def _safe_div(num, den):
    """num / den, with 0 where den <= 0 (no NaN, no inf, NaN-free gradients)."""
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1), 0)


def _check_pair(boxes1, boxes2):
    check_last_dim("boxes1", boxes1, 4)
    check_last_dim("boxes2", boxes2, 4)
    return jnp.asarray(boxes1), jnp.asarray(boxes2)


def box_iou(boxes1, boxes2):
    """Pairwise intersection-over-union: ``[..., N, 4] x [..., M, 4] -> [..., N, M]`` in [0, 1]."""
    boxes1, boxes2 = _check_pair(boxes1, boxes2)
    inter, union = _inter_union(boxes1, boxes2)
    return _safe_div(inter, union)
