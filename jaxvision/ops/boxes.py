"""Box format conversion, areas, clipping and small-box masks.

All boxes are ``[..., 4]`` arrays. The canonical format is ``xyxy`` in absolute pixels with continuous
coordinates (no +1), as in torchvision. Other formats:

* ``xywh``: top-left corner, width, height.
* ``cxcywh``: centre, width, height.
"""
from __future__ import annotations

import jax.numpy as jnp

from jaxvision._checks import check_choice, check_last_dim, pair

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


def _to_xyxy(boxes, fmt):
    a, b, c, d = jnp.moveaxis(boxes, -1, 0)
    if fmt == "xywh":
        return jnp.stack([a, b, a + c, b + d], axis=-1)
    if fmt == "cxcywh":
        return jnp.stack([a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d], axis=-1)
    return boxes


def _from_xyxy(boxes, fmt):
    x1, y1, x2, y2 = jnp.moveaxis(boxes, -1, 0)
    if fmt == "xywh":
        return jnp.stack([x1, y1, x2 - x1, y2 - y1], axis=-1)
    if fmt == "cxcywh":
        return jnp.stack([(x1 + x2) * 0.5, (y1 + y2) * 0.5, x2 - x1, y2 - y1], axis=-1)
    return boxes


def box_convert(boxes, in_fmt: str, out_fmt: str):
    """Convert boxes between 'xyxy', 'xywh' and 'cxcywh'.

    Args:
      boxes: ``[..., 4]`` float array in ``in_fmt``.
      in_fmt, out_fmt: one of ``BOX_FORMATS``.

    Returns:
      ``[..., 4]`` array in ``out_fmt``, same dtype.
    """
    check_last_dim("boxes", boxes, 4)
    check_choice("in_fmt", in_fmt, BOX_FORMATS)
    check_choice("out_fmt", out_fmt, BOX_FORMATS)
    boxes = jnp.asarray(boxes)
    if in_fmt == out_fmt:
        return boxes
    return _from_xyxy(_to_xyxy(boxes, in_fmt), out_fmt)


def box_area(boxes):
    """Area of xyxy boxes: ``[..., 4] -> [...]``. Inverted boxes give a negative area, as in torchvision."""
    check_last_dim("boxes", boxes, 4)
    boxes = jnp.asarray(boxes)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def clip_boxes_to_image(boxes, size):
    """Clip xyxy boxes to an image of ``size=(H, W)``: x into [0, W], y into [0, H]."""
    check_last_dim("boxes", boxes, 4)
    h, w = pair("size", size)
    boxes = jnp.asarray(boxes)
    lo = jnp.zeros(4, boxes.dtype)
    hi = jnp.asarray([w, h, w, h], boxes.dtype)
    return jnp.clip(boxes, lo, hi)


def small_box_mask(boxes, min_size: float):
    """Mask of boxes whose width and height are both >= ``min_size`` (torchvision.ops.remove_small_boxes
    as a fixed-shape mask): ``[..., 4] -> bool [...]``."""
    check_last_dim("boxes", boxes, 4)
    boxes = jnp.asarray(boxes)
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    return (w >= min_size) & (h >= min_size)
