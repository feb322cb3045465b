"""``mixture``: 2-D Gaussian mixtures for GAN mode-collapse studies.

- ``ring``: 8 equally weighted modes on the circle of radius 1 (angles 0, 45, ..., 315 degrees), sigma 0.01.
- ``grid``: 25 equally weighted modes on the 5x5 grid {-4, -2, 0, 2, 4}^2, sigma 0.05.

The train split draws fresh samples every epoch (each example from ``(seed, epoch, position)``); ``test`` is a fixed
sample set.
"""
from __future__ import annotations

import numpy as np

from jaxvision._checks import check_choice, check_positive
from jaxvision.data.base import Dataset

KINDS = ("ring", "grid")
SIGMA = {"ring": 0.01, "grid": 0.05}


def modes(kind: str) -> np.ndarray:
    """Mode centres, float32 [K, 2] (K = 8 for 'ring', 25 for 'grid')."""
    check_choice("kind", kind, KINDS)
    if kind == "ring":
        t = 2 * np.pi * np.arange(8) / 8
        return np.stack([np.cos(t), np.sin(t)], -1).astype(np.float32)
    g = np.arange(-4.0, 5.0, 2.0)
    return np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2).astype(np.float32)


def sigma(kind: str) -> float:
    """Per-axis standard deviation of every mode."""
    check_choice("kind", kind, KINDS)
    return SIGMA[kind]


def sample(rng: np.random.Generator, n: int, kind: str = "ring") -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples: points float32 [n, 2] and their mode index int32 [n]."""
    m = modes(kind)
    k = rng.integers(0, len(m), n)
    x = m[k] + SIGMA[kind] * rng.standard_normal((n, 2))
    return x.astype(np.float32), k.astype(np.int32)


def load(split: str, batch_size: int, seed: int = 0, num_devices: int | None = None, *, kind: str = "ring",
         num_examples: int = 8192, drop_remainder: bool = True, host_id=None, num_hosts=None) -> Dataset:
    """Batches ``{'x': float32 [B, 2], 'mode': int32 [B]}``; ``num_examples`` samples per epoch."""
    check_choice("kind", kind, KINDS)
    check_choice("split", split, ("train", "test"))
    check_positive("num_examples", num_examples)
    if split == "test":
        fixed_x, fixed_k = sample(np.random.default_rng([seed, 7357]), num_examples, kind)

        def make_batch(idx, rngs):
            return {"x": fixed_x[idx], "mode": fixed_k[idx]}
    else:
        m, sd = modes(kind), SIGMA[kind]

        def make_batch(idx, rngs):
            draws = [(r.integers(0, len(m)), r.standard_normal(2)) for r in (rngs[j] for j in range(len(idx)))]
            k = np.array([d[0] for d in draws], np.int32)
            x = (m[k] + sd * np.array([d[1] for d in draws])).astype(np.float32)
            return {"x": x, "mode": k}
    info = {"name": "mixture", "split": split, "kind": kind, "modes": modes(kind), "sigma": SIGMA[kind],
            "num_examples": num_examples}
    return Dataset(num_examples, make_batch, batch_size, seed=seed, shuffle=split == "train",
                   drop_remainder=drop_remainder, num_devices=num_devices, host_id=host_id, num_hosts=num_hosts,
                   info=info)
