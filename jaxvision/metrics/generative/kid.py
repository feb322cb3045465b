"""Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with a cubic polynomial kernel.

    k(x, y) = (x . y / d + 1)^3
    MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m-1)) + sum_{i != j} k(y_i, y_j) / (m (m-1))
              - 2 sum_{i,j} k(x_i, y_j) / m^2

averaged over ``subsets`` random subsets of ``subset_size`` samples from each side, reported as mean and
(population) standard deviation over subsets. Subsets are drawn as torch-fidelity does
(``np.random.RandomState(seed)``, ``choice(n, subset_size, replace=False)`` for side 1 then side 2, per subset;
default seed 2020), so the same features give the same subsets and the same number; all kernel sums run
on device, all subsets in one compiled call.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision._checks import check_positive, check_rank
from jaxvision.metrics.generative.frechet import _float_dtype, x64_scope
from jaxvision.metrics.generative.isc import MeanStd

__all__ = ["kernel_inception_distance", "polynomial_mmd2"]


def _gram(a, b):
    """``a @ b.T`` at full precision (the default on GPUs/TPUs is TF32/bfloat16-like for float32)."""
    return jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST)


def polynomial_mmd2(x, y, degree: int = 3, gamma: float | None = None, coef0: float = 1.0):
    """Unbiased MMD^2 between two equal-size samples with kernel ``(gamma x.y + coef0)^degree``.

    Args:
      x: float [m, d]; y: float [m, d]. gamma defaults to 1 / d.

    Returns:
      Scalar (may be slightly negative: the estimator is unbiased).
    """
    m, d = x.shape
    g = 1.0 / d if gamma is None else gamma
    kxx = (_gram(x, x) * g + coef0) ** degree  # [m, m]
    kyy = (_gram(y, y) * g + coef0) ** degree
    kxy = (_gram(x, y) * g + coef0) ** degree
    off_xx = jnp.sum(kxx) - jnp.trace(kxx)
    off_yy = jnp.sum(kyy) - jnp.trace(kyy)
    return (off_xx + off_yy) / (m * (m - 1)) - 2.0 * jnp.sum(kxy) / (m * m)


@partial(jax.jit, static_argnames=("degree", "gamma", "coef0"))
def _subset_mmds(f1, f2, idx1, idx2, degree, gamma, coef0):
    def one(ij):
        return polynomial_mmd2(f1[ij[0]], f2[ij[1]], degree, gamma, coef0)

    return jax.lax.map(one, (idx1, idx2))  # [subsets], sequential: O(m^2) memory


def kernel_inception_distance(
    features1,
    features2,
    subsets: int = 100,
    subset_size: int = 1000,
    *,
    seed: int = 2020,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    x64: bool | None = None,
    provenance: dict | None = None,
) -> MeanStd:
    """KID between two feature sets (e.g. Inception pool3 of real and generated images).

    Args:
      features1: float [n1, d], n1 >= subset_size.
      features2: float [n2, d], n2 >= subset_size, same d.
      subsets: number of random subsets (100 as in torch-fidelity).
      subset_size: samples per subset and side (1000 as in torch-fidelity).
      seed: NumPy RandomState seed for the subsets (2020 as torch-fidelity's default).
      degree, gamma, coef0: polynomial kernel ``(gamma x.y + coef0)^degree``; gamma None means 1 / d.
      x64: True computes in float64; None follows ``jax_enable_x64``.
      provenance: extra entries for the result (e.g. ``network.provenance()``).

    Returns:
      :class:`MeanStd` (mean, std) of MMD^2 over subsets (KID is often reported x 1000).

    Raises:
      ValueError: rank/dim mismatch or fewer samples than ``subset_size``.
    """
    check_rank("features1", features1, 2, "[n1, d]")
    check_rank("features2", features2, 2, "[n2, d]")
    (n1, d1), (n2, d2) = np.shape(features1), np.shape(features2)
    if d1 != d2:
        raise ValueError(f"features1 and features2: expected the same feature dim, got {d1} and {d2}")
    check_positive("subsets", subsets)
    check_positive("subset_size", subset_size)
    if subset_size < 2:
        raise ValueError(f"subset_size: expected >= 2 for the unbiased estimator, got {subset_size}")
    for name, n in (("features1", n1), ("features2", n2)):
        if n < subset_size:
            raise ValueError(f"{name}: expected at least subset_size={subset_size} samples, got {n}")
    rng = np.random.RandomState(seed)
    idx1 = np.empty((subsets, subset_size), np.int32)
    idx2 = np.empty((subsets, subset_size), np.int32)
    for i in range(subsets):
        idx1[i] = rng.choice(n1, subset_size, replace=False)
        idx2[i] = rng.choice(n2, subset_size, replace=False)
    with x64_scope(x64):
        dt = _float_dtype()
        mmds = _subset_mmds(jnp.asarray(features1, dt), jnp.asarray(features2, dt), jnp.asarray(idx1),
                            jnp.asarray(idx2), degree, gamma, coef0)
        mmds = np.asarray(mmds, np.float64)
    prov = {"metric": "kernel_inception_distance", "subsets": subsets, "subset_size": subset_size, "seed": seed,
            "num_samples": (n1, n2), "kernel": f"({'1/d' if gamma is None else gamma} x.y + {coef0})^{degree}",
            "precision": str(np.dtype(dt)), **(provenance or {})}
    return MeanStd(float(mmds.mean()), float(mmds.std()), prov)
