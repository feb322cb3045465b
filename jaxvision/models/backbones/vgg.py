"""VGG backbones (Simonyan & Zisserman 2015), NHWC, optional batch norm, torchvision layer order.

``VGG(cfg)`` is a stack of 3x3 conv (+ BN) + ReLU blocks separated by 2x2 max pools. Called with
``num_classes=None`` it returns the list of per-stage feature maps *before* each pool (stage ``i`` has stride
``2**i``), which is what detectors tap (SSD takes conv4_3 = ``stages[3]``). With ``num_classes`` it runs
torchvision's classifier (adaptive avg-pool to 7x7, 4096-4096-num_classes MLP with dropout) and returns logits.

Pools use ``SAME`` padding, i.e. PyTorch ``ceil_mode=True`` for odd sizes (as in SSD's 75 -> 38 pool); for even
sizes (224-px ImageNet inputs) this equals torchvision's floor mode.

Parameters are named ``conv{k}`` / ``bn{k}`` (k = index of the conv layer, 0-based) and ``fc{0,1,2}`` so
``torchvision_weights.vgg_variables_from_torch`` can map a torchvision ``state_dict`` onto them.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxvision._checks import check_rank

VGG11_CFG = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
#: A CPU-sized VGG for tests and the embedded ``shapes`` data (4 stages, stride 8 before the last pool).
VGG_TINY_CFG = (16, "M", 32, "M", 64, 64, "M", 128, "M")

conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")  # torchvision's kaiming_normal_(fan_out)


def adaptive_avg_pool(x, output_size: tuple[int, int]):
    """PyTorch ``AdaptiveAvgPool2d`` on NHWC ``x [B, H, W, C]`` -> ``[B, oh, ow, C]`` (static bins)."""
    h, w = x.shape[1:3]
    oh, ow = output_size
    if (h, w) == (oh, ow):
        return x
    rows = []
    for i in range(oh):
        h0, h1 = (i * h) // oh, -(-((i + 1) * h) // oh)
        cols = []
        for j in range(ow):
            w0, w1 = (j * w) // ow, -(-((j + 1) * w) // ow)
            cols.append(jnp.mean(x[:, h0:h1, w0:w1, :], axis=(1, 2)))
        rows.append(jnp.stack(cols, axis=1))
    return jnp.stack(rows, axis=1)


class VGG(nn.Module):
    """VGG feature extractor / classifier.

    Attributes:
        cfg: conv widths with ``"M"`` marking a 2x2 max pool (e.g. ``VGG16_CFG``).
        batch_norm: insert BatchNorm after every conv (torchvision ``vgg16_bn``).
        num_classes: if given, add torchvision's classifier and return logits ``[B, num_classes]``.
        hidden: width of the classifier's two hidden layers (4096 in the paper).
        dropout: classifier dropout rate (active only when ``train=True``; needs a ``'dropout'`` rng).
        dtype: computation dtype.
    """

    cfg: Sequence[Any] = VGG16_CFG
    batch_norm: bool = False
    num_classes: int | None = None
    hidden: int = 4096
    dropout: float = 0.5
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        """Run the network.

        Args:
            x: images ``float32 [B, H, W, C]`` (NHWC; any normalization is the caller's).
            train: BatchNorm uses batch statistics and dropout is active when True.

        Returns:
            ``list`` of per-stage features ``[B, H / 2**i, W / 2**i, C_i]`` taken before each pool (plus the
            final output if ``cfg`` does not end with a pool) when ``num_classes`` is None, else logits
            ``float32 [B, num_classes]``.
        """
        check_rank("x", x, 4, "[B, H, W, C]")
        x = jnp.asarray(x, self.dtype)
        stages, k = [], 0
        for v in self.cfg:
            if v == "M":
                stages.append(x)
                x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="SAME")
                continue
            x = nn.Conv(int(v), (3, 3), padding=1, kernel_init=conv_init, dtype=self.dtype, name=f"conv{k}")(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=self.dtype,
                                 name=f"bn{k}")(x)
            x = nn.relu(x)
            k += 1
        if self.num_classes is None:
            if self.cfg[-1] != "M":
                stages.append(x)  # a cfg not ending in a pool also returns its last convs' output
            return stages
        x = adaptive_avg_pool(x, (7, 7)).reshape(x.shape[0], -1)
        lin_init = nn.initializers.normal(0.01)
        for i in range(2):
            x = nn.relu(nn.Dense(self.hidden, kernel_init=lin_init, dtype=self.dtype, name=f"fc{i}")(x))
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_classes, kernel_init=lin_init, dtype=self.dtype, name="fc2")(x)


VGG11 = functools.partial(VGG, cfg=VGG11_CFG)
VGG16 = functools.partial(VGG, cfg=VGG16_CFG)
VGG16BN = functools.partial(VGG, cfg=VGG16_CFG, batch_norm=True)
VGGTiny = functools.partial(VGG, cfg=VGG_TINY_CFG, batch_norm=True, hidden=64)
