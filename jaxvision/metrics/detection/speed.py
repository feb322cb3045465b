"""Inference speed of a jitted forward function: median ms per image and images per second, compile separate."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import jax
import numpy as np

__all__ = ["measure_fps", "FpsResult"]


@dataclass(frozen=True)
class FpsResult:
    """Timing of ``fn(batch)``.

    Attributes:
      batch_size: images per call (leading axis of the first array in ``batch``).
      compile_s: seconds to trace and compile (0 if ``fn`` was already compiled for this input).
      median_batch_ms: median wall milliseconds per call, after warm-up, results blocked on.
      ms_per_image: ``median_batch_ms / batch_size``.
      images_per_s: ``1000 / ms_per_image``.
      repeats: timed calls.
    """

    batch_size: int
    compile_s: float
    median_batch_ms: float
    ms_per_image: float
    images_per_s: float
    repeats: int

    def __str__(self) -> str:
        return (f"{self.ms_per_image:.3f} ms/image, {self.images_per_s:.1f} images/s (batch {self.batch_size}, "
                f"median of {self.repeats}), compile {self.compile_s:.2f} s")


def measure_fps(fn: Callable, batch, repeats: int = 20, warmup: int = 2) -> FpsResult:
    """Time a forward pass: compile once, warm up, then the median of ``repeats`` blocked calls.

    Args:
      fn: ``fn(batch) -> outputs`` (any pytree of arrays); wrapped in ``jax.jit`` unless it already is.
      batch: pytree of arrays whose first leaf has the batch size as leading axis (e.g. images ``[B, H, W, 3]``).
      repeats: timed calls (>= 1). warmup: untimed calls after compiling (>= 0).

    Returns:
      :class:`FpsResult`.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats/warmup: expected repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    leaves = jax.tree_util.tree_leaves(batch)
    if not leaves or np.ndim(leaves[0]) == 0:
        raise ValueError("batch: expected a pytree whose first leaf has a leading batch axis")
    batch_size = int(np.shape(leaves[0])[0])
    jitted = fn if hasattr(fn, "lower") else jax.jit(fn)
    t0 = time.perf_counter()
    compiled = jitted.lower(batch).compile()
    compile_s = time.perf_counter() - t0
    for _ in range(warmup):
        jax.block_until_ready(compiled(batch))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(batch))
        times.append(time.perf_counter() - t0)
    batch_ms = statistics.median(times) * 1e3
    per_image = batch_ms / max(batch_size, 1)
    return FpsResult(batch_size, compile_s, batch_ms, per_image, 1e3 / per_image if per_image > 0 else float("inf"),
                     repeats)
