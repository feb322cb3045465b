"""Shared timing harness: ours and the peer, same inputs, one process.

Every benchmark reports, per row: compile time of ours (first call minus a warm call), the median of several
warm runs for ours and for the peer, and ratio = peer / ours (> 1 means we are faster).

Device selection (every script's ``--device cpu|gpu``, default cpu)::

    parser = argparse.ArgumentParser()
    add_device_argument(parser)
    args = parser.parse_args(argv)
    device = select_device(args.device, parser)   # before anything touches a JAX backend
    t = torch.from_numpy(x).to(device.torch)
    median_time(lambda: peer(t), sync=device.sync)  # torch synchronised before every clock read
    print_table(title, rows, "peer", device=device)  # the card's name in the header on the GPU

``select_device("cpu")`` pins JAX to its CPU backend; ``select_device("gpu")`` checks that JAX's default backend
is a GPU and that torch sees CUDA (else one argparse-style error line, exit status 2) and turns on
``torch.backends.cudnn.benchmark``.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

DEVICES = ("cpu", "gpu")


class DeviceUnavailable(RuntimeError):
    """``--device gpu`` asked for on a machine where JAX or torch has no GPU."""


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return cpu


@dataclass(frozen=True)
class Device:
    """Where a benchmark runs: ``kind`` 'cpu' | 'gpu', ``torch`` the torch device ('cpu' | 'cuda'), ``name`` the
    card (GPU) or CPU model."""

    kind: str = "cpu"
    torch: str = "cpu"
    name: str = ""

    @property
    def is_gpu(self) -> bool:
        return self.kind == "gpu"

    def sync(self) -> None:
        """Wait for queued torch work on this device (``torch.cuda.synchronize()`` on the GPU; nothing on CPU)."""
        if self.is_gpu:
            import torch

            torch.cuda.synchronize()

    def describe(self) -> str:
        """'CPU' or 'GPU (<card>)', for titles."""
        return f"GPU ({self.name})" if self.is_gpu else "CPU"


def host_device() -> Device:
    """The CPU as a ``Device``, without touching JAX's configuration (a default for library-style callers)."""
    return Device("cpu", "cpu", cpu_model())


def add_device_argument(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--device cpu|gpu`` (default cpu) to ``parser``."""
    parser.add_argument("--device", choices=DEVICES, default="cpu",
                        help="cpu: JAX and torch on the CPU (default); gpu: JAX on its GPU backend, torch on CUDA "
                             "(cudnn.benchmark on, synchronised clocks)")
    return parser


def select_device(name: str, parser: argparse.ArgumentParser | None = None, *, require_torch: bool = True) -> Device:
    """Set JAX (and torch) up for ``name`` ('cpu' or 'gpu') and return the ``Device``.

    Call it before anything initialises a JAX backend (importing jax is fine). 'cpu' sets ``jax_platforms`` to
    'cpu'. 'gpu' needs JAX's default backend to be a GPU and, unless ``require_torch=False`` (scripts whose peers
    never use torch), ``torch.cuda.is_available()``; it sets ``torch.backends.cudnn.benchmark = True``. A failure
    is reported through ``parser.error`` (one line, exit status 2) when a parser is given, else raised as
    ``DeviceUnavailable``.
    """

    def fail(msg: str):
        if parser is not None:
            parser.error(msg)  # exits 2
        raise DeviceUnavailable(msg)

    if name not in DEVICES:
        fail(f"--device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cpu":
        import jax

        jax.config.update("jax_platforms", "cpu")
        if jax.default_backend() != "cpu":  # a backend was initialised before this call
            fail(f"--device cpu: JAX's backend was already initialised on {jax.default_backend()!r}")
        return host_device()

    # Share the card with torch: JAX would otherwise grab 75% of its memory when its GPU client starts.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import jax

    found = []
    try:
        backend = jax.default_backend()
        jax_name = jax.devices()[0].device_kind
    except RuntimeError as e:  # e.g. JAX_PLATFORMS names a platform that is not there
        backend, jax_name = "none", ""
        found.append(f"JAX could not start a backend ({str(e).splitlines()[0]})")
    if backend not in ("gpu", "cuda", "rocm") and not found:
        devs = jax.devices()
        more = f" and {len(devs) - 1} more" if len(devs) > 1 else ""
        found.append(f"JAX's default backend is {backend!r} (devices: {devs[0]}{more})")
    card = jax_name
    if require_torch:
        try:
            import torch
        except ImportError:
            found.append("torch is not installed")
        else:
            if not torch.cuda.is_available():
                found.append(f"torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)")
            else:
                torch.backends.cudnn.benchmark = True
                card = torch.cuda.get_device_name()
    if found:
        fail("--device gpu needs a GPU for JAX" + (" and torch" if require_torch else "") + ", but "
             + "; ".join(found))
    return Device("gpu", "cuda", card)


def _block(x):
    """Wait for JAX arrays (any pytree) to be computed; leave other values alone."""
    try:
        import jax

        jax.block_until_ready(x)
    except ImportError:  # pragma: no cover
        pass
    return x


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1,
                sync: Callable[[], object] | None = None) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs. JAX results are blocked on;
    ``sync`` (e.g. ``Device.sync`` for torch on CUDA) is called after every call, before every clock read."""
    sync = sync or (lambda: None)
    for _ in range(warmup):
        _block(fn())
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _block(fn())
        sync()
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


def machine(device: Device | None = None) -> str:
    """One line naming the machine the numbers came from: the card first when on a GPU, then the host CPU."""
    host = f"{cpu_model()}, {len(os.sched_getaffinity(0))} cores"
    try:
        import jax

        jax_dev = jax.devices()[0]
        dev = f"jax {jax.__version__} on {jax_dev.platform}"
    except ImportError:  # pragma: no cover
        jax_dev, dev = None, "jax missing"
    if device is not None and device.is_gpu:
        torch = sys.modules.get("torch")  # named only where the script uses it
        peer = (f", torch {torch.__version__} on {device.torch} (cudnn.benchmark "
                f"{'on' if torch.backends.cudnn.benchmark else 'off'})") if torch is not None else ""
        return f"GPU {device.name}, {dev}{peer}; host {host}"
    if jax_dev is not None and jax_dev.platform != "cpu":  # no Device given, but JAX runs on an accelerator
        return f"{jax_dev.platform.upper()} {jax_dev.device_kind}, {dev}; host {host}"
    return f"{host}, {dev}"


def print_table(title: str, rows: list[Row], peer: str, device: Device | None = None) -> str:
    """Print (and return) a Markdown table of the rows; the header names the machine (the card on a GPU)."""
    lines = [
        f"### {title}",
        f"machine: {machine(device)}",
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
