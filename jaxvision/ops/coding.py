"""Box coding: the (dx, dy, dw, dh) regression targets of R-CNN / SSD / RetinaNet (torchvision BoxCoder).

For an anchor with centre (xa, ya) and size (wa, ha) and a target box (x, y, w, h):

    dx = wx (x - xa) / wa    dy = wy (y - ya) / ha    dw = ww log(w / wa)    dh = wh log(h / ha)

Decoding inverts this, clamping dw / ww and dh / wh to at most ``bbox_xform_clip`` (default log(1000/16))
before ``exp`` so that a wild prediction cannot overflow. Values match ``torchvision.models.detection._utils
.BoxCoder`` (``encode_single`` / ``decode_single``), with the operation order kept so float32 results agree
to rounding.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp

from jaxvision._checks import check_last_dim


@dataclasses.dataclass(frozen=True)
class BoxCoder:
    """Encode boxes relative to anchors and decode regression outputs back to boxes.

    A frozen (hashable) dataclass of Python floats, so it can be a static argument or a module attribute.
    Both methods are pure jax.numpy, broadcast over leading dims, and work under jit / vmap / grad.

    Attributes:
      weights: (wx, wy, ww, wh) multipliers of the deltas; Faster R-CNN's RoI heads use (10, 10, 5, 5),
        SSD uses (10, 10, 5, 5), the RPN and RetinaNet (1, 1, 1, 1).
      bbox_xform_clip: upper clamp of the unweighted dw, dh before ``exp`` in :meth:`decode`.
    """

    weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    bbox_xform_clip: float = math.log(1000.0 / 16)

    def __post_init__(self):
        w = tuple(float(v) for v in self.weights)
        if len(w) != 4:
            raise ValueError(f"weights: expected 4 values (wx, wy, ww, wh), got {self.weights!r}")
        if any(not v > 0 for v in w):
            raise ValueError(f"weights: expected values > 0, got {self.weights!r}")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "bbox_xform_clip", float(self.bbox_xform_clip))

    def encode(self, anchors, boxes):
        """Regression targets that move ``anchors`` onto ``boxes``.

        Equivalent to torchvision's ``encode_single(reference_boxes=boxes, proposals=anchors)``.

        Args:
          anchors: ``[..., 4]`` xyxy reference boxes (anchors / proposals) in pixels, positive width and height.
          boxes: ``[..., 4]`` xyxy target boxes in pixels, broadcastable against ``anchors``. Zero-size boxes
            give ``-inf`` dw / dh, as in torchvision: select with ``jnp.where`` rather than multiplying by a mask.

        Returns:
          ``[..., 4]`` deltas (dx, dy, dw, dh), dtype of the promoted inputs.
        """
        check_last_dim("anchors", anchors, 4)
        check_last_dim("boxes", boxes, 4)
        return _encode(jnp.asarray(anchors), jnp.asarray(boxes), self.weights)

    def decode(self, anchors, deltas):
        """Boxes predicted by applying ``deltas`` to ``anchors`` (torchvision ``decode_single``).

        Args:
          anchors: ``[..., 4]`` xyxy reference boxes in pixels.
          deltas: ``[..., 4]`` (dx, dy, dw, dh) broadcastable against ``anchors`` (e.g. per-class deltas
            ``[N, K, 4]`` with anchors ``[N, 1, 4]``). Anchors are cast to the deltas' dtype, as in torchvision.

        Returns:
          ``[..., 4]`` xyxy boxes in pixels, deltas' dtype (not clipped to the image).
        """
        check_last_dim("anchors", anchors, 4)
        check_last_dim("deltas", deltas, 4)
        return _decode(jnp.asarray(anchors), jnp.asarray(deltas), self.weights, self.bbox_xform_clip)


@functools.partial(jax.jit, static_argnums=2)
def _encode(anchors, boxes, weights):
    dtype = jnp.result_type(anchors.dtype, boxes.dtype)
    dtype = dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.float32
    anchors, boxes = anchors.astype(dtype), boxes.astype(dtype)
    wx, wy, ww, wh = (jnp.asarray(v, dtype) for v in weights)
    half = jnp.asarray(0.5, dtype)
    ex_w = anchors[..., 2] - anchors[..., 0]
    ex_h = anchors[..., 3] - anchors[..., 1]
    ex_cx = anchors[..., 0] + half * ex_w
    ex_cy = anchors[..., 1] + half * ex_h
    gt_w = boxes[..., 2] - boxes[..., 0]
    gt_h = boxes[..., 3] - boxes[..., 1]
    gt_cx = boxes[..., 0] + half * gt_w
    gt_cy = boxes[..., 1] + half * gt_h
    dx = wx * (gt_cx - ex_cx) / ex_w
    dy = wy * (gt_cy - ex_cy) / ex_h
    dw = ww * jnp.log(gt_w / ex_w)
    dh = wh * jnp.log(gt_h / ex_h)
    return jnp.stack([dx, dy, dw, dh], axis=-1)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _decode(anchors, deltas, weights, bbox_xform_clip):
    if not jnp.issubdtype(deltas.dtype, jnp.floating):
        deltas = deltas.astype(jnp.float32)
    dtype = deltas.dtype
    anchors = anchors.astype(dtype)
    half = jnp.asarray(0.5, dtype)
    widths = anchors[..., 2] - anchors[..., 0]
    heights = anchors[..., 3] - anchors[..., 1]
    ctr_x = anchors[..., 0] + half * widths
    ctr_y = anchors[..., 1] + half * heights
    wx, wy, ww, wh = (jnp.asarray(v, dtype) for v in weights)
    clip = jnp.asarray(bbox_xform_clip, dtype)
    dx = deltas[..., 0] / wx
    dy = deltas[..., 1] / wy
    dw = jnp.minimum(deltas[..., 2] / ww, clip)
    dh = jnp.minimum(deltas[..., 3] / wh, clip)
    pred_cx = dx * widths + ctr_x
    pred_cy = dy * heights + ctr_y
    pred_w = jnp.exp(dw) * widths
    pred_h = jnp.exp(dh) * heights
    c_w = half * pred_w
    c_h = half * pred_h
    return jnp.stack([pred_cx - c_w, pred_cy - c_h, pred_cx + c_w, pred_cy + c_h], axis=-1)
