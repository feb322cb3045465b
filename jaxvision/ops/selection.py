"""Gathering with padded index arrays: the safe way to use ``nms`` / ``batched_nms`` / ``soft_nms`` results.

Fixed-shape ops return their variable-length selections as index arrays padded with -1. JAX indexing does not
reject -1: ``boxes[-1]`` is the *last* box (and out-of-range indices are clamped), so ``boxes[keep]`` silently
repeats a real box in every padding slot. ``take_valid`` gathers only the valid slots and fills the others::

    keep, n = nms(boxes, scores, 0.5, max_output_size=100)
    kept_boxes = take_valid(boxes, keep)          # [100, 4], zeros after the n kept boxes
    kept_scores = take_valid(scores, keep, -1.0)  # [100], -1 in padding slots
    mask = keep >= 0                              # [100], True for the n kept boxes
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def take_valid(x, indices, fill=0, axis: int = 0):
    """``x`` gathered at ``indices`` along ``axis``, with ``fill`` wherever an index is padding.

    Args:
      x: array ``[..., N, ...]`` (``N`` at ``axis``), any dtype.
      indices: integer array of any shape ``[K...]``; entries in ``[0, N)`` select, anything else (the ``-1``
        padding of ``nms``, ``batched_nms``, ``soft_nms``) is a padding slot. jit-, vmap- and grad-safe
        (gradients reach only the selected elements).
      fill: scalar written into padding slots (cast to ``x.dtype``).
      axis: static int, the axis of ``x`` that ``indices`` index.

    Returns:
      ``x.shape[:axis] + indices.shape + x.shape[axis+1:]``, dtype of ``x``.

    Raises:
      ValueError: non-integer ``indices``, ``axis`` out of range, or a ``fill`` that is not a scalar.
    """
    x, indices = jnp.asarray(x), jnp.asarray(indices)
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        raise ValueError(f"indices: expected an integer array (e.g. the int32 result of nms), got {indices.dtype}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis: expected an int in [{-x.ndim}, {x.ndim}) for x of shape {x.shape}, got {axis}")
    if np.ndim(fill) != 0:
        raise ValueError(f"fill: expected a scalar, got shape {np.shape(fill)}")
    axis = axis % x.ndim
    n = x.shape[axis]
    valid = (indices >= 0) & (indices < n)                                    # [K...]
    taken = jnp.take(x, jnp.where(valid, indices, 0), axis=axis)             # [..., K..., ...]
    mask = valid.reshape((1,) * axis + valid.shape + (1,) * (x.ndim - axis - 1))
    return jnp.where(mask, taken, jnp.asarray(fill, x.dtype))
