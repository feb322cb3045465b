"""Mode-collapse measurement for 2-D mixtures of Gaussians (the VEEGAN / PacGAN protocol).

Given generated samples and the mixture's K modes (isotropic Gaussians of standard deviation ``sigma``):
  * each sample is assigned to its nearest mode (Euclidean);
  * a sample is *high quality* if its distance to that mode is within ``3 * sigma``;
  * a mode is *captured* if it is the nearest mode of at least one high-quality sample;
  * the *reverse KL* is KL(p_gen || p_data) over the mode assignments of the high-quality samples, where p_gen(k)
    is the fraction of high-quality samples whose nearest mode is k and p_data is uniform (1/K). It is 0 for a
    perfectly balanced generator and log(K) when every high-quality sample sits on a single mode (0 log 0 = 0, so it
    stays finite when modes are missed; with no high-quality sample at all it is reported as log(K)).
The protocol draws 2,500 samples (``NUM_SAMPLES``).
"""
from __future__ import annotations

import numpy as np

from jaxvision._checks import check_last_dim, check_positive, check_rank

NUM_SAMPLES = 2500


def nearest_modes(samples, modes):
    """Nearest mode of each sample.

    Args:
      samples: float [N, 2] points.
      modes: float [K, 2] mode centres.

    Returns:
      (index int64 [N] in [0, K), distance float64 [N]).
    """
    check_rank("samples", samples, 2, "[N, 2]")
    check_last_dim("samples", samples, 2)
    check_rank("modes", modes, 2, "[K, 2]")
    check_last_dim("modes", modes, 2)
    x = np.asarray(samples, np.float64)
    m = np.asarray(modes, np.float64)
    d = np.linalg.norm(x[:, None, :] - m[None, :, :], axis=-1)  # [N, K]
    idx = np.argmin(d, axis=1)
    return idx, d[np.arange(len(x)), idx]


def mode_collapse_stats(samples, modes, sigma: float, num_sigmas: float = 3.0) -> dict:
    """Modes captured, fraction of high-quality samples and reverse KL (see module docstring).

    Args:
      samples: float [N, 2] generated points (the protocol uses N = 2,500). Non-finite rows count as low quality.
      modes: float [K, 2] mode centres.
      sigma: standard deviation of every mixture component (> 0).
      num_sigmas: quality radius in units of sigma (3 in the protocol).

    Returns:
      dict with ``modes_captured`` (int in [0, K]), ``num_modes`` (K), ``high_quality`` (float in [0, 1]),
      ``reverse_kl`` (float >= 0, nats) and ``mode_counts`` (int64 [K], high-quality samples per mode).
    """
    check_positive("sigma", sigma)
    check_positive("num_sigmas", num_sigmas)
    check_rank("samples", samples, 2, "[N, 2]")
    x = np.asarray(samples, np.float64)
    k = int(np.shape(modes)[0])
    finite = np.all(np.isfinite(x), axis=-1)  # [N]
    idx, dist = nearest_modes(np.where(finite[:, None], x, 0.0), modes)
    good = finite & (dist <= num_sigmas * sigma)
    counts = np.bincount(idx[good], minlength=k).astype(np.int64)
    n_good = int(counts.sum())
    if n_good == 0:
        rkl = float(np.log(k))
    else:
        p = counts / n_good
        nz = p > 0
        rkl = float(np.sum(p[nz] * np.log(p[nz] * k)))
    return {
        "modes_captured": int(np.count_nonzero(counts)),
        "num_modes": k,
        "high_quality": float(good.mean()) if len(x) else 0.0,
        "reverse_kl": rkl,
        "mode_counts": counts,
    }
