"""Convolution as one matrix product over the kernel's shifted copies of the input (im2col), for small maps.

XLA:CPU runs a convolution whose output map has few positions and whose inputs have many channels far below its
matmul speed: the RPN's 3x3 conv over ResNet-50's C5 map (10 x 10 x 2048 -> 2048, 7.5 GFLOP at 320 px) took
166-211 ms as ``lax.conv_general_dilated`` and 80-123 ms as ``im2col_conv`` on the 2-core CPU (same process,
interleaved; 16 x 16: 191 vs 121 ms; 8 x 8 x 1024: 32 vs 9 ms), while on maps of >= 20 x 20 positions or
<= 512 channels the library convolution is as fast or faster. ``small_map_conv`` is a drop-in for
``lax.conv_general_dilated`` (``flax.linen.Conv(conv_general_dilated=small_map_conv)``) that takes the matmul path
only on the CPU (``lax.platform_dependent``) and only for such shapes (``prefers_matmul``); GPUs keep their
convolution kernels. The two agree up to float32 summation order.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxvision._checks import check_rank, pair, pair_nonneg
from jaxvision.ops.conv import is_plain_nhwc_call, library_conv

#: ``prefers_matmul`` thresholds: at least this many input channels, at most this many output positions per image.
MIN_CHANNELS = 1024
MAX_POSITIONS = 256


def im2col_conv(x, kernel, strides=(1, 1), padding=0):
    """2-D cross-correlation, NHWC / HWIO, as ``patches [N Ho Wo, kh kw Cin] @ kernel [kh kw Cin, Cout]``.

    Args:
      x: ``[N, H, W, Cin]``. kernel: ``[kh, kw, Cin, Cout]``.
      strides: int or ``(sh, sw)``, > 0. padding: int or ``(ph, pw)`` zeros on both sides, or
        ``((top, bottom), (left, right))``.

    Returns:
      ``[N, Ho, Wo, Cout]``, ``Ho = (H + top + bottom - kh) // sh + 1`` (likewise ``Wo``): the values of
      ``lax.conv_general_dilated`` with the same arguments. Memory: the patches, ``kh kw`` times the input.
    """
    check_rank("x", x, 4, "[N, H, W, C_in]")
    check_rank("kernel", kernel, 4, "[kh, kw, C_in, C_out]")
    if kernel.shape[2] != x.shape[3]:
        raise ValueError(f"kernel: expected C_in = {x.shape[3]} (x's last dim) in shape [kh, kw, C_in, C_out], "
                         f"got {kernel.shape}")
    sh, sw = pair("strides", strides)
    (pt, pb), (pl, pr) = _padding_pairs(padding)
    n, h, w, _ = x.shape
    kh, kw, cin, cout = kernel.shape
    ho, wo = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"kernel: expected a spatial size <= the padded input {(h + pt + pb, w + pl + pr)}, got "
                         f"{(kh, kw)}")
    xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    shifted = [xp[:, a:a + sh * (ho - 1) + 1:sh, b:b + sw * (wo - 1) + 1:sw] for a in range(kh) for b in range(kw)]
    patches = jnp.concatenate(shifted, axis=-1).reshape(n * ho * wo, kh * kw * cin)
    return (patches @ kernel.reshape(kh * kw * cin, cout)).reshape(n, ho, wo, cout)


def _padding_pairs(padding):
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(isinstance(p, (tuple, list)) for p in padding):
        pairs = tuple(tuple(int(v) for v in p) for p in padding)
        if any(len(p) != 2 or min(p) < 0 for p in pairs):
            raise ValueError(f"padding: expected ((top, bottom), (left, right)) >= 0, got {padding}")
        return pairs
    ph, pw = pair_nonneg("padding", padding)
    return (ph, ph), (pw, pw)


def prefers_matmul(x_shape, kernel_shape, output_hw) -> bool:
    """True where ``im2col_conv`` beats XLA:CPU's convolution (module docstring): a kernel larger than 1 x 1, at
    least ``MIN_CHANNELS`` input channels and at most ``MAX_POSITIONS`` output positions per image."""
    kh, kw, cin, _ = kernel_shape
    return kh * kw > 1 and cin >= MIN_CHANNELS and output_hw[0] * output_hw[1] <= MAX_POSITIONS


def small_map_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                   dimension_numbers=None, feature_group_count=1, precision=None, **kwargs):
    """``lax.conv_general_dilated`` with its signature; NHWC / HWIO convolutions that ``prefers_matmul`` run as
    ``im2col_conv`` on the CPU. Everything else (other layouts, dilation, groups, string padding, other shapes,
    other platforms) is ``lax.conv_general_dilated`` itself."""
    library = library_conv(window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                           feature_group_count, precision, kwargs)

    if not is_plain_nhwc_call(lhs, rhs, padding, lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count,
                              kwargs):
        return library(lhs, rhs)
    out_hw = jax.eval_shape(library, lhs, rhs).shape[1:3]
    if not prefers_matmul(lhs.shape, rhs.shape, out_hw):
        return library(lhs, rhs)
    matmul = lambda x, k: im2col_conv(x, k, window_strides, tuple(tuple(p) for p in padding))  # noqa: E731
    return lax.platform_dependent(lhs, rhs, cpu=matmul, default=library)
