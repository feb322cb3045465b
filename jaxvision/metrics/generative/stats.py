"""Streaming mean / covariance of feature batches, merged stably, and pytorch-fid's ``.npz`` stats format.

A :class:`RunningStats` holds ``count``, ``mean`` [d] and the centred sum of outer products ``m2`` [d, d]
(``m2 = sum (x - mean)(x - mean)^T``). Batches and partial results are merged with the pairwise formula of
Chan, Golub & LeVeque (1979):

    n = na + nb,  delta = mean_b - mean_a,  mean = mean_a + delta nb / n,
    m2 = m2_a + m2_b + delta delta^T na nb / n,

which never subtracts two large raw second moments (the naive ``E[xx^T] - mu mu^T`` loses all digits when the
mean is large compared with the spread). :func:`merge_across_devices` combines per-device partials inside
``pmap``/``shard_map`` with the equivalent all-reduce form (``m2 = sum_i m2_i + n_i (mean_i - mean)(...)^T``).
Everything is a pytree of arrays: jit/pmap-friendly, static shapes, padded rows excluded with a mask.
"""
from __future__ import annotations

import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision._checks import check_rank
from jaxvision.metrics.generative.frechet import _float_dtype

__all__ = [
    "RunningStats",
    "init_stats",
    "update_stats",
    "merge_stats",
    "merge_across_devices",
    "finalize_stats",
    "stats_from_features",
    "save_stats",
    "load_stats",
]


class RunningStats(NamedTuple):
    """Streaming first and second moments. ``count`` scalar, ``mean`` [d], ``m2`` [d, d] (centred sums)."""

    count: jax.Array
    mean: jax.Array
    m2: jax.Array


def init_stats(dim: int, dtype=None) -> RunningStats:
    """Empty statistics for ``dim``-dimensional features (float64 if x64 is enabled, else float32)."""
    dtype = dtype or _float_dtype()
    return RunningStats(jnp.zeros((), dtype), jnp.zeros((dim,), dtype), jnp.zeros((dim, dim), dtype))


def merge_stats(a: RunningStats, b: RunningStats) -> RunningStats:
    """Chan et al. pairwise merge of two partial statistics (either may be empty)."""
    n = a.count + b.count
    safe_n = jnp.where(n > 0, n, 1)
    delta = b.mean - a.mean  # [d]
    mean = a.mean + delta * (b.count / safe_n)
    m2 = a.m2 + b.m2 + jnp.outer(delta, delta) * (a.count * b.count / safe_n)
    return RunningStats(n, mean, m2)


def _batch_stats(x, mask, dtype):
    x = x.astype(dtype)
    w = jnp.ones(x.shape[:1], dtype) if mask is None else mask.astype(dtype)
    n = w.sum()
    hi = jax.lax.Precision.HIGHEST  # full float32 on GPUs/TPUs too (their default dot precision is TF32-like)
    mean = jnp.matmul(w, x, precision=hi) / jnp.where(n > 0, n, 1)
    xc = (x - mean) * w[:, None]  # masked rows contribute 0
    return RunningStats(n, mean, jnp.matmul(xc.T, xc, precision=hi))


def update_stats(stats: RunningStats, features: jax.Array, mask: jax.Array | None = None) -> RunningStats:
    """Add a batch of features. Jit-compatible.

    Args:
      stats: current statistics (feature dim d).
      features: float [B, d].
      mask: optional bool [B]; False rows (padding) are ignored.
    """
    return merge_stats(stats, _batch_stats(features, mask, stats.mean.dtype))


def merge_across_devices(stats: RunningStats, axis_name: str) -> RunningStats:
    """Combine per-device partial statistics inside ``pmap``/``shard_map`` over ``axis_name``.

    Exact all-reduce form of the pairwise merge; every device gets the global statistics.
    """
    n = jax.lax.psum(stats.count, axis_name)
    mean = jax.lax.psum(stats.mean * stats.count, axis_name) / jnp.where(n > 0, n, 1)
    delta = stats.mean - mean
    m2 = jax.lax.psum(stats.m2 + jnp.outer(delta, delta) * stats.count, axis_name)
    return RunningStats(n, mean, m2)


def finalize_stats(stats: RunningStats, ddof: int = 1) -> tuple[jax.Array, jax.Array]:
    """``(mu [d], sigma [d, d])`` with ``sigma = m2 / (count - ddof)`` (ddof=1 matches ``np.cov``/pytorch-fid)."""
    return stats.mean, stats.m2 / (stats.count - ddof)


def stats_from_features(features, batch_size: int | None = None) -> RunningStats:
    """Streaming statistics of an in-memory feature array [N, d] (in chunks of ``batch_size`` rows)."""
    check_rank("features", features, 2, "[N, d]")
    n, d = np.shape(features)
    stats = init_stats(d)
    batch_size = batch_size or max(n, 1)
    for i in range(0, n, batch_size):
        stats = _update_jit(stats, jnp.asarray(features[i : i + batch_size]))
    return stats


_update_jit = jax.jit(update_stats)


def save_stats(path: str | os.PathLike, mu, sigma, **metadata) -> None:
    """Write pytorch-fid's ``--save-stats`` format: an ``.npz`` with ``mu`` [d] and ``sigma`` [d, d] (float64).

    Extra keyword arguments (strings / numbers, e.g. ``count``, ``feature_network``) are stored alongside;
    pytorch-fid ignores them.
    """
    mu, sigma = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
    _check_mu_sigma(str(path), mu, sigma)
    np.savez_compressed(path, mu=mu, sigma=sigma, **{k: np.asarray(v) for k, v in metadata.items() if v is not None})


def load_stats(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read an ``.npz`` with keys ``mu`` and ``sigma`` (pytorch-fid's format). Returns (mu, sigma, extra keys)."""
    with np.load(path, allow_pickle=False) as f:
        if "mu" not in f or "sigma" not in f:
            raise ValueError(f"{path}: expected an .npz with keys 'mu' and 'sigma', got keys {sorted(f.keys())}")
        mu, sigma = f["mu"][:], f["sigma"][:]
        extra = {k: f[k][()] for k in f.keys() if k not in ("mu", "sigma")}
    _check_mu_sigma(str(path), mu, sigma)
    return mu, sigma, extra


def _check_mu_sigma(name, mu, sigma):
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"{name}: expected mu [d] and sigma [d, d], got {mu.shape} and {sigma.shape}")
