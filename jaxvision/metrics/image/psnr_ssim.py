"""PSNR and SSIM for image restoration / super-resolution, batched and jit-compiled.

SSIM follows Wang et al. 2004 (IEEE TIP): local statistics under an 11 x 11 Gaussian window (sigma 1.5,
truncated at 3.5 sigma), K1 = 0.01, K2 = 0.03, population (not sample) variances, mean over the valid
region of the SSIM map (pixels at least 5 from the border) and over channels. This is scikit-image's
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=...,
channel_axis=-1)``, per image.

Super-resolution papers (SRCNN, SRGAN, EDSR; MATLAB ``rgb2ycbcr``) evaluate on the luma channel of ITU-R
BT.601 YCbCr and crop a border of ``scale`` pixels; ``y_channel=True`` and ``crop_border=s`` do that.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision._checks import check_positive, check_rank

__all__ = ["psnr", "ssim", "rgb_to_y", "BT601_LUMA"]

#: ITU-R BT.601 luma weights of R, G, B (MATLAB's ``rgb2ycbcr`` Y row without the +16 offset): the Y of the SR
#: papers' PSNR / SSIM; also the channel weights of a luma loss (``jaxvision.train.gan.mse_term``).
BT601_LUMA = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)


def rgb_to_y(images, data_range: float = 1.0):
    """ITU-R BT.601 luma of RGB ``images`` [..., 3] in [0, data_range], like MATLAB's ``rgb2ycbcr``.

    ``Y = data_range * 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255`` with R, G, B in [0, data_range],
    i.e. Y in [16, 235] * data_range / 255. Returns [..., 1].
    """
    weights = jnp.asarray(BT601_LUMA, images.dtype)
    y = jnp.matmul(images, weights, precision=jax.lax.Precision.HIGHEST) + data_range * 16.0 / 255.0  # not TF32
    return y[..., None]


def _prepare(name_a, a, name_b, b, data_range, y_channel, crop_border):
    check_rank(name_a, a, (3, 4), "[H, W, C] or [N, H, W, C]")
    if np.shape(a) != np.shape(b):
        raise ValueError(f"{name_a} and {name_b}: expected the same shape, got {np.shape(a)} and {np.shape(b)}")
    check_positive("data_range", data_range)
    check_positive("crop_border", crop_border, allow_zero=True)
    if y_channel and np.shape(a)[-1] != 3:
        raise ValueError(f"{name_a}: y_channel=True expects 3 (RGB) channels, got shape {np.shape(a)}")
    h, w = np.shape(a)[-3:-1]
    if 2 * crop_border >= min(h, w):
        raise ValueError(f"crop_border: {crop_border} leaves no pixels of a {h}x{w} image")


def _to_batch(x, dtype):
    x = jnp.asarray(x).astype(dtype)  # float64 if x64 is enabled, else float32
    return x if x.ndim == 4 else x[None]


def _common(a, b, data_range, y_channel, crop_border):
    if y_channel:
        a, b = rgb_to_y(a, data_range), rgb_to_y(b, data_range)
    if crop_border:
        c = crop_border
        a, b = a[:, c:-c, c:-c], b[:, c:-c, c:-c]
    return a, b


@partial(jax.jit, static_argnames=("y_channel", "crop_border"))
def _psnr(a, b, data_range, y_channel, crop_border):
    a, b = _common(a, b, data_range, y_channel, crop_border)
    mse = jnp.mean((a - b) ** 2, axis=(1, 2, 3))  # [N]
    return 10.0 * jnp.log10(data_range**2 / mse)


def psnr(a, b, data_range: float = 1.0, *, y_channel: bool = False, crop_border: int = 0) -> jax.Array:
    """Peak signal-to-noise ratio in dB, per image.

    Args:
      a: float [N, H, W, C] or [H, W, C] (C any; 3 for ``y_channel``), values in [0, data_range].
      b: same shape as ``a`` (the reference).
      data_range: the peak value (1.0 for [0, 1] images, 255 for uint8-scaled ones).
      y_channel: evaluate the BT.601 luma only.
      crop_border: ignore this many pixels at each image border.

    Returns:
      float [N] (or a scalar for unbatched input); +inf where the images are identical.
    """
    _prepare("a", a, "b", b, data_range, y_channel, crop_border)
    dt = jnp.result_type(float)
    out = _psnr(_to_batch(a, dt), _to_batch(b, dt), data_range, y_channel, int(crop_border))
    return out if np.ndim(a) == 4 else out[0]


def _gaussian_1d(sigma: float, truncate: float = 3.5) -> np.ndarray:
    radius = int(truncate * sigma + 0.5)  # scipy.ndimage.gaussian_filter's radius: 5 for sigma 1.5
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def _filter_valid(x, g):
    """Separable Gaussian over H and W of x [N, H, W, C], 'valid' region only (depthwise)."""
    k = g.shape[0]
    c = x.shape[-1]
    kh = jnp.tile(g.reshape(k, 1, 1, 1), (1, 1, 1, c))  # [k, 1, 1, C] HWIO depthwise
    kw = jnp.tile(g.reshape(1, k, 1, 1), (1, 1, 1, c))
    dn = ("NHWC", "HWIO", "NHWC")
    prec = jax.lax.Precision.HIGHEST
    x = jax.lax.conv_general_dilated(x, kh, (1, 1), "VALID", dimension_numbers=dn, feature_group_count=c,
                                     precision=prec)
    return jax.lax.conv_general_dilated(x, kw, (1, 1), "VALID", dimension_numbers=dn, feature_group_count=c,
                                        precision=prec)


@partial(jax.jit, static_argnames=("y_channel", "crop_border", "sigma", "return_map"))
def _ssim(a, b, data_range, y_channel, crop_border, sigma, k1, k2, return_map):
    a, b = _common(a, b, data_range, y_channel, crop_border)
    g = jnp.asarray(_gaussian_1d(sigma), a.dtype)
    # Stack the five filtered quantities along channels: one depthwise conv pass.
    c = a.shape[-1]
    stacked = jnp.concatenate([a, b, a * a, b * b, a * b], axis=-1)  # [N, H, W, 5C]
    f = _filter_valid(stacked, g)
    ux, uy, uxx, uyy, uxy = (f[..., i * c : (i + 1) * c] for i in range(5))
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy  # population (co)variances
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))  # [N, h', w', C]
    return s if return_map else jnp.mean(s, axis=(1, 2, 3))


def ssim(
    a,
    b,
    data_range: float = 1.0,
    *,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    y_channel: bool = False,
    crop_border: int = 0,
    return_map: bool = False,
) -> jax.Array:
    """Structural similarity (Wang et al. 2004, Gaussian window), per image.

    Args:
      a: float [N, H, W, C] or [H, W, C] in [0, data_range]; H, W >= 11 (after cropping).
      b: same shape as ``a`` (the reference).
      data_range: peak value (1.0 for [0, 1] images, 255 for uint8-scaled).
      sigma: Gaussian window std (window radius ``int(3.5 sigma + 0.5)``: 11 x 11 for 1.5).
      k1, k2: stabilising constants, C1 = (k1 L)^2, C2 = (k2 L)^2.
      y_channel: evaluate the BT.601 luma only (needs C = 3).
      crop_border: ignore this many pixels at each border before filtering.
      return_map: return the SSIM map [N, H-2r, W-2r, C] (valid region) instead of its mean.

    Returns:
      float [N] (scalar for unbatched input), mean over the valid region and channels.
    """
    _prepare("a", a, "b", b, data_range, y_channel, crop_border)
    win = 2 * int(3.5 * sigma + 0.5) + 1
    h, w = np.shape(a)[-3:-1]
    if min(h, w) - 2 * crop_border < win:
        raise ValueError(f"a: expected images of at least {win}x{win} after cropping for sigma={sigma}, "
                         f"got {h - 2 * crop_border}x{w - 2 * crop_border}")
    dt = jnp.result_type(float)
    out = _ssim(_to_batch(a, dt), _to_batch(b, dt), data_range, y_channel, int(crop_border), float(sigma),
                k1, k2, return_map)
    return out if np.ndim(a) == 4 else out[0]
