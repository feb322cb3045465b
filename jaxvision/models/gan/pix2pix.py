"""Pix2Pix (Isola et al. 2017): U-Net generator and PatchGAN discriminator, laid out like the authors' PyTorch code
(junyanz/pytorch-CycleGAN-and-pix2pix ``UnetGenerator`` / ``NLayerDiscriminator`` with BatchNorm).

U-Net: ``depth = log2(size)`` levels, so the innermost feature map is 1x1 (``unet_256`` has 8). Encoder: 4x4
stride-2 convs (padding 1), LeakyReLU 0.2, BatchNorm except at the outermost and innermost levels; widths ngf,
2ngf, 4ngf, 8ngf, 8ngf, ... Decoder: ReLU, 4x4 stride-2 transposed conv, BatchNorm, dropout 0.5 at the extra 8ngf
levels (``depth - 5`` of them: three at 256 px, one at 64 px), then the skip concatenation; the output layer is a
transposed conv to ``out_channels`` + tanh. Convs have no bias where BatchNorm follows.

PatchGAN: ``n_layers`` stride-2 4x4 convs (ndf, 2ndf, 4ndf, 8ndf max) + one stride-1 4x4 conv (BatchNorm,
LeakyReLU 0.2) + a stride-1 4x4 conv to one logit per patch; its receptive field is
``patchgan_receptive_field(n_layers)``: 70 px for n_layers=3 (the paper's 70x70), 34 for 2, 16 for 1. The input is
the channel concatenation of the condition and the (real or generated) output.

Weights ~ N(0, 0.02), BatchNorm scales ~ N(1, 0.02) (the authors' ``init_type='normal'``); Adam(2e-4, 0.5, 0.999)
for both (``pix2pix_optimizer``), lambda_L1 = 100 (``jaxvision.train.gan.l1_term``).
"""
from __future__ import annotations

import math
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxvision._checks import check_positive, check_rank
from jaxvision.nn.conv import Conv
from jaxvision.nn.conv_transpose import ConvTranspose

init = nn.initializers.normal(0.02)


def _bn_scale_init(key, shape, dtype=jnp.float32):
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def pix2pix_optimizer(learning_rate=2e-4, b1=0.5, b2=0.999) -> optax.GradientTransformation:
    """Adam(2e-4, 0.5, 0.999), the paper's optimizer (one per player)."""
    return optax.adam(learning_rate, b1=b1, b2=b2)


def unet_depth(size: int) -> int:
    """Levels of the U-Net for square ``size`` px inputs: log2(size) (a power of two >= 32)."""
    if size < 32 or size & (size - 1):
        raise ValueError(f"size: expected a power of two >= 32 (the U-Net halves it down to 1x1), got {size}")
    return int(math.log2(size))


def patchgan_receptive_field(n_layers: int) -> int:
    """Receptive field in px of one PatchGAN logit: 4x4 kernels, ``n_layers`` of stride 2 then two of stride 1."""
    check_positive("n_layers", n_layers)
    strides = [2] * n_layers + [1, 1]
    rf = 1
    for s in reversed(strides):
        rf = rf * s + (4 - s)
    return rf


def _bn(train: bool, axis_name):
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, scale_init=_bn_scale_init,
                        axis_name=axis_name)


class UNetGenerator(nn.Module):
    """condition [B, size, size, Cin] in [-1, 1] -> image [B, size, size, out_channels] in [-1, 1] (tanh).

    Attributes:
      size: input side (a power of two >= 32); sets the depth (``unet_depth``).
      out_channels: output channels.
      ngf: width of the outermost level (levels have min(ngf * 2^k, 8 ngf) channels).
      dropout: dropout rate of the extra 8ngf decoder levels (0.5 in the paper; the noise of Pix2Pix).
      bn_axis_name: device axis for synchronized BatchNorm under pmap, or None.

    ``train=True`` uses batch statistics and dropout (RNG stream 'dropout'); ``train=False`` running statistics,
    no dropout.
    """

    size: int = 256
    out_channels: int = 3
    ngf: int = 64
    dropout: float = 0.5
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        check_rank("condition", x, 4, "[B, H, W, C]")
        depth = unet_depth(self.size)
        if tuple(x.shape[1:3]) != (self.size, self.size):
            raise ValueError(f"condition: expected shape [B, {self.size}, {self.size}, C], got {x.shape}")
        width = [min(self.ngf * 2**k, self.ngf * 8) for k in range(depth)]
        conv = partial(Conv, kernel_size=(4, 4), strides=(2, 2), padding=1, kernel_init=init)
        convt = partial(ConvTranspose, kernel_size=(4, 4), strides=(2, 2), padding=1, kernel_init=init)

        skips = []
        h = conv(width[0])(x.astype(jnp.float32))       # outermost: no norm
        for k in range(1, depth):
            skips.append(h)
            inner = k == depth - 1
            h = conv(width[k], use_bias=inner)(nn.leaky_relu(h, 0.2))
            if not inner:
                h = _bn(train, self.bn_axis_name)(h)
        for k in range(depth - 1, 0, -1):              # decoder level k: up to the size of level k-1
            h = convt(width[k - 1], use_bias=False)(nn.relu(h))
            h = _bn(train, self.bn_axis_name)(h)
            if 4 <= k < depth - 1 and self.dropout:     # the extra 8ngf levels
                h = nn.Dropout(self.dropout, deterministic=not train)(h)
            h = jnp.concatenate([skips[k - 1], h], -1)
        return jnp.tanh(convt(self.out_channels)(nn.relu(h)))


class PatchGANDiscriminator(nn.Module):
    """(image [B, H, W, C], condition [B, H, W, Cc]) -> logits [B, H', W'] (one per overlapping patch).

    Attributes:
      n_layers: stride-2 layers (3: 70x70 receptive field, the paper's default; see ``patchgan_receptive_field``).
      ndf: width of the first layer.
      bn_axis_name: device axis for synchronized BatchNorm under pmap, or None.

    With ``condition=None`` it is an unconditional PatchGAN on the image alone.
    """

    n_layers: int = 3
    ndf: int = 64
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x, condition=None, train: bool = True):
        check_rank("image", x, 4, "[B, H, W, C]")
        check_positive("n_layers", self.n_layers)
        h = x.astype(jnp.float32)
        if condition is not None:
            check_rank("condition", condition, 4, "[B, H, W, C]")
            if condition.shape[:3] != x.shape[:3]:
                raise ValueError(f"condition: expected shape [{', '.join(map(str, x.shape[:3]))}, C] (the image's), "
                                 f"got {condition.shape}")
            h = jnp.concatenate([condition.astype(jnp.float32), h], -1)
        for k in range(self.n_layers + 1):
            stride = 2 if k < self.n_layers else 1
            h = Conv(self.ndf * min(2**k, 8), (4, 4), strides=(stride, stride), padding=1, use_bias=k == 0,
                     kernel_init=init)(h)
            if k > 0:
                h = _bn(train, self.bn_axis_name)(h)
            h = nn.leaky_relu(h, 0.2)
        h = Conv(1, (4, 4), strides=(1, 1), padding=1, kernel_init=init)(h)
        return h[..., 0]


UNetGeneratorTiny = partial(UNetGenerator, size=32, ngf=4)
PatchGANDiscriminatorTiny = partial(PatchGANDiscriminator, n_layers=1, ndf=4)
