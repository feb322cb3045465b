"""ResNet backbones (He et al. 2016): ResNet-18/34 (basic blocks) and ResNet-50/101 (bottlenecks), NHWC + BN.

torchvision's v1.5 layout (stride on the bottleneck's 3x3 conv) and parameter names (``conv1``, ``bn1``,
``layer{i}_{j}/{conv1,bn1,...,downsample_conv,downsample_bn}``, ``fc``), so
``torchvision_weights.resnet_variables_from_torch`` can load a torchvision ``state_dict``.

With ``num_classes=None`` the network returns the four stage outputs ``[C2, C3, C4, C5]`` (strides 4, 8, 16, 32
with the ImageNet stem; 1, 2, 4, 8 with ``small_stem=True``, the CPU variant for 32-96 px images).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxvision._checks import check_rank

conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")  # torchvision's kaiming_normal_(fan_out)


def _bn(train, dtype, name):
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype, name=name)


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut. Output width = ``features``."""

    features: int
    strides: int = 1
    downsample: bool = False
    dtype: Any = jnp.float32
    expansion = 1

    @nn.compact
    def __call__(self, x, train: bool = False):
        conv = functools.partial(nn.Conv, use_bias=False, kernel_init=conv_init, dtype=self.dtype)
        y = conv(self.features, (3, 3), (self.strides,) * 2, padding=1, name="conv1")(x)
        y = nn.relu(_bn(train, self.dtype, "bn1")(y))
        y = conv(self.features, (3, 3), padding=1, name="conv2")(y)
        y = _bn(train, self.dtype, "bn2")(y)
        if self.downsample:
            x = conv(self.features, (1, 1), (self.strides,) * 2, name="downsample_conv")(x)
            x = _bn(train, self.dtype, "downsample_bn")(x)
        return nn.relu(x + y)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand (x4) with a shortcut. Output width = ``4 * features``."""

    features: int
    strides: int = 1
    downsample: bool = False
    dtype: Any = jnp.float32
    expansion = 4

    @nn.compact
    def __call__(self, x, train: bool = False):
        conv = functools.partial(nn.Conv, use_bias=False, kernel_init=conv_init, dtype=self.dtype)
        y = nn.relu(_bn(train, self.dtype, "bn1")(conv(self.features, (1, 1), name="conv1")(x)))
        y = conv(self.features, (3, 3), (self.strides,) * 2, padding=1, name="conv2")(y)
        y = nn.relu(_bn(train, self.dtype, "bn2")(y))
        y = _bn(train, self.dtype, "bn3")(conv(self.features * 4, (1, 1), name="conv3")(y))
        if self.downsample:
            x = conv(self.features * 4, (1, 1), (self.strides,) * 2, name="downsample_conv")(x)
            x = _bn(train, self.dtype, "downsample_bn")(x)
        return nn.relu(x + y)


class ResNet(nn.Module):
    """ResNet feature extractor / classifier.

    Attributes:
        stage_sizes: blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        block: ``BasicBlock`` or ``Bottleneck``.
        width: channels of the first stage (64 in the paper); stage ``i`` has ``width * 2**i`` (x4 for bottlenecks).
        num_classes: if given, global average pool + ``fc`` and return logits ``[B, num_classes]``.
        small_stem: a single 3x3 stem conv of stride ``stem_stride`` without max pool (for 32-96 px images)
            instead of the ImageNet stem (7x7/2 conv + 3x3/2 max pool).
        stem_stride: stride of the small stem (1 or 2).
        dtype: computation dtype.
    """

    stage_sizes: Sequence[int] = (2, 2, 2, 2)
    block: Any = BasicBlock
    width: int = 64
    num_classes: int | None = None
    small_stem: bool = False
    stem_stride: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        """Run the network.

        Args:
            x: images ``float32 [B, H, W, C]`` (NHWC; normalization is the caller's).
            train: BatchNorm uses batch statistics when True.

        Returns:
            ``[C2, C3, C4, C5]`` stage features when ``num_classes`` is None, else logits ``[B, num_classes]``.
        """
        check_rank("x", x, 4, "[B, H, W, C]")
        x = jnp.asarray(x, self.dtype)
        if self.small_stem:
            x = nn.Conv(self.width, (3, 3), (self.stem_stride,) * 2, padding=1, use_bias=False,
                        kernel_init=conv_init, dtype=self.dtype, name="conv1")(x)
            x = nn.relu(_bn(train, self.dtype, "bn1")(x))
        else:
            x = nn.Conv(self.width, (7, 7), (2, 2), padding=3, use_bias=False, kernel_init=conv_init,
                        dtype=self.dtype, name="conv1")(x)
            x = nn.relu(_bn(train, self.dtype, "bn1")(x))
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        stages = []
        in_ch = self.width
        for i, n in enumerate(self.stage_sizes):
            feats = self.width * 2**i
            for j in range(n):
                strides = 2 if (j == 0 and i > 0) else 1
                down = j == 0 and (strides != 1 or in_ch != feats * self.block.expansion)
                x = self.block(feats, strides, down, self.dtype, name=f"layer{i + 1}_{j}")(x, train)
                in_ch = feats * self.block.expansion
            stages.append(x)
        if self.num_classes is None:
            return stages
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, dtype=self.dtype, name="fc")(x)


ResNet18 = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2), block=BasicBlock)
ResNet34 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block=BasicBlock)
ResNet50 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block=Bottleneck)
ResNet101 = functools.partial(ResNet, stage_sizes=(3, 4, 23, 3), block=Bottleneck)
#: CPU-sized ResNet for tests and the embedded data: one basic block per stage, 16 base channels, small stem.
ResNetTiny = functools.partial(ResNet, stage_sizes=(1, 1, 1, 1), block=BasicBlock, width=16, small_stem=True)
#: The CPU detection backbone for 64-96 px ``shapes`` images: stride-2 3x3 stem, 4 basic blocks of 32..256
#: channels, stage strides 2, 4, 8, 16.
ResNetSmall = functools.partial(ResNet, stage_sizes=(1, 1, 1, 1), block=BasicBlock, width=32, small_stem=True,
                                stem_stride=2)
