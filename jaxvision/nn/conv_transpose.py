"""Flax transposed-convolution layer with PyTorch ``ConvTranspose2d`` semantics, built on the fast
sub-pixel :func:`jaxvision.ops.conv_transpose` (its gradients run on XLA:CPU's fast stride-1 conv path)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxvision._checks import check_rank
from jaxvision.nn.conv import conv_params
from jaxvision.ops.transposed_conv import conv_transpose

Initializer = Callable[..., Any]


class ConvTranspose(nn.Module):
    """Transposed convolution, NHWC, drop-in for ``torch.nn.ConvTranspose2d(Cin, features, k, s, p)``.

    Output size per spatial axis: ``(in - 1) * stride - 2 * padding + kernel + output_padding``; the default
    ``kernel_size=(4, 4), strides=(2, 2), padding=1`` doubles the resolution (16x16 -> 32x32), as in DCGAN.

    Attributes:
      features: output channels ``C_out`` (> 0).
      kernel_size: int or ``(kh, kw)``.
      strides: int or ``(sh, sw)``.
      padding: int or ``(ph, pw)``, >= 0 (PyTorch's integer padding: cropped from each border).
      output_padding: int or pair, >= 0 and < strides.
      use_bias: add a learned bias ``[C_out]``.
      dtype: computation dtype (``None``: promote input and params).
      param_dtype: parameter dtype.
      kernel_init: initializer for param ``'kernel'`` of shape ``[kh, kw, C_in, C_out]`` (the scatter kernel:
        PyTorch's weight ``[Cin, Cout, kh, kw]`` transposed by ``(2, 3, 0, 1)``, no flip).
      bias_init: initializer for param ``'bias'`` ``[C_out]``.
    """

    features: int
    kernel_size: int | tuple[int, int] = (4, 4)
    strides: int | tuple[int, int] = (2, 2)
    padding: int | tuple[int, int] = 1
    output_padding: int | tuple[int, int] = 0
    use_bias: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Initializer = nn.initializers.lecun_normal()
    bias_init: Initializer = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x):
        """Apply the layer.

        Args:
          x: ``[N, H, W, C_in]`` float array (or ``[H, W, C_in]``, treated as a batch of one).

        Returns:
          ``[N, Hout, Wout, features]`` (``[Hout, Wout, features]`` for unbatched input).
        """
        check_rank("x", x, (3, 4), "[N, H, W, C] or [H, W, C]")
        unbatched = x.ndim == 3
        if unbatched:
            x = x[None]
        x, kernel, bias = conv_params(self, x)
        y = conv_transpose(x, kernel, self.strides, self.padding, self.output_padding)
        if bias is not None:
            y = y + bias
        return y[0] if unbatched else y
