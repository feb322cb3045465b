"""The lecture's learnable-free upsampling ops ("unpooling") and max pooling that remembers where maxima were.

All ops are NHWC, pure jax.numpy, static shapes, and work under jit, vmap and grad:

* :func:`nearest_unpool`: every value is copied into its ``fh x fw`` block (1 2 / 3 4 -> 1 1 2 2 / 1 1 2 2 / ...).
* :func:`bed_of_nails_unpool`: every value goes to the top-left of its block, zeros elsewhere
  (1 2 / 3 4 -> 1 0 2 0 / 0 0 0 0 / 3 0 4 0 / 0 0 0 0).
* :func:`max_pool_with_argmax` + :func:`max_unpool`: "max unpooling" puts each pooled value back at the
  position its maximum came from, zeros elsewhere (torch ``max_pool2d(return_indices=True)`` + ``max_unpool2d``).

Argmax convention (same as torch): ``argmax[n, i, j, c]`` is the flat index ``h * W + w`` into the ``H x W``
plane of channel ``c`` of image ``n`` of the *input*; ties and NaNs resolve to the first position in row-major
window order, as torch's CPU kernel does.

The learnable upsampling op, :func:`conv_transpose`, lives in ``jaxvision/ops/transposed_conv.py``.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from jaxvision._checks import check_rank, pair
from jaxvision.ops.transposed_conv import conv_transpose  # noqa: F401  (re-export: the fourth upsampling op)

_NHWC = "[N, H, W, C]"


def nearest_unpool(x, factor):
    """Nearest-neighbour unpooling: repeat every pixel into an ``fh x fw`` block.

    Args:
      x: ``[N, H, W, C]`` array, any dtype.
      factor: int or ``(fh, fw)``, > 0.

    Returns:
      ``[N, H * fh, W * fw, C]`` array, dtype of ``x``.
    """
    check_rank("x", x, 4, _NHWC)
    fh, fw = pair("factor", factor)
    x = jnp.asarray(x)
    n, h, w, c = x.shape
    y = jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, fh, w, fw, c))  # [N, H, fh, W, fw, C]
    return y.reshape(n, h * fh, w * fw, c)


def bed_of_nails_unpool(x, factor):
    """Bed-of-nails unpooling: each value at the top-left of its ``fh x fw`` block, zeros elsewhere.

    Args:
      x: ``[N, H, W, C]`` array, any dtype.
      factor: int or ``(fh, fw)``, > 0.

    Returns:
      ``[N, H * fh, W * fw, C]`` array, dtype of ``x``; ``out[:, fh*i, fw*j] = x[:, i, j]``.
    """
    check_rank("x", x, 4, _NHWC)
    fh, fw = pair("factor", factor)
    x = jnp.asarray(x)
    zero = jnp.zeros((), x.dtype)
    # interior padding puts fh-1 zeros between rows; the high padding closes the last block.
    return lax.pad(x, zero, ((0, 0, 0), (0, fh - 1, fh - 1), (0, fw - 1, fw - 1), (0, 0, 0)))


def max_pool_with_argmax(x, window, strides=None):
    """Max pooling (no padding) that also returns where every maximum came from.

    Args:
      x: ``[N, H, W, C]`` float array.
      window: int or ``(kh, kw)``, > 0, at most ``(H, W)``.
      strides: int or ``(sh, sw)``, > 0; default ``window`` (non-overlapping, as in the lecture).

    Returns:
      ``(pooled, argmax)``: ``pooled [N, oh, ow, C]`` (dtype of ``x``) with ``oh = (H - kh) // sh + 1`` (same
      for w), and ``argmax [N, oh, ow, C]`` int32 flat indices ``h * W + w`` into the input's ``H x W`` plane
      (torch's convention). Gradients of ``pooled`` flow to the argmax position only, as in torch.
    """
    check_rank("x", x, 4, _NHWC)
    kh, kw = pair("window", window)
    sh, sw = pair("strides", window if strides is None else strides)
    x = jnp.asarray(x)
    n, h, w, c = x.shape
    if kh > h or kw > w:
        raise ValueError(f"window: expected at most the input size {(h, w)}, got {(kh, kw)}")
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    # One strided view per window offset, stacked in row-major window order: [N, oh, ow, C, kh*kw].
    views, flat_pos = [], []
    rows = jnp.arange(oh, dtype=jnp.int32)[:, None] * sh  # [oh, 1]
    cols = jnp.arange(ow, dtype=jnp.int32)[None, :] * sw  # [1, ow]
    for di in range(kh):
        for dj in range(kw):
            end = (n, di + (oh - 1) * sh + 1, dj + (ow - 1) * sw + 1, c)
            views.append(lax.slice(x, (0, di, dj, 0), end, (1, sh, sw, 1)))
            flat_pos.append((rows + di) * w + (cols + dj))  # [oh, ow]
    stacked = jnp.stack(views, axis=-1)  # [N, oh, ow, C, kh*kw]
    which = jnp.argmax(stacked, axis=-1)  # first max (NaN counts as max), like torch
    pooled = jnp.take_along_axis(stacked, which[..., None], axis=-1)[..., 0]  # [N, oh, ow, C]
    pos = jnp.stack(flat_pos, axis=-1)  # [oh, ow, kh*kw]
    argmax = jnp.take_along_axis(jnp.broadcast_to(pos[None, :, :, None, :], stacked.shape), which[..., None], -1)
    return pooled, argmax[..., 0].astype(jnp.int32)


def max_unpool(pooled, argmax, output_shape):
    """Max unpooling: scatter every pooled value back to its argmax position, zeros elsewhere.

    The inverse of :func:`max_pool_with_argmax` in the lecture's sense (torch ``max_unpool2d``). Indices
    outside ``[0, H * W)`` are dropped (they cannot be checked at trace time).

    Args:
      pooled: ``[N, oh, ow, C]`` array.
      argmax: ``[N, oh, ow, C]`` int flat indices ``h * W + w`` (from :func:`max_pool_with_argmax`).
      output_shape: ``(H, W)`` spatial size of the result (the pooled input's size), or a full
        ``(N, H, W, C)`` shape whose N and C match ``pooled``.

    Returns:
      ``[N, H, W, C]`` array, dtype of ``pooled``.
    """
    check_rank("pooled", pooled, 4, _NHWC)
    check_rank("argmax", argmax, 4, _NHWC)
    pooled, argmax = jnp.asarray(pooled), jnp.asarray(argmax)
    if argmax.shape != pooled.shape:
        raise ValueError(f"argmax: expected the shape of pooled {pooled.shape}, got {argmax.shape}")
    if not jnp.issubdtype(argmax.dtype, jnp.integer):
        raise ValueError(f"argmax: expected an integer dtype, got {argmax.dtype}")
    n, oh, ow, c = pooled.shape
    shape = tuple(output_shape)
    if len(shape) == 4:
        if (shape[0], shape[3]) != (n, c):
            raise ValueError(f"output_shape: expected (N, H, W, C) with N={n}, C={c}, got {shape}")
        shape = shape[1:3]
    h, w = pair("output_shape", shape)
    bidx = jnp.arange(n, dtype=jnp.int32)[:, None, None, None]  # [N, 1, 1, 1]
    cidx = jnp.arange(c, dtype=jnp.int32)[None, None, None, :]  # [1, 1, 1, C]
    out = jnp.zeros((n, h * w, c), pooled.dtype)
    flat = argmax.astype(jnp.int32)
    flat = jnp.where(flat < 0, h * w, flat)  # negative indices must be dropped, not wrapped
    out = out.at[bidx, flat, cidx].set(pooled, mode="drop")  # [N, H*W, C]
    return out.reshape(n, h, w, c)
