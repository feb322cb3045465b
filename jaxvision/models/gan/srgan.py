"""SRGAN (Ledig et al. 2017): the SRResNet generator, the paper's discriminator and the VGG54 content loss.

SRResNet (Fig. 4 of the paper): 9x9 conv (nf) + PReLU; ``num_blocks`` residual blocks (3x3 conv, BatchNorm,
PReLU, 3x3 conv, BatchNorm, + input); 3x3 conv + BatchNorm + the long skip; ``log2(scale)`` sub-pixel stages
(3x3 conv to 4 nf, pixel shuffle x2, PReLU); 9x9 conv to 3 channels. Input: the low-resolution image in [-1, 1]
``[B, h, w, 3]``; output ``[B, scale h, scale w, 3]`` in the same range (linear output, clip for display).

Discriminator: 3x3 conv (ndf) + LeakyReLU 0.2, then seven 3x3 conv + BatchNorm + LeakyReLU blocks with widths
ndf, 2ndf, 2ndf, 4ndf, 4ndf, 8ndf, 8ndf and strides 2, 1, 2, 1, 2, 1, 2 (eight convs in all, /16 overall), then
Dense(16 ndf) + LeakyReLU + Dense(1): one logit per image. The dense layers fix the input size at init (96 px in
the paper).

VGG54 content loss: the squared error of VGG19 features after the 4th conv (and ReLU) before the 5th max pool,
computed on ImageNet-normalized [0, 1] images and scaled by 1/12.75 as in the paper's code. The weights come from
a local torchvision ``vgg19`` state_dict file (``vgg54_features(path)``; reading it needs torch).
"""
from __future__ import annotations

import math
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision._checks import check_positive, check_rank
from jaxvision.models.backbones.vgg import VGG
from jaxvision.ops import thin_output_conv

#: VGG19 up to conv5_4 + ReLU (no 5th max pool).
VGG19_54_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG_FEATURE_SCALE = 1.0 / 12.75


def pixel_shuffle(x, r: int):
    """Sub-pixel rearrangement ``[B, H, W, C r^2] -> [B, H r, W r, C]`` (PyTorch ``PixelShuffle`` in NHWC: output
    channel c at sub-position (i, j) is input channel ``c r^2 + i r + j``)."""
    b, h, w, c = x.shape
    if c % (r * r):
        raise ValueError(f"x: expected channels divisible by r^2={r * r}, got {x.shape}")
    oc = c // (r * r)
    x = x.reshape(b, h, w, oc, r, r)
    return x.transpose(0, 1, 4, 2, 5, 3).reshape(b, h * r, w * r, oc)


def _bn(train, axis_name):
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, axis_name=axis_name)


class SRResNet(nn.Module):
    """Low-resolution images [B, h, w, 3] in [-1, 1] -> [B, scale h, scale w, 3] (linear output).

    Attributes:
      scale: upscaling factor, a power of two (4 in the paper: two sub-pixel x2 stages).
      num_blocks: residual blocks B (16 in the paper).
      nf: feature width (64).
      bicubic_skip: add the bicubic upsampling of the input to the output (global residual learning, as VDSR;
        not in the paper's SRResNet, which must learn the identity part too: False reproduces the paper). The
        last 9x9 conv is then zero-initialised, so the untrained G is exactly bicubic upsampling instead of
        bicubic plus the noise of a random last layer.
      bn_axis_name: device axis for synchronized BatchNorm under pmap, or None.
    """

    scale: int = 4
    num_blocks: int = 16
    nf: int = 64
    bicubic_skip: bool = False
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        check_rank("low-resolution image", x, 4, "[B, h, w, 3]")
        if self.scale < 2 or self.scale & (self.scale - 1):
            raise ValueError(f"scale: expected a power of two >= 2, got {self.scale}")
        check_positive("num_blocks", self.num_blocks)
        conv = partial(nn.Conv, kernel_size=(3, 3), padding=1)
        h = nn.PReLU()(nn.Conv(self.nf, (9, 9), padding=4)(x.astype(jnp.float32)))
        skip = h
        for _ in range(self.num_blocks):
            r = nn.PReLU()(_bn(train, self.bn_axis_name)(conv(self.nf, use_bias=False)(h)))
            h = h + _bn(train, self.bn_axis_name)(conv(self.nf, use_bias=False)(r))
        h = skip + _bn(train, self.bn_axis_name)(conv(self.nf, use_bias=False)(h))
        for _ in range(int(math.log2(self.scale))):
            h = nn.PReLU()(pixel_shuffle(conv(4 * self.nf)(h), 2))
        last_init = nn.initializers.zeros if self.bicubic_skip else nn.initializers.lecun_normal()
        # on the CPU, its gradients over 4x4 pixel blocks (3.7x faster; the forward is the library's)
        out = nn.Conv(3, (9, 9), padding=4, kernel_init=last_init, conv_general_dilated=thin_output_conv)(h)
        if self.bicubic_skip:
            b, hh, ww, c = x.shape
            out = out + jax.image.resize(x.astype(jnp.float32), (b, hh * self.scale, ww * self.scale, c), "cubic")
        return out


