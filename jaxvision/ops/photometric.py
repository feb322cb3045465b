"""SSD's photometric distortion as a jit-able batch op: the device-side counterpart of the host's
``jaxvision.data.augment.photometric_distort`` (same parameter distributions, float arithmetic instead of uint8
lookup tables and OpenCV's 8-bit HSV, so pixels agree to a few levels of 255, not exactly).

Images are float32 ``[B, H, W, 3]`` RGB in [0, 1]. Per image, as in SSD (Liu et al. 2016) and torchvision's
detection references: brightness ``x + delta`` (delta uniform in +-32/255), contrast ``x * c`` (c in [0.5, 1.5],
before or after the rest with probability 1/2), saturation ``s * f`` (f in [0.5, 1.5]) and hue ``h + d`` (d in
+-18 degrees) in HSV, each applied with probability 1/2; values are clipped to [0, 1] after every step.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def rgb_to_hsv(rgb: jnp.ndarray) -> jnp.ndarray:
    """``[..., 3]`` RGB in [0, 1] -> HSV, all three in [0, 1] (hue in turns; 0 where the colour is grey)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    maxc = jnp.max(rgb, -1)
    d = maxc - jnp.min(rgb, -1)
    safe_d = jnp.where(d > 0, d, 1.0)
    rc, gc, bc = (maxc - r) / safe_d, (maxc - g) / safe_d, (maxc - b) / safe_d
    h = jnp.where(r == maxc, bc - gc, jnp.where(g == maxc, 2.0 + rc - bc, 4.0 + gc - rc))
    h = jnp.where(d > 0, (h / 6.0) % 1.0, 0.0)
    s = jnp.where(maxc > 0, d / jnp.where(maxc > 0, maxc, 1.0), 0.0)
    return jnp.stack([h, s, maxc], -1)


def hsv_to_rgb(hsv: jnp.ndarray) -> jnp.ndarray:
    """Inverse of ``rgb_to_hsv``: ``[..., 3]`` HSV in [0, 1] -> RGB in [0, 1]."""
    h, s, v = hsv[..., 0:1], hsv[..., 1:2], hsv[..., 2:3]
    k = (jnp.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return v - v * s * jnp.clip(jnp.minimum(k, 4.0 - k), 0.0, 1.0)


def distort_colors(images: jnp.ndarray, brightness: jnp.ndarray, contrast: jnp.ndarray, saturation: jnp.ndarray,
                   hue: jnp.ndarray, contrast_first: jnp.ndarray) -> jnp.ndarray:
    """The distortion with explicit per-image parameters, each ``[B]``: brightness delta (0: none), contrast factor
    (1: none), saturation factor (1: none), hue shift in turns (0: none), and whether contrast comes first (bool).
    float32 ``[B, H, W, 3]`` in [0, 1] -> the same."""
    col = lambda a: jnp.asarray(a, jnp.float32)[:, None, None, None]  # noqa: E731
    first = jnp.asarray(contrast_first, bool)[:, None, None, None]
    x = jnp.clip(images + col(brightness), 0.0, 1.0)
    x = jnp.where(first, jnp.clip(x * col(contrast), 0.0, 1.0), x)
    hsv = rgb_to_hsv(x)
    hsv = jnp.concatenate([(hsv[..., :1] + col(hue)) % 1.0, jnp.clip(hsv[..., 1:2] * col(saturation), 0.0, 1.0),
                           hsv[..., 2:]], -1)
    colour_changed = ((jnp.asarray(saturation) != 1) | (jnp.asarray(hue) != 0))[:, None, None, None]
    x = jnp.where(colour_changed, hsv_to_rgb(hsv), x)
    return jnp.where(first, x, jnp.clip(x * col(contrast), 0.0, 1.0))


def photometric_distort(images: jnp.ndarray, rng: jax.Array, p: float = 0.5) -> jnp.ndarray:
    """SSD's random photometric distortion of a batch (see the module docstring), parameters drawn from ``rng``.

    Args:
      images: float32 ``[B, H, W, 3]`` RGB in [0, 1].
      rng: a PRNG key; p: the probability of each of the four steps.
    Returns float32 ``[B, H, W, 3]`` in [0, 1].
    """
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images: expected [B, H, W, 3], got shape {images.shape}")
    n = images.shape[0]
    k_on, k_b, k_c, k_s, k_h = jax.random.split(rng, 5)
    on = jax.random.uniform(k_on, (5, n)) < jnp.array([0.5, p, p, p, p])[:, None]
    brightness = jnp.where(on[1], jax.random.uniform(k_b, (n,), minval=-32 / 255, maxval=32 / 255), 0.0)
    contrast = jnp.where(on[2], jax.random.uniform(k_c, (n,), minval=0.5, maxval=1.5), 1.0)
    saturation = jnp.where(on[3], jax.random.uniform(k_s, (n,), minval=0.5, maxval=1.5), 1.0)
    hue = jnp.where(on[4], jax.random.uniform(k_h, (n,), minval=-18 / 360, maxval=18 / 360), 0.0)
    return distort_colors(images.astype(jnp.float32), brightness, contrast, saturation, hue, on[0])
