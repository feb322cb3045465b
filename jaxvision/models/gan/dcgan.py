"""DCGAN (Radford, Metz & Chintala 2016), laid out like pytorch/examples/dcgan, for 16, 32 and 64 px.

Generator: z [B, nz] -> projection to 4x4x(ngf*2^(n-1)) -> n upsampling stages (x2 each) -> image [B, S, S, C]
in [-1, 1] (tanh), with n = log2(S / 4). BatchNorm + ReLU after every layer except the output. The projection is a
Dense layer, which is exactly PyTorch's ConvTranspose2d(nz, ngf*8, 4, 1, 0) applied to a 1x1 input.

Discriminator: image [B, S, S, C] in [-1, 1] -> n strided 4x4 convs (stride 2, padding 1; ``jaxvision.nn.Conv``,
whose input gradient is the fast sub-pixel transposed convolution) -> 4x4 valid conv -> one logit per image [B].
LeakyReLU 0.2 everywhere, BatchNorm everywhere except after the input layer. No bias in any conv (BatchNorm
follows; pytorch/examples uses bias=False too). All conv weights ~ N(0, 0.02), BatchNorm scales ~ N(1, 0.02),
offsets 0. Train both with Adam(2e-4, b1=0.5) (``dcgan_optimizer``).

The generator's upsampling is selectable (the lecture's options):
  'transposed'    jaxvision.nn.ConvTranspose(k=4, s=2, p=1): PyTorch ConvTranspose2d(4, 2, 1).
  'nearest'       jaxvision.ops.nearest_unpool(x, 2) then a 3x3 'SAME' conv (resize-convolution).
  'bed_of_nails'  jaxvision.ops.bed_of_nails_unpool(x, 2) then a 4x4 conv with padding ((2, 1), (2, 1)); this is
                  a transposed convolution written as zero insertion + convolution (same function class).
"""
from __future__ import annotations

import math
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxvision._checks import check_choice, check_rank
from jaxvision.nn.conv import Conv

UPSAMPLING = ("transposed", "nearest", "bed_of_nails")
SIZES = (16, 32, 64)

dcgan_init = nn.initializers.normal(0.02)


def _bn_scale_init(key, shape, dtype=jnp.float32):
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def dcgan_optimizer(learning_rate=2e-4, b1=0.5, b2=0.999) -> optax.GradientTransformation:
    """Adam(2e-4, beta1=0.5), the DCGAN paper's optimizer (one per player)."""
    return optax.adam(learning_rate, b1=b1, b2=b2)


def _stages(size: int) -> int:
    check_choice("size", size, SIZES)
    return int(math.log2(size // 4))


class Upsample2x(nn.Module):
    """x [B, H, W, Cin] -> [B, 2H, 2W, features] by the selected ``mode`` (see module docstring)."""

    features: int
    mode: str = "transposed"

    @nn.compact
    def __call__(self, x):
        check_choice("upsampling", self.mode, UPSAMPLING)
        if self.mode == "transposed":
            from jaxvision.nn import ConvTranspose

            return ConvTranspose(
                self.features, kernel_size=(4, 4), strides=(2, 2), padding=1, use_bias=False, kernel_init=dcgan_init
            )(x)
        from jaxvision import ops

        if self.mode == "nearest":
            x = ops.nearest_unpool(x, 2)
            return nn.Conv(self.features, (3, 3), padding="SAME", use_bias=False, kernel_init=dcgan_init)(x)
        x = ops.bed_of_nails_unpool(x, 2)
        return nn.Conv(self.features, (4, 4), padding=((2, 1), (2, 1)), use_bias=False, kernel_init=dcgan_init)(x)


class DCGANGenerator(nn.Module):
    """z [B, nz] float32 ~ N(0, I) -> images [B, size, size, channels] float32 in [-1, 1] (NHWC).

    Attributes:
      size: output side, 16, 32 or 64.
      nz: latent dimension.
      ngf: width of the last hidden stage (stages have ngf * 2^k channels).
      channels: output channels (1 grey, 3 RGB).
      upsampling: 'transposed', 'nearest' or 'bed_of_nails'.
      bn_axis_name: device axis for synchronized BatchNorm under pmap ('batch'), or None.
    """

    size: int = 64
    nz: int = 100
    ngf: int = 64
    channels: int = 3
    upsampling: str = "transposed"
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, z, train: bool = True):
        check_rank("z", z, 2, "[B, nz]")
        if z.shape[-1] != self.nz:
            raise ValueError(f"z: expected shape [B, {self.nz}], got {z.shape}")
        n = _stages(self.size)
        bn = partial(
            nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5,
            scale_init=_bn_scale_init, axis_name=self.bn_axis_name,
        )
        width = self.ngf * 2 ** (n - 1)
        h = nn.Dense(4 * 4 * width, use_bias=False, kernel_init=dcgan_init)(z.astype(jnp.float32))
        h = nn.relu(bn()(h.reshape(z.shape[0], 4, 4, width)))  # [B, 4, 4, ngf*2^(n-1)]
        for k in range(n - 2, -1, -1):
            h = Upsample2x(self.ngf * 2**k, self.upsampling)(h)
            h = nn.relu(bn()(h))
        h = Upsample2x(self.channels, self.upsampling)(h)  # [B, size, size, channels]
        return jnp.tanh(h)


class DCGANDiscriminator(nn.Module):
    """Images [B, size, size, channels] float32 in [-1, 1] (NHWC) -> logits [B] float32 (real if > 0).

    Attributes:
      size: input side, 16, 32 or 64.
      ndf: width of the first stage (stages have ndf * 2^k channels).
      channels: input channels.
      bn_axis_name: device axis for synchronized BatchNorm under pmap ('batch'), or None.
    """

    size: int = 64
    ndf: int = 64
    channels: int = 3
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        check_rank("x", x, 4, "[B, H, W, C]")
        want = (self.size, self.size, self.channels)
        if tuple(x.shape[1:]) != want:
            raise ValueError(f"x: expected shape [B, {want[0]}, {want[1]}, {want[2]}], got {x.shape}")
        n = _stages(self.size)
        h = x.astype(jnp.float32)
        for k in range(n):
            # jaxvision.nn.Conv == nn.Conv here (same params, names, values), with a faster input gradient.
            h = Conv(self.ndf * 2**k, (4, 4), strides=(2, 2), padding=1, use_bias=False, kernel_init=dcgan_init)(h)
            if k > 0:
                h = nn.BatchNorm(
                    use_running_average=not train, momentum=0.9, epsilon=1e-5,
                    scale_init=_bn_scale_init, axis_name=self.bn_axis_name,
                )(h)
            h = nn.leaky_relu(h, 0.2)
        h = nn.Conv(1, (4, 4), padding="VALID", use_bias=False, kernel_init=dcgan_init)(h)  # [B, 1, 1, 1]
        return h.reshape(x.shape[0])


DCGANGeneratorTiny = partial(DCGANGenerator, size=16, nz=8, ngf=4, channels=1)
DCGANDiscriminatorTiny = partial(DCGANDiscriminator, size=16, ndf=4, channels=1)
