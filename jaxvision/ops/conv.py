"""2-D convolution with PyTorch ``Conv2d`` semantics whose input gradient avoids XLA:CPU's slow path.

The input gradient of a strided convolution is a transposed convolution. XLA's own autodiff writes it as a
convolution over the zero-dilated output gradient (``lhs_dilation = stride``), which XLA:CPU runs on its generic
Eigen path; :func:`jaxvision.ops.conv_transpose` computes the same adjoint as ONE stride-1 convolution over the
sub-pixel phases (no zeros multiplied), on XLA:CPU's fast convolution path. The kernel gradient keeps XLA's own
rule. Measured on the 2-core CPU for DCGAN's discriminator (64 px, batch 64): the full GAN train step takes 7%
less time (``benchmarks/dcgan.py``); the forward pass is unchanged.

Adjoint, per spatial axis (stride ``s``, padding ``p``, kernel ``k``): ``y[i] = sum_t x[s * i + t - p] w[t]`` gives
``dx[j] = sum_{s * i + t - p = j} g[i] w[t]``, which is ``conv_transpose(g, w, s, p, output_padding=op)`` with
``op = (H + 2p - k) mod s`` restoring the input rows the forward pass never read.
"""
from __future__ import annotations

from functools import partial

import jax
from jax import lax

from jaxvision._checks import check_rank, pair, pair_nonneg
from jaxvision.ops.transposed_conv import conv_transpose

_DN = ("NHWC", "HWIO", "NHWC")


def _forward(x, kernel, strides, padding):
    (ph, pw) = padding
    return lax.conv_general_dilated(x, kernel, strides, ((ph, ph), (pw, pw)), dimension_numbers=_DN)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv(x, kernel, strides, padding):
    return _forward(x, kernel, strides, padding)


def _conv_fwd(x, kernel, strides, padding):
    return _forward(x, kernel, strides, padding), (x, kernel)


def _conv_bwd(strides, padding, res, g):
    x, kernel = res
    kh, kw = kernel.shape[:2]
    out_pad = tuple((size + 2 * p - k) % s for size, p, k, s in zip(x.shape[1:3], padding, (kh, kw), strides))
    dx = conv_transpose(g, kernel.transpose(0, 1, 3, 2), strides, padding, out_pad)
    _, kernel_vjp = jax.vjp(lambda k: _forward(x, k, strides, padding), kernel)
    (dkernel,) = kernel_vjp(g)
    return dx.astype(x.dtype), dkernel


_conv.defvjp(_conv_fwd, _conv_bwd)


def is_plain_nhwc_call(lhs, rhs, padding, lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count,
                      kwargs) -> bool:
    """Whether a ``lax.conv_general_dilated`` call (its arguments; ``kwargs`` the rest) is a plain 2-D NHWC / HWIO
    convolution with explicit padding pairs: no dilation, no groups, no extra options. The drop-ins
    ``small_map_conv`` and ``thin_output_conv`` take their own paths only for such calls."""
    dn = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    return (dn == lax.conv_dimension_numbers(lhs.shape, rhs.shape, _DN)
            and lhs.ndim == 4 and not isinstance(padding, str) and feature_group_count == 1 and not kwargs
            and all(d is None or tuple(d) == (1, 1) for d in (lhs_dilation, rhs_dilation)))


def library_conv(window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count,
                 precision, kwargs):
    """``(x, kernel) -> lax.conv_general_dilated(x, kernel, <these arguments>)``: what the drop-ins
    ``small_map_conv`` and ``thin_output_conv`` run wherever they take no path of their own."""
    def library(x, kernel):
        return lax.conv_general_dilated(x, kernel, window_strides, padding, lhs_dilation=lhs_dilation,
                                        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                                        feature_group_count=feature_group_count, precision=precision, **kwargs)
    return library


def conv2d(x, kernel, strides=(1, 1), padding=0):
    """2-D convolution (cross-correlation), NHWC, PyTorch ``Conv2d(bias=False)`` semantics.

    ``y[n, i, j, o] = sum_{a, b, c} x_pad[n, s_h * i + a, s_w * j + b, c] * kernel[a, b, c, o]`` where ``x_pad`` is
    ``x`` zero-padded by ``padding`` on each border; output size ``floor((H + 2 p - k) / s) + 1``. A PyTorch weight
    ``[Cout, Cin, kh, kw]`` is ``weight.transpose(2, 3, 1, 0)``. Reverse-mode differentiable in ``x`` and ``kernel``
    to any order (see the module docstring); being a ``custom_vjp``, it has no forward mode (``jax.jvp``,
    ``jax.jacfwd``): use ``lax.conv_general_dilated`` there. No bias, dilation or groups.

    Args:
      x: ``[N, H, W, Cin]`` float array.
      kernel: ``[kh, kw, Cin, Cout]`` array.
      strides: int or ``(sh, sw)``, > 0.
      padding: int or ``(ph, pw)``, >= 0.

    Returns:
      ``[N, Hout, Wout, Cout]``.

    Raises:
      ValueError: wrong ranks, channel mismatch, non-positive strides, negative padding, kernel larger than the
        padded input.
    """
    check_rank("x", x, 4, "[N, H, W, C_in]")
    check_rank("kernel", kernel, 4, "[kh, kw, C_in, C_out]")
    strides = pair("strides", strides)
    padding = pair_nonneg("padding", padding)
    if kernel.shape[2] != x.shape[3]:
        raise ValueError(f"kernel: expected C_in = {x.shape[3]} (x's last dim) in shape [kh, kw, C_in, C_out], "
                         f"got {kernel.shape}")
    for axis, (size, k, p) in enumerate(zip(x.shape[1:3], kernel.shape[:2], padding)):
        if k > size + 2 * p:
            raise ValueError(f"kernel: expected a spatial size <= the padded input along axis {'HW'[axis]} "
                             f"({size} + 2 * {p}), got {k}")
    return _conv(x, kernel, strides, padding)
