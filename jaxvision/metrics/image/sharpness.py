"""Sharpness: the mean Sobel gradient magnitude of an image (no reference needed).

Blurry outputs (the regression-to-the-mean of L1/MSE-trained generators) have weaker edges than their targets;
Pix2Pix and SRGAN papers argue that the adversarial term restores them. ``mean_gradient_magnitude`` is
scikit-image's ``filters.sobel`` (magnitude ``sqrt((Sh^2 + Sv^2) / 2)`` of the normalized 3x3 Sobel kernels,
``[1, 2, 1] / 4`` smoothing, 'reflect' borders) averaged over pixels and channels, per image; report it for the
output beside the target's (a ratio near 1 means as sharp as the target, < 1 blurrier).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision._checks import check_rank


@jax.jit
def _mean_grad(x):
    # scipy.ndimage 'reflect' == numpy 'symmetric' (edge sample repeated)
    p = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="symmetric")
    h, w = x.shape[1:3]
    # smoothed [1, 2, 1] / 4 along one axis, central difference along the other
    sx_up = (p[:, 0:h, 0:w] + 2 * p[:, 0:h, 1:w + 1] + p[:, 0:h, 2:w + 2]) / 4
    sx_dn = (p[:, 2:h + 2, 0:w] + 2 * p[:, 2:h + 2, 1:w + 1] + p[:, 2:h + 2, 2:w + 2]) / 4
    sy_l = (p[:, 0:h, 0:w] + 2 * p[:, 1:h + 1, 0:w] + p[:, 2:h + 2, 0:w]) / 4
    sy_r = (p[:, 0:h, 2:w + 2] + 2 * p[:, 1:h + 1, 2:w + 2] + p[:, 2:h + 2, 2:w + 2]) / 4
    gh, gv = sx_up - sx_dn, sy_l - sy_r
    return jnp.mean(jnp.sqrt((gh * gh + gv * gv) / 2.0), axis=(1, 2, 3))


def mean_gradient_magnitude(images) -> jax.Array:
    """Mean Sobel gradient magnitude per image, as ``skimage.filters.sobel`` per channel then the mean.

    Args:
      images: float [N, H, W, C] or [H, W, C] (any range; [0, 1] images give values in [0, ~1]).

    Returns:
      float32 [N] (or a scalar for one image).
    """
    check_rank("images", images, (3, 4), "[H, W, C] or [N, H, W, C]")
    x = jnp.asarray(images, jnp.float32)
    out = _mean_grad(x if x.ndim == 4 else x[None])
    return out if np.ndim(images) == 4 else out[0]
