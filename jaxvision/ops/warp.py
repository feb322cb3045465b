"""Bilinear crop-and-resize of boxes (R-CNN's region warping), as two batched matrix products, static shapes.

Output pixel ``(i, j)`` of box ``(x0, y0, x1, y1)`` (continuous pixel coordinates, pixel ``h`` covers
``[h, h + 1)``) samples the image at ``y = y0 + (i + 0.5) (y1 - y0) / oh``, ``x = x0 + (j + 0.5) (x1 - x0) / ow``
by bilinear interpolation between pixel centres, replicating the border pixels outside the image (the sample
position is clamped to the centres of the first and last pixel). The interpolation weights of every box form
separable matrices ``Wy [oh, H]`` and ``Wx [ow, W]`` (a tent ``max(0, 1 - |y - 0.5 - h|)``), so a warped region is
``Wy @ image @ Wx^T`` per channel: no gather, differentiable in the image, the same cost for every box (R-CNN
warps every proposal to a fixed size regardless of its aspect ratio).
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from jaxvision._checks import check_last_dim, check_rank, pair


def _weights(start, end, out: int, size: int):
    """Tent weights ``[..., out, size]`` of the ``out`` samples of ``[start, end)`` on a ``size``-pixel axis."""
    pos = start[..., None] + (jnp.arange(out, dtype=jnp.float32) + 0.5) * ((end - start) / out)[..., None]
    pos = jnp.clip(pos - 0.5, 0.0, size - 1.0)  # pixel-centre index space, border replicated
    return jnp.maximum(0.0, 1.0 - jnp.abs(pos[..., None] - jnp.arange(size, dtype=jnp.float32)))


def crop_and_resize(images, boxes, output_size):
    """Warp every box of every image to a fixed size (bilinear, anisotropic: R-CNN's region warping).

    Args:
      images: ``[B, H, W, C]`` float images.
      boxes: ``[B, R, 4]`` xyxy boxes in pixels of their image (any values: degenerate boxes sample one point,
        boxes outside the image replicate its border).
      output_size: int or ``(oh, ow)``.

    Returns:
      ``[B, R, oh, ow, C]`` float32 warped regions.
    """
    check_rank("images", images, 4, "[B, H, W, C]")
    check_rank("boxes", boxes, 3, "[B, R, 4]")
    check_last_dim("boxes", boxes, 4)
    if boxes.shape[0] != images.shape[0]:
        raise ValueError(f"boxes: expected batch size B = {images.shape[0]} (images' first dim), got "
                         f"shape {boxes.shape}")
    oh, ow = pair("output_size", output_size)
    _, h, w, _ = images.shape
    images = jnp.asarray(images, jnp.float32)
    boxes = jnp.asarray(boxes, jnp.float32)
    wy = _weights(boxes[..., 1], boxes[..., 3], oh, h)  # [B, R, oh, H]
    wx = _weights(boxes[..., 0], boxes[..., 2], ow, w)  # [B, R, ow, W]
    hi = lax.Precision.HIGHEST
    rows = jnp.einsum("brih,bhwc->briwc", wy, images, precision=hi)
    return jnp.einsum("brjw,briwc->brijc", wx, rows, precision=hi)
