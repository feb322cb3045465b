"""MLP generator and discriminator for 2-D toy distributions (the ring / grid mixtures of Gaussians).

The setting of the mode-collapse literature (Metz et al. 2017 unrolled GANs, VEEGAN, PacGAN): a small fully
connected generator mapping low-dimensional Gaussian noise to points in R^2 and a fully connected discriminator
returning one logit per point.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import flax.linen as nn
import jax.numpy as jnp

from jaxvision._checks import check_last_dim, check_rank


class MLPGenerator(nn.Module):
    """z [B, latent_dim] float32 ~ N(0, I) -> points [B, out_dim] float32 (unbounded).

    Attributes:
      hidden: widths of the hidden layers.
      out_dim: output dimension (2 for the mixtures).
      batch_norm: BatchNorm after every hidden Dense (PacGAN's generator uses it).
      bn_axis_name: device axis for synchronized BatchNorm under pmap ('batch'), or None.
    """

    hidden: Sequence[int] = (128, 128, 128, 128)
    out_dim: int = 2
    batch_norm: bool = False
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, z, train: bool = True):
        check_rank("z", z, 2, "[B, latent_dim]")
        h = z.astype(jnp.float32)
        for width in self.hidden:
            h = nn.Dense(width, use_bias=not self.batch_norm)(h)
            if self.batch_norm:
                h = nn.BatchNorm(use_running_average=not train, momentum=0.9, axis_name=self.bn_axis_name)(h)
            h = nn.relu(h)
        return nn.Dense(self.out_dim)(h)  # [B, out_dim]


class MLPDiscriminator(nn.Module):
    """Points [B, in_dim] float32 -> logits [B] float32 (real if > 0).

    Attributes:
      hidden: widths of the hidden layers (LeakyReLU 0.2 after each).
      in_dim: input dimension (2 for the mixtures).
      batch_norm: BatchNorm after every hidden Dense except the first.
      bn_axis_name: device axis for synchronized BatchNorm under pmap, or None.
    """

    hidden: Sequence[int] = (128, 128, 128)
    in_dim: int = 2
    batch_norm: bool = False
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        check_rank("x", x, 2, "[B, in_dim]")
        check_last_dim("x", x, self.in_dim)
        h = x.astype(jnp.float32)
        for i, width in enumerate(self.hidden):
            bn = self.batch_norm and i > 0
            h = nn.Dense(width, use_bias=not bn)(h)  # a bias before BatchNorm would be a dead parameter
            if bn:
                h = nn.BatchNorm(use_running_average=not train, momentum=0.9, axis_name=self.bn_axis_name)(h)
            h = nn.leaky_relu(h, 0.2)
        return nn.Dense(1)(h)[:, 0]  # [B]


MLPGeneratorTiny = partial(MLPGenerator, hidden=(16, 16))
MLPDiscriminatorTiny = partial(MLPDiscriminator, hidden=(16, 16))
