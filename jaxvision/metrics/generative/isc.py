"""Inception Score (Salimans et al. 2016), computed like the original OpenAI code, in float64.

    IS = exp( E_x KL( p(y|x) || p(y) ) ),

evaluated on ``splits`` consecutive chunks that cover every sample, as in the original (improved-gan's
``model.py``): chunk ``i`` is ``preds[i * N // splits : (i + 1) * N // splits]``, so when ``N % splits != 0`` the
chunks differ in size by one and none is dropped. ``p(y)`` is the chunk's mean prediction; the result is the mean
and the (population) standard deviation over chunks. The original feeds the 1008-way softmax of the FID
Inception's logits.
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
def _split_scores(logits, valid):  # [S, M, K], [S, M] bool (chunk s holds its first sizes[s] rows) -> [S]
    logp = jax.nn.log_softmax(logits, axis=-1)
    p = jnp.exp(logp)
    w = valid[..., None].astype(p.dtype)
    count = jnp.sum(valid, axis=1).astype(p.dtype)  # [S]
    log_py = jnp.log(jnp.sum(p * w, axis=1, keepdims=True) / count[:, None, None])  # [S, 1, K]
    kl = jnp.sum(p * (logp - log_py), axis=-1)  # [S, M]
    return jnp.exp(jnp.sum(jnp.where(valid, kl, 0.0), axis=-1) / count)


def inception_score(logits, splits: int = 10, *, provenance: dict | None = None) -> MeanStd:
    """Inception Score from classifier logits.

    Args:
      logits: float [N, K] unnormalized class scores (Inception: the 1008 FID logits; or a domain classifier's).
        Computation is in float64 whatever the input dtype.
      splits: number of consecutive chunks (N >= splits); 10 as in the original. Chunk ``i`` holds samples
        ``i * N // splits`` to ``(i + 1) * N // splits`` (exclusive): every sample counts, sizes differ by at most 1.
      provenance: extra entries for the result's provenance (e.g. ``network.provenance()``).

    Returns:
      :class:`MeanStd` (mean, std); mean is in [1, K].
    """
    check_rank("logits", logits, 2, "[N, K]")
    check_positive("splits", splits)
    n, k = np.shape(logits)
    if n < splits:
        raise ValueError(f"logits: expected at least splits={splits} samples, got {n}")
    starts = np.arange(splits) * n // splits
    sizes = np.arange(1, splits + 1) * n // splits - starts
    rows = starts[:, None] + np.arange(sizes.max())[None, :]  # [S, M]: chunk s = rows starts[s] .. +sizes[s]
    valid = np.arange(sizes.max())[None, :] < sizes[:, None]
    with jax.enable_x64(True):
        x = jnp.asarray(logits, jnp.float64)[np.minimum(rows, n - 1)]
        scores = np.asarray(_split_scores(x, jnp.asarray(valid)))
    prov = {"metric": "inception_score", "splits": splits, "num_samples": n, "num_classes": k,
            "precision": "float64", **(provenance or {})}
    return MeanStd(float(scores.mean()), float(scores.std()), prov)