class SRGANDiscriminator(nn.Module):
    """Images [B, H, W, 3] in [-1, 1] -> logits [B] (H, W divisible by 16; fixed at init by the dense layer).

    Attributes:
      ndf: width of the first convs (64 in the paper).
      bn_axis_name: device axis for synchronized BatchNorm under pmap, or None.
    """

    ndf: int = 64
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        check_rank("image", x, 4, "[B, H, W, 3]")
        if x.shape[1] % 16 or x.shape[2] % 16:
            raise ValueError(f"image: expected H and W divisible by 16, got {x.shape}")
        h = nn.leaky_relu(nn.Conv(self.ndf, (3, 3), padding=1)(x.astype(jnp.float32)), 0.2)
        for width, stride in zip((1, 2, 2, 4, 4, 8, 8), (2, 1, 2, 1, 2, 1, 2)):
            h = nn.Conv(self.ndf * width, (3, 3), strides=(stride, stride), padding=1, use_bias=False)(h)
            h = nn.leaky_relu(_bn(train, self.bn_axis_name)(h), 0.2)
        h = nn.leaky_relu(nn.Dense(self.ndf * 16)(h.reshape(h.shape[0], -1)), 0.2)
        return nn.Dense(1)(h)[:, 0]


def vgg54_variables(path: str) -> dict:
    """``{'params': ...}`` of ``VGG(cfg=VGG19_54_CFG)`` from a local torchvision ``vgg19`` state_dict file.

    Raises:
      FileNotFoundError: no file at ``path``.
      ImportError: torch is not installed (it reads the file with ``torch.load(weights_only=True)``).
      ValueError: the file is not a VGG19 state_dict (fewer than 16 convs).
    """
    import os

    from jaxvision.models.backbones.torchvision_weights import load_state_dict, vgg_variables_from_torch

    if not os.path.isfile(path):
        raise FileNotFoundError(f"vgg_weights: expected a torchvision vgg19 state_dict file, got {path!r} (no file)")
    params = vgg_variables_from_torch(load_state_dict(path), batch_norm=False)["params"]
    convs = {f"conv{k}": params[f"conv{k}"] for k in range(16) if f"conv{k}" in params}
    if len(convs) != 16 or convs["conv15"]["kernel"].shape != (3, 3, 512, 512):
        raise ValueError(f"vgg_weights: expected a torchvision vgg19 state_dict (16 convs), got {path!r} with "
                         f"{sum(k.startswith('conv') for k in params)} convs")
    return {"params": convs}


def vgg54_features(variables: dict):
    """``features(images [B, H, W, 3] in [-1, 1]) -> VGG19 conv5_4 features / 12.75`` for ``feature_term``.

    Args:
      variables: ``vgg54_variables(path)`` (or any params of ``VGG(cfg=VGG19_54_CFG)``).
    """
    net = VGG(cfg=VGG19_54_CFG)
    mean, std = jnp.asarray(IMAGENET_MEAN), jnp.asarray(IMAGENET_STD)

    def features(images):
        x = ((images + 1.0) * 0.5 - mean) / std
        return net.apply(variables, x)[-1] * VGG_FEATURE_SCALE

    return features


SRResNetTiny = partial(SRResNet, num_blocks=1, nf=8)
SRGANDiscriminatorTiny = partial(SRGANDiscriminator, ndf=4)
