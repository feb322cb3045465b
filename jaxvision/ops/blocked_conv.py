"""Stride-1 "same" convolution over the space-to-depth rearrangement of its map, and a drop-in for
``lax.conv_general_dilated`` whose gradients take that path on the CPU for large kernels with few output channels.

XLA:CPU computes both gradients of such a convolution far below its matmul speed. SRResNet's last layer (9x9 kernel,
32 -> 3 channels on a 96 x 96 map, batch 4) takes 97 ms for forward + both gradients as
``lax.conv_general_dilated`` (the kernel gradient alone ~68 ms, the forward 6.5 ms) on the 2-core CPU: half of the
whole SRResNet training step. Moving each ``r x r`` block of pixels into channels gives an equal convolution with
``r^2`` times more input and output channels, ``r^2`` times fewer positions and a kernel of about ``k / r`` taps
per axis, a shape XLA:CPU runs fast: with ``r = 4``, forward + both gradients take 26 ms (``benchmarks/
blocked_conv.py``). The forward pass itself is faster as the library convolution, so ``thin_output_conv`` keeps it
and only its VJP is the rearranged convolution's.

The rearrangement, per spatial axis (block ``r``, kernel ``k``, padding ``p`` with ``2 p = k - 1``): output pixel
``i = r I + u`` reads input pixel ``j = i + t - p = r J + v``; with ``D = J - I`` the kernel tap is
``t = r D + v - u + p``. So the blocked kernel ``[T, T, r^2 Cin, r^2 Cout]`` holds tap ``t`` at
``[D - D_min, (v, ci), (u, co)]`` (zero where ``t`` falls outside ``[0, k)``), ``D`` runs over
``D_min = floor(-p / r) .. D_max = floor((k + r - 2 - p) / r)`` (``T = D_max - D_min + 1``), and the blocked map is
padded by ``-D_min`` blocks before and ``D_max`` after. Blocks hold their pixels in (row phase, column phase,
channel) order. The two convolutions agree up to float32 summation order.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxvision._checks import check_positive, check_rank
from jaxvision.ops.conv import is_plain_nhwc_call, library_conv

#: ``thin_output_conv``'s block side and ``prefers_blocked_gradients``' thresholds (module docstring, benchmark).
BLOCK = 4
MIN_KERNEL = 7
MAX_OUTPUTS = 4

_DN = ("NHWC", "HWIO", "NHWC")


def _to_blocks(x, r: int):
    """[N, H, W, C] -> [N, H / r, W / r, r r C] in (row phase, column phase, channel) order."""
    n, h, w, c = x.shape
    return x.reshape(n, h // r, r, w // r, r, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, h // r, w // r, r * r * c)


def _from_blocks(x, r: int):
    """The inverse of ``_to_blocks``."""
    n, h, w, c = x.shape
    return x.reshape(n, h, w, r, r, c // (r * r)).transpose(0, 1, 3, 2, 4, 5).reshape(n, h * r, w * r, c // (r * r))


def _tap_table(k: int, r: int) -> tuple[np.ndarray, int, int]:
    """``(taps [T, r, r], before, after)``: ``taps[D - D_min, v, u]`` is the kernel tap ``t`` of block offset ``D``,
    input phase ``v`` and output phase ``u`` along one axis (-1: none), for a "same" kernel of ``k`` taps."""
    p = (k - 1) // 2
    lo, hi = (-p) // r, (k + r - 2 - p) // r
    d, v, u = np.meshgrid(np.arange(lo, hi + 1), np.arange(r), np.arange(r), indexing="ij")
    t = r * d + v - u + p
    return np.where((t >= 0) & (t < k), t, -1), -lo, hi


def blocked_kernel(kernel, r: int):
    """A "same" stride-1 kernel ``[kh, kw, Cin, Cout]`` (odd sizes) as the kernel ``[Th, Tw, r r Cin, r r Cout]``
    of the equal convolution over ``r x r`` blocks (module docstring); differentiable in ``kernel``."""
    kh, kw, cin, cout = kernel.shape
    rows, _, _ = _tap_table(kh, r)
    cols, _, _ = _tap_table(kw, r)
    # axes: Dy, Dx, vy, vx, uy, ux (broadcast), then the kernel's (Cin, Cout)
    ty, tx = rows[:, None, :, None, :, None], cols[None, :, None, :, None, :]
    taps = kernel[np.maximum(ty, 0), np.maximum(tx, 0)]
    taps = jnp.where(((ty >= 0) & (tx >= 0))[..., None, None], taps, 0)
    th, tw = rows.shape[0], cols.shape[0]
    return taps.transpose(0, 1, 2, 3, 6, 4, 5, 7).reshape(th, tw, r * r * cin, r * r * cout)


def space_to_depth_conv(x, kernel, block: int = BLOCK, precision=None):
    """The "same" stride-1 cross-correlation ``lax.conv_general_dilated(x, kernel, (1, 1), ((p, p), (p, p)))``
    (``p = (k - 1) / 2`` per axis) computed over ``block x block`` pixel blocks (module docstring).

    Args:
      x: ``[N, H, W, Cin]``, H and W divisible by ``block``.
      kernel: ``[kh, kw, Cin, Cout]``, kh and kw odd.
      block: block side r (> 0).
      precision: passed to the convolution.

    Returns:
      ``[N, H, W, Cout]``.
    """
    check_rank("x", x, 4, "[N, H, W, C_in]")
    check_rank("kernel", kernel, 4, "[kh, kw, C_in, C_out]")
    check_positive("block", block)
    if kernel.shape[2] != x.shape[3]:
        raise ValueError(f"kernel: expected C_in = {x.shape[3]} (x's last dim) in shape [kh, kw, C_in, C_out], "
                         f"got {kernel.shape}")
    if kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ValueError(f"kernel: expected odd spatial sizes (a 'same' convolution), got {kernel.shape}")
    if x.shape[1] % block or x.shape[2] % block:
        raise ValueError(f"x: expected H and W divisible by block={block}, got {x.shape}")
    _, top, bottom = _tap_table(kernel.shape[0], block)
    _, left, right = _tap_table(kernel.shape[1], block)
    y = lax.conv_general_dilated(_to_blocks(x, block), blocked_kernel(kernel, block), (1, 1),
                                 ((top, bottom), (left, right)), dimension_numbers=_DN, precision=precision)
    return _from_blocks(y, block)


def _same_conv(x, kernel, precision):
    ph, pw = (kernel.shape[0] - 1) // 2, (kernel.shape[1] - 1) // 2
    return lax.conv_general_dilated(x, kernel, (1, 1), ((ph, ph), (pw, pw)), dimension_numbers=_DN,
                                    precision=precision)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _blocked_gradients(x, kernel, precision):
    return _same_conv(x, kernel, precision)


def _blocked_gradients_fwd(x, kernel, precision):
    return _same_conv(x, kernel, precision), (x, kernel)


def _blocked_gradients_bwd(precision, res, g):
    _, vjp = jax.vjp(lambda x, k: space_to_depth_conv(x, k, BLOCK, precision), *res)
    return vjp(g)


_blocked_gradients.defvjp(_blocked_gradients_fwd, _blocked_gradients_bwd)


def prefers_blocked_gradients(x_shape, kernel_shape, padding) -> bool:
    """True where ``thin_output_conv`` computes the gradients over blocks: a "same" stride-1 convolution
    (``padding == ((p, p), (q, q))`` with ``2 p + 1 = kh``, ``2 q + 1 = kw``) with a kernel of at least
    ``MIN_KERNEL`` taps per axis, at most ``MAX_OUTPUTS`` output channels and H, W divisible by ``BLOCK``."""
    kh, kw, _, cout = kernel_shape
    same = tuple(map(tuple, padding)) == (((kh - 1) // 2,) * 2, ((kw - 1) // 2,) * 2) and kh % 2 == 1 == kw % 2
    return (same and min(kh, kw) >= MIN_KERNEL and cout <= MAX_OUTPUTS
            and x_shape[1] % BLOCK == 0 and x_shape[2] % BLOCK == 0)


def thin_output_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                     dimension_numbers=None, feature_group_count=1, precision=None, **kwargs):
    """``lax.conv_general_dilated`` with its signature (``flax.linen.Conv(conv_general_dilated=thin_output_conv)``)
    whose VJP, on the CPU (``lax.platform_dependent``) and where ``prefers_blocked_gradients`` holds, is that of
    ``space_to_depth_conv``; the forward values are the library convolution's everywhere. Everything else (other
    layouts, strides, dilation, groups, string padding, shapes, platforms) is ``lax.conv_general_dilated`` itself.
    Being a ``custom_vjp`` on that path, it has no forward-mode derivative there (``jax.jvp``)."""
    library = library_conv(window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                           feature_group_count, precision, kwargs)

    if not (is_plain_nhwc_call(lhs, rhs, padding, lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count,
                               kwargs)
            and tuple(window_strides) == (1, 1) and prefers_blocked_gradients(lhs.shape, rhs.shape, padding)):
        return library(lhs, rhs)
    blocked = lambda x, k: _blocked_gradients(x, k, precision)  # noqa: E731
    return lax.platform_dependent(lhs, rhs, cpu=blocked, default=library)
