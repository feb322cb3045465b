"""``summary.json``: what one ``jaxvision train`` / ``eval`` command ran and what it measured.

After every ``train`` and ``eval`` the CLI writes ``WORKDIR/summary.json`` (the latest command) and appends the same
record as one line to ``WORKDIR/summaries.jsonl`` (every command run in that workdir)::

    {"experiment": "ssd_shapes",
     "command": ["jaxvision", "train", "ssd_shapes", "--workdir", "runs/main"],   # argv as run
     "config": {...},            # the full Config the run used (dataclasses.asdict)
     "metrics": {...},           # the dict the experiment's train / evaluate returned
     "machine": {"platform": ..., "python": ..., "cpu_count": ..., "cpu_model": ..., "jax": ..., "backend": ...,
                 "device_kind": ..., "device_count": ..., "loadavg": [1, 5, 15 min, at the end]},
     "date": "2026-11-28T05:20:00+00:00",   # UTC, when the command finished
     "wall_s": 289.1}            # the whole command (data, compile, train, eval)

The README's result tables are generated from copies of these files in ``docs/results/runs/`` by
``docs/results/make_tables.py``. Non-finite floats are written as the strings ``"nan"`` / ``"inf"`` / ``"-inf"``
(strict JSON has no NaN).
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
from typing import Any

SUMMARY = "summary.json"
HISTORY = "summaries.jsonl"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    """Where the command ran: OS, Python, CPU, jax version and the default backend's devices."""
    import jax

    devices = jax.devices()
    out = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
           "cpu_model": _cpu_model(), "jax": jax.__version__, "backend": jax.default_backend(),
           "device_kind": devices[0].device_kind, "device_count": len(devices)}
    if hasattr(os, "getloadavg"):
        out["loadavg"] = [round(v, 2) for v in os.getloadavg()]
    return out


def _plain(x: Any) -> Any:
    """``x`` as strict-JSON data: numpy / jax scalars and arrays to Python numbers and lists, NaN/inf to strings."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):  # numpy / jax arrays and scalars
        return _plain(x.tolist())
    if isinstance(x, bool) or x is None or isinstance(x, (int, str)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else ("nan" if math.isnan(x) else ("inf" if x > 0 else "-inf"))
    return str(x)


def make_summary(experiment: str, command: list[str], cfg, metrics: dict, wall_s: float) -> dict:
    """The summary record (see the module docstring); ``cfg`` is the experiment's Config dataclass."""
    config = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)
    return _plain({"experiment": experiment, "command": list(command), "config": config, "metrics": dict(metrics),
                   "machine": machine(),
                   "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                   "wall_s": round(float(wall_s), 3)})


def write_summary(workdir: str, record: dict) -> str:
    """Write ``record`` to ``workdir/summary.json`` (replacing it) and append it to ``workdir/summaries.jsonl``;
    returns the summary.json path."""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, SUMMARY)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)
    with open(os.path.join(workdir, HISTORY), "a") as f:
        f.write(json.dumps(record, allow_nan=False) + "\n")
    return path
