"""Metrics logging: one JSON object per line in ``WORKDIR/metrics.jsonl`` (TensorBoard optional).

Every line has ``step`` (int), ``split`` ('train' or 'eval' or an event name) and ``time`` (seconds since the epoch)
plus float metrics, e.g. ``{"step": 100, "split": "train", "loss": 0.12, "steps_per_sec": 41.0, "time": ...}``.
On resume, lines with a step beyond the restored checkpoint (written by the interrupted run after its last save)
are dropped so the file reads as one uninterrupted run. In a multi-process run only process 0 writes (the others
would duplicate every line and race on the resume rewrite).
"""
from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import jax
import numpy as np

METRICS_FILE = "metrics.jsonl"


def _scalar(v: Any) -> Any:
    if isinstance(v, (str, bool, int)) or v is None:
        return v
    a = np.asarray(v)
    if a.size == 1:
        f = float(a.reshape(()))
        return f if math.isfinite(f) else str(f)
    return a.tolist()


def read_metrics(workdir: str) -> list[dict]:
    """All records of ``workdir/metrics.jsonl`` (empty list if there is none)."""
    path = os.path.join(workdir, METRICS_FILE)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class MetricsWriter:
    """Appends records to ``workdir/metrics.jsonl`` and, with ``tensorboard=True``, to TensorBoard event files.

    Args:
      workdir: the run directory (created if missing).
      resume_step: if given, existing records with ``step > resume_step`` are dropped first.
      tensorboard: also write TensorBoard scalars under ``workdir/tensorboard`` (needs the ``tensorboardX``
        package; raises ImportError with a clear message if it is missing).
      enabled: write anything at all; default: only on process 0 (``jax.process_index() == 0``).
    """

    def __init__(self, workdir: str, resume_step: int | None = None, tensorboard: bool = False,
                 enabled: bool | None = None):
        self.path = os.path.join(workdir, METRICS_FILE)
        self.enabled = jax.process_index() == 0 if enabled is None else bool(enabled)
        self._tb = None
        if not self.enabled:
            return
        os.makedirs(workdir, exist_ok=True)
        if resume_step is not None and os.path.exists(self.path):
            kept = [r for r in read_metrics(workdir) if r.get("step", 0) <= resume_step]
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in kept)
            os.replace(tmp, self.path)
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter
            except ImportError as e:
                raise ImportError("tensorboard=True needs the tensorboardX package (pip install tensorboardX)") from e
            self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

    def write(self, step: int, split: str, metrics: dict[str, Any]) -> dict:
        """Append one record (if ``enabled``); returns it."""
        record = {"step": int(step), "split": split, **{k: _scalar(v) for k, v in metrics.items()},
                  "time": round(time.time(), 3)}
        if not self.enabled:
            return record
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in record.items():
                if isinstance(v, float):
                    self._tb.add_scalar(f"{split}/{k}", v, int(step))
        return record

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
