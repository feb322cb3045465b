"""Shared timing harness: ours and the peer, same inputs, one process.

Every benchmark reports, per row: compile time of ours (first call minus a warm call), the median of several
warm runs for ours and for the peer, and ratio = peer / ours (> 1 means we are faster).
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable


def _block(x):
    """Wait for JAX arrays (any pytree) to be computed; leave other values alone."""
    try:
        import jax

        jax.block_until_ready(x)
    except ImportError:  # pragma: no cover
        pass
    return x


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs. JAX results are blocked on."""
    for _ in range(warmup):
        _block(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _block(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def compile_time(fn: Callable[[], object]) -> float:
    """Seconds of the first (compiling) call of ``fn``, blocked on."""
    t0 = time.perf_counter()
    _block(fn())
    return time.perf_counter() - t0


@dataclass
class Row:
    name: str
    ours_s: float
    peer_s: float
    compile_s: float = float("nan")
    target: float | None = None  # minimum acceptable ratio peer/ours

    @property
    def ratio(self) -> float:
        return self.peer_s / self.ours_s

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        return "ok" if self.ratio >= self.target else "MISS"


def machine() -> str:
    """One line naming the machine the numbers came from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import jax

        dev = f"jax {jax.__version__} on {jax.devices()[0].platform}"
    except ImportError:  # pragma: no cover
        dev = "jax missing"
    return f"{cpu}, {len(os.sched_getaffinity(0))} cores, {dev}"


def print_table(title: str, rows: list[Row], peer: str) -> str:
    """Print (and return) a Markdown table of the rows."""
    lines = [
        f"### {title}",
        f"machine: {machine()}",
        "",
        f"| workload | ours (ms, median) | {peer} (ms, median) | ratio {peer}/ours | target | compile ours (s) |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        tgt = f">= {r.target:g}x {r.verdict}" if r.target is not None else ""
        lines.append(
            f"| {r.name} | {r.ours_s * 1e3:.2f} | {r.peer_s * 1e3:.2f} | {r.ratio:.2f}x | {tgt} | {r.compile_s:.2f} |"
        )
    text = "\n".join(lines)
    print(text, flush=True)
    return text
