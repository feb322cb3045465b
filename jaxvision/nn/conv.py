"""Flax convolution layer with PyTorch ``Conv2d`` semantics, built on :func:`jaxvision.ops.conv2d` (its input
gradient runs on XLA:CPU's fast stride-1 path instead of a zero-dilated convolution)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxvision._checks import check_rank, pair
from jaxvision.ops.conv import conv2d

Initializer = Callable[..., Any]


def conv_params(module: nn.Module, x):
    """Create (or fetch) a conv layer's ``'kernel'`` ``[kh, kw, C_in, C_out]`` and optional ``'bias'`` ``[C_out]``
    for input ``x [..., C_in]`` from ``module``'s fields (``features, kernel_size, use_bias, dtype, param_dtype,
    kernel_init, bias_init``); returns ``(x, kernel, bias or None)`` promoted to the computation dtype. Call from
    the module's compact ``__call__``."""
    kh, kw = pair("kernel_size", module.kernel_size)
    if module.features <= 0:
        raise ValueError(f"features: expected > 0, got {module.features}")
    kernel = module.param("kernel", module.kernel_init, (kh, kw, x.shape[-1], module.features), module.param_dtype)
    bias = module.param("bias", module.bias_init, (module.features,), module.param_dtype) if module.use_bias else None
    return nn.dtypes.promote_dtype(x, kernel, bias, dtype=module.dtype)


class Conv(nn.Module):
    """2-D convolution, NHWC, drop-in for ``torch.nn.Conv2d(Cin, features, k, s, p)`` (and, for integer or pair
    padding, for ``flax.linen.Conv``: same ``'kernel'`` ``[kh, kw, C_in, C_out]`` and ``'bias'`` params and the
    same auto-name ``Conv_<i>``, so checkpoints are interchangeable).

    Output size per spatial axis: ``floor((in + 2 * padding - kernel) / stride) + 1``. Reverse-mode only (no
    ``jax.jvp``; see :func:`jaxvision.ops.conv2d`).

    Attributes:
      features: output channels ``C_out`` (> 0).
      kernel_size: int or ``(kh, kw)``.
      strides: int or ``(sh, sw)``.
      padding: int or ``(ph, pw)``, >= 0 zeros added on each border.
      use_bias: add a learned bias ``[C_out]``.
      dtype: computation dtype (``None``: promote input and params).
      param_dtype: parameter dtype.
      kernel_init: initializer for ``'kernel'`` (PyTorch's weight ``[Cout, Cin, kh, kw]`` transposed by
        ``(2, 3, 1, 0)``).
      bias_init: initializer for ``'bias'``.
    """

    features: int
    kernel_size: int | tuple[int, int] = (3, 3)
    strides: int | tuple[int, int] = (1, 1)
    padding: int | tuple[int, int] = 0
    use_bias: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Initializer = nn.initializers.lecun_normal()
    bias_init: Initializer = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x):
        """Apply the layer: ``x [N, H, W, C_in]`` -> ``[N, Hout, Wout, features]``."""
        check_rank("x", x, 4, "[N, H, W, C]")
        x, kernel, bias = conv_params(self, x)
        y = conv2d(x, kernel, self.strides, self.padding)
        return y if bias is None else y + bias
