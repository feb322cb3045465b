"""InceptionV3 exactly as pytorch-fid's FID network (``pytorch_fid.inception.fid_inception_v3``), in Flax.

This is the TensorFlow 2015-12-05 Inception graph that the original FID (TTUR) code used, which differs from
torchvision's InceptionV3 in four places: 1008 output classes; the average pools inside the A, C and first E
blocks exclude the zero padding from the count (``count_include_pad=False``); and the last E block
(``Mixed_7c``) pools its fourth branch with a *max* pool. Module names follow the PyTorch state dict
(``Mixed_5b.branch1x1.conv``, ``...bn``, ``fc``) so weight conversion is a name-for-name mapping
(:mod:`jaxvision.metrics.generative.inception_weights`).

Input: images NHWC float32 in [0, 1] of any size; they are resized bilinearly to 299 x 299 with
``align_corners=False`` semantics (PyTorch's ``F.interpolate``) and mapped to [-1, 1], as pytorch-fid does.
Output: ``{'pool3': [N, 2048], 'logits': [N, 1008]}``. Inference only (BatchNorm uses running statistics).
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

__all__ = ["FIDInceptionV3", "bilinear_resize_matrix", "resize_bilinear"]


def bilinear_resize_matrix(in_size: int, out_size: int) -> np.ndarray:
    """[out_size, in_size] matrix of PyTorch's bilinear interpolation weights (``align_corners=False``).

    Source coordinate ``(i + 0.5) * in/out - 0.5`` clamped below at 0, neighbours ``floor`` and ``floor + 1``
    (clamped to the last pixel), exactly as ATen's ``upsample_bilinear2d``; no antialiasing.
    """
    scale = in_size / out_size
    src = np.maximum((np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    frac = src - i0
    m = np.zeros((out_size, in_size), np.float64)
    np.add.at(m, (np.arange(out_size), i0), 1.0 - frac)
    np.add.at(m, (np.arange(out_size), i1), frac)
    return m.astype(np.float32)


def resize_bilinear(images, size: tuple[int, int]):
    """Resize NHWC ``images`` to ``size`` (h, w) like ``F.interpolate(mode='bilinear', align_corners=False)``."""
    h, w = images.shape[1:3]
    if (h, w) == tuple(size):
        return images
    rh = jnp.asarray(bilinear_resize_matrix(h, size[0]))  # [H', H]
    rw = jnp.asarray(bilinear_resize_matrix(w, size[1]))  # [W', W]
    return jnp.einsum("ph,nhwc,qw->npqc", rh, images, rw)


def _pads(padding):
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return ((ph, ph), (pw, pw))


class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm(eps=1e-3, running stats) -> ReLU, torchvision's ``BasicConv2d``."""

    features: int
    kernel_size: tuple[int, int] = (1, 1)
    strides: int = 1
    padding: int | tuple[int, int] = 0

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(self.features, self.kernel_size, (self.strides,) * 2, _pads(self.padding), use_bias=False,
                    name="conv")(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
        return nn.relu(x)


def _avg_pool_excl_pad(x):
    return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3s2(x):
    return nn.max_pool(x, (3, 3), (2, 2), "VALID")


class FIDInceptionA(nn.Module):
    pool_features: int

    @nn.compact
    def __call__(self, x):
        b1 = BasicConv2d(64, name="branch1x1")(x)
        b5 = BasicConv2d(48, name="branch5x5_1")(x)
        b5 = BasicConv2d(64, (5, 5), padding=2, name="branch5x5_2")(b5)
        b3 = BasicConv2d(64, name="branch3x3dbl_1")(x)
        b3 = BasicConv2d(96, (3, 3), padding=1, name="branch3x3dbl_2")(b3)
        b3 = BasicConv2d(96, (3, 3), padding=1, name="branch3x3dbl_3")(b3)
        bp = BasicConv2d(self.pool_features, name="branch_pool")(_avg_pool_excl_pad(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    @nn.compact
    def __call__(self, x):
        b3 = BasicConv2d(384, (3, 3), strides=2, name="branch3x3")(x)
        bd = BasicConv2d(64, name="branch3x3dbl_1")(x)
        bd = BasicConv2d(96, (3, 3), padding=1, name="branch3x3dbl_2")(bd)
        bd = BasicConv2d(96, (3, 3), strides=2, name="branch3x3dbl_3")(bd)
        return jnp.concatenate([b3, bd, _max_pool_3s2(x)], axis=-1)


class FIDInceptionC(nn.Module):
    channels_7x7: int

    @nn.compact
    def __call__(self, x):
        c7 = self.channels_7x7
        b1 = BasicConv2d(192, name="branch1x1")(x)
        b7 = BasicConv2d(c7, name="branch7x7_1")(x)
        b7 = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
        b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
        bd = BasicConv2d(c7, name="branch7x7dbl_1")(x)
        bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
        bd = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
        bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
        bd = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
        bp = BasicConv2d(192, name="branch_pool")(_avg_pool_excl_pad(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    @nn.compact
    def __call__(self, x):
        b3 = BasicConv2d(192, name="branch3x3_1")(x)
        b3 = BasicConv2d(320, (3, 3), strides=2, name="branch3x3_2")(b3)
        b7 = BasicConv2d(192, name="branch7x7x3_1")(x)
        b7 = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
        b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
        b7 = BasicConv2d(192, (3, 3), strides=2, name="branch7x7x3_4")(b7)
        return jnp.concatenate([b3, b7, _max_pool_3s2(x)], axis=-1)


class FIDInceptionE(nn.Module):
    """E block; ``max_pool=False`` is FIDInceptionE_1 (avg pool, padding excluded), True is FIDInceptionE_2."""

    max_pool: bool = False

    @nn.compact
    def __call__(self, x):
        b1 = BasicConv2d(320, name="branch1x1")(x)
        b3 = BasicConv2d(384, name="branch3x3_1")(x)
        b3 = jnp.concatenate([
            BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
            BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3),
        ], axis=-1)
        bd = BasicConv2d(448, name="branch3x3dbl_1")(x)
        bd = BasicConv2d(384, (3, 3), padding=1, name="branch3x3dbl_2")(bd)
        bd = jnp.concatenate([
            BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
            BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd),
        ], axis=-1)
        if self.max_pool:
            pooled = nn.max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)))
        else:
            pooled = _avg_pool_excl_pad(x)
        bp = BasicConv2d(192, name="branch_pool")(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
    """pytorch-fid's FID InceptionV3. ``__call__(images [N, H, W, 3] in [0, 1]) -> {'pool3', 'logits'}``.

    Attributes:
      num_classes: logits size (1008 for the FID weights).
      resize_input: resize to 299 x 299 (bilinear, align_corners=False) first, as pytorch-fid does by default.
      normalize_input: map [0, 1] -> [-1, 1] first.
    """

    num_classes: int = 1008
    resize_input: bool = True
    normalize_input: bool = True

    @nn.compact
    def __call__(self, images):
        x = images.astype(jnp.float32)
        if self.resize_input:
            x = resize_bilinear(x, (299, 299))
        if self.normalize_input:
            x = 2.0 * x - 1.0
        x = BasicConv2d(32, (3, 3), strides=2, name="Conv2d_1a_3x3")(x)
        x = BasicConv2d(32, (3, 3), name="Conv2d_2a_3x3")(x)
        x = BasicConv2d(64, (3, 3), padding=1, name="Conv2d_2b_3x3")(x)
        x = _max_pool_3s2(x)
        x = BasicConv2d(80, name="Conv2d_3b_1x1")(x)
        x = BasicConv2d(192, (3, 3), name="Conv2d_4a_3x3")(x)
        x = _max_pool_3s2(x)
        x = FIDInceptionA(32, name="Mixed_5b")(x)
        x = FIDInceptionA(64, name="Mixed_5c")(x)
        x = FIDInceptionA(64, name="Mixed_5d")(x)
        x = InceptionB(name="Mixed_6a")(x)
        for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
            x = FIDInceptionC(c7, name=name)(x)
        x = InceptionD(name="Mixed_7a")(x)
        x = FIDInceptionE(max_pool=False, name="Mixed_7b")(x)
        x = FIDInceptionE(max_pool=True, name="Mixed_7c")(x)
        pool3 = jnp.mean(x, axis=(1, 2))  # [N, 2048], adaptive average pool to 1x1
        logits = nn.Dense(self.num_classes, name="fc")(pool3)  # [N, 1008]
        return {"pool3": pool3, "logits": logits}

