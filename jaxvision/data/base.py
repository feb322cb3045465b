"""The Dataset every loader returns: deterministic, fixed-shape numpy batches, sharded per host and per device.

A dataset is a number of examples plus a function that builds the arrays of any set of example indices. The order
of an epoch is a permutation derived from ``(seed, epoch)`` only, so batch ``i`` of epoch ``e`` is the same no matter
how the iteration got there: a training run resumed at step ``s`` reads ``batch(s % len, epoch=s // len)`` and sees
exactly the batch an uninterrupted run would have seen.

Sharding: the *global* batch (``batch_size`` examples) is split evenly over ``num_hosts`` processes (host ``h`` takes
rows ``h*B/H:(h+1)*B/H`` of every global batch) and then, with ``num_devices=D``, reshaped to ``[D, B/(H*D), ...]``
for ``jax.pmap``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np


def _rng(seed: int, *path: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *[int(p) for p in path]]))


class ExampleRngs:
    """Per-example random generators, created on first use: ``rngs[j]`` seeds the augmentation of row ``j``.

    Row ``j``'s generator depends only on ``(seed, epoch, position of the example in the epoch)``, so an example
    is augmented identically however the global batch is split over hosts and devices. Each ``rngs[j]`` is a new
    Generator at the start of that stream: take it once per row and pass it on (two ``rngs[j]`` draw the same
    numbers, which would tie one random choice to another).
    """

    def __init__(self, seed: int, epoch: int, positions: np.ndarray):
        self._seed, self._epoch, self._positions = seed, epoch, positions

    def __len__(self) -> int:
        return len(self._positions)

    def __getitem__(self, j: int) -> np.random.Generator:
        return _rng(self._seed, 0xA06, self._epoch, int(self._positions[j]))


BatchFn = Callable[[np.ndarray, ExampleRngs], dict[str, np.ndarray]]


class Dataset:
    """One split of a data set as an iterable of fixed-shape numpy batches.

    Args:
      num_examples: examples per epoch (global, over all hosts).
      make_batch: ``(indices int64 [n], rngs) -> dict of arrays with leading dim n``; ``rngs[j]`` is a numpy
        Generator for row j derived from ``(seed, epoch, position in the epoch)`` (``ExampleRngs``) for random
        augmentation (crops, resampling), independent of how batches are split over hosts.
      batch_size: the global batch size B (over all hosts and devices); must be divisible by
        ``num_hosts * (num_devices or 1)``.
      seed: seeds the epoch permutations and the augmentation.
      shuffle: if False, epochs visit examples in index order (evaluation).
      drop_remainder: if True (default) the last partial batch is dropped; if False it is padded (repeating the
        last example) and every batch carries ``'valid'``: bool [B] marking real examples.
      num_devices: if given, every array gets a leading device axis ``[D, B_host/D, ...]``.
      host_id, num_hosts: this process's slice of every global batch; default ``jax.process_index()`` and
        ``jax.process_count()``.
      info: metadata (``num_classes``, ``image_size``, ``class_names``, ...), exposed as ``.info``.
    """

    def __init__(self, num_examples: int, make_batch: BatchFn, batch_size: int, *, seed: int = 0,
                 shuffle: bool = True, drop_remainder: bool = True, num_devices: int | None = None,
                 host_id: int | None = None, num_hosts: int | None = None, info: dict[str, Any] | None = None):
        if host_id is None or num_hosts is None:
            import jax

            host_id = jax.process_index() if host_id is None else host_id
            num_hosts = jax.process_count() if num_hosts is None else num_hosts
        if batch_size <= 0:
            raise ValueError(f"batch_size: expected > 0, got {batch_size}")
        shards = num_hosts * (num_devices or 1)
        if batch_size % shards:
            raise ValueError(f"batch_size: expected a multiple of num_hosts * num_devices = {shards}, got {batch_size}")
        if not 0 <= host_id < num_hosts:
            raise ValueError(f"host_id: expected in [0, {num_hosts}), got {host_id}")
        if num_examples < (batch_size if drop_remainder else 1):
            raise ValueError(f"batch_size: expected <= the {num_examples} examples of this split, got {batch_size}")
        self.num_examples = int(num_examples)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.drop_remainder = drop_remainder
        self.num_devices = num_devices
        self.host_id, self.num_hosts = int(host_id), int(num_hosts)
        self.info = dict(info or {})
        self._make_batch = make_batch
        self._next_epoch = 0

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(self.num_examples, self.batch_size)
        return full + (0 if self.drop_remainder or rest == 0 else 1)

    def order(self, epoch: int) -> np.ndarray:
        """Example indices of one epoch, int64 [num_examples]: a permutation from ``(seed, epoch)`` if shuffling."""
        if not self.shuffle:
            return np.arange(self.num_examples)
        return _rng(self.seed, 0x5EED, epoch).permutation(self.num_examples)

    def batch(self, i: int, epoch: int = 0) -> dict[str, np.ndarray]:
        """Batch ``i`` (0 <= i < len) of ``epoch``: this host's rows, device axis added if ``num_devices``."""
        if not 0 <= i < len(self):
            raise IndexError(f"batch index: expected in [0, {len(self)}), got {i}")
        start = i * self.batch_size
        idx = self.order(epoch)[start:start + self.batch_size]
        positions = np.arange(start, start + self.batch_size)
        valid = np.ones(self.batch_size, bool)
        if len(idx) < self.batch_size:  # padded last batch (drop_remainder=False)
            valid[len(idx):] = False
            positions[len(idx):] = start + len(idx) - 1
            idx = np.concatenate([idx, np.full(self.batch_size - len(idx), idx[-1])])
        per_host = self.batch_size // self.num_hosts
        rows = slice(self.host_id * per_host, (self.host_id + 1) * per_host)
        out = dict(self._make_batch(idx[rows], ExampleRngs(self.seed, epoch, positions[rows])))
        if not self.drop_remainder:
            out["valid"] = valid[rows]
        if self.num_devices:
            out = {k: v.reshape(self.num_devices, per_host // self.num_devices, *v.shape[1:]) for k, v in out.items()}
        return out

    def iterate(self, epoch: int = 0, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Batches ``start..len-1`` of ``epoch``."""
        for i in range(start, len(self)):
            yield self.batch(i, epoch)

    def with_loader(self, workers: int = 0, threads: int = 0, buffer: int = 2) -> Dataset:
        """Build training batches ahead with grain (``jaxvision.data.pipeline``): ``workers`` processes,
        ``threads`` reader threads, ``buffer`` batches ahead. Batches stay identical; returns ``self``."""
        self.loader = {"workers": int(workers), "threads": int(threads), "buffer": int(buffer)}
        return self

    def steps(self, start: int, stop: int) -> Iterator[dict[str, np.ndarray]]:
        """The batches of training steps ``start..stop-1``: step k is ``batch(k % len, epoch=k // len)``, built
        by the loader set with ``with_loader`` (default: in this thread, on demand)."""
        from jaxvision.data.pipeline import step_batches

        return step_batches(self, start, stop, **getattr(self, "loader", {}))

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        """One epoch; successive ``iter()`` calls walk epochs 0, 1, 2, ... (use ``iterate`` for explicit control)."""
        epoch, self._next_epoch = self._next_epoch, self._next_epoch + 1
        return self.iterate(epoch)

    def with_arrays(self, arrays: dict[str, np.ndarray]) -> Dataset:
        """The same split whose batches also carry rows of ``arrays`` (each ``[num_examples, ...]``, row ``i``
        belonging to example ``i``), e.g. precomputed region proposals; order, sharding and padding unchanged."""
        for k, v in arrays.items():
            if len(v) != self.num_examples:
                raise ValueError(f"arrays[{k!r}]: expected {self.num_examples} rows (one per example), got {len(v)}")
        base = self._make_batch

        def make_batch(idx, rngs):
            return {**base(idx, rngs), **{k: v[idx] for k, v in arrays.items()}}

        return Dataset(self.num_examples, make_batch, self.batch_size, seed=self.seed, shuffle=self.shuffle,
                       drop_remainder=self.drop_remainder, num_devices=self.num_devices, host_id=self.host_id,
                       num_hosts=self.num_hosts, info=self.info)

    def __repr__(self) -> str:
        name = self.info.get("name", "?")
        return (f"Dataset({name!r}, split={self.info.get('split')!r}, examples={self.num_examples}, "
                f"batch_size={self.batch_size}, batches={len(self)})")


def array_batches(arrays: dict[str, np.ndarray]) -> BatchFn:
    """A ``make_batch`` that gathers rows of in-memory arrays (all with the same leading dim)."""
    def make_batch(idx: np.ndarray, rngs: ExampleRngs) -> dict[str, np.ndarray]:
        del rngs
        return {k: v[idx] for k, v in arrays.items()}
    return make_batch
