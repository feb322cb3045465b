"""Inception Score (Salimans et al. 2016), computed like the original OpenAI code, in float64.

    IS = exp( E_x KL( p(y|x) || p(y) ) ),

evaluated on ``splits`` consecutive, equal chunks of the samples (``N // splits`` each; the remainder is dropped,
as in the original), with ``p(y)`` the chunk's mean prediction; the result is the mean and the (population)
standard deviation over chunks. The original feeds the 1008-way softmax of the FID Inception's logits.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision._checks import check_positive, check_rank

__all__ = ["MeanStd", "inception_score"]


@dataclasses.dataclass(frozen=True)
class MeanStd:
    """A metric reported as mean and standard deviation, with how it was made.

    Unpacks as a pair: ``mean, std = inception_score(logits)``.

    Attributes:
      mean: float.
      std: float.
      provenance: dict, e.g. metric name, sample counts, splits/subsets, feature network, weights hash, resize.
    """

    mean: float
    std: float
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __iter__(self):
        return iter((self.mean, self.std))

    def __getitem__(self, i):
        return (self.mean, self.std)[i]

    def __len__(self):
        return 2

    def __str__(self):
        name = self.provenance.get("metric", "value")
        return f"{name}: {self.mean:.6g} ± {self.std:.6g}"


@jax.jit
def _split_scores(logits):  # [S, M, K] -> [S]
    logp = jax.nn.log_softmax(logits, axis=-1)
    p = jnp.exp(logp)
    log_py = jnp.log(jnp.mean(p, axis=1, keepdims=True))  # [S, 1, K]
    kl = jnp.sum(p * (logp - log_py), axis=-1)  # [S, M]
    return jnp.exp(jnp.mean(kl, axis=-1))


def inception_score(logits, splits: int = 10, *, provenance: dict | None = None) -> MeanStd:
    """Inception Score from classifier logits.

    Args:
      logits: float [N, K] unnormalized class scores (Inception: the 1008 FID logits; or a domain classifier's).
        Computation is in float64 whatever the input dtype.
      splits: number of equal chunks (N >= splits); 10 as in the original.
      provenance: extra entries for the result's provenance (e.g. ``network.provenance()``).

    Returns:
      :class:`MeanStd` (mean, std); mean is in [1, K].
    """
    check_rank("logits", logits, 2, "[N, K]")
    check_positive("splits", splits)
    n, k = np.shape(logits)
    if n < splits:
        raise ValueError(f"logits: expected at least splits={splits} samples, got {n}")
    m = n // splits
    with jax.enable_x64(True):
        x = jnp.asarray(logits, jnp.float64)[: m * splits].reshape(splits, m, k)
        scores = np.asarray(_split_scores(x))
    prov = {"metric": "inception_score", "splits": splits, "num_samples": m * splits, "num_classes": k,
            "precision": "float64", **(provenance or {})}
    return MeanStd(float(scores.mean()), float(scores.std()), prov)
