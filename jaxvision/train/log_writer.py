"""Metrics logging: one JSON object per line in ``WORKDIR/metrics.jsonl`` (TensorBoard event files optional).

Every line has ``step`` (int), ``split`` ('train' or 'eval' or an event name) and ``time`` (seconds since the epoch)
plus float metrics, e.g. ``{"step": 100, "split": "train", "loss": 0.12, "steps_per_sec": 41.0, "time": ...}``.
On resume, lines with a step beyond the restored checkpoint (written by the interrupted run after its last save)
are dropped so the file reads as one uninterrupted run. In a multi-process run only process 0 writes (the others
would duplicate every line and race on the resume rewrite).

With ``tensorboard=True`` every float of every record is also written as a TensorBoard scalar ``<split>/<key>``
(e.g. ``train/loss``, ``train/learning_rate``, ``eval/map50_voc``) to event files in ``WORKDIR/tensorboard/``
(tensorboardX: no TensorFlow needed), and ``write_images`` adds images (sample grids, prediction PNGs). View them
with ``tensorboard --logdir WORKDIR/tensorboard``. metrics.jsonl is written either way.
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
TENSORBOARD_DIR = "tensorboard"


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


def read_tensorboard(workdir: str) -> dict[str, dict[str, list]]:
    """The scalars and images in ``workdir/tensorboard``'s event files, read without TensorFlow (tensorboardX's
    protobufs over the TFRecord framing: uint64 length, uint32 CRC, data, uint32 CRC).

    Returns:
      ``{"scalars": {tag: [(step, value), ...]}, "images": {tag: [(step, (height, width, channels)), ...]}}``,
      each list in file order (files sorted by name).
    """
    import glob
    import struct

    from tensorboardX.proto import event_pb2

    out: dict[str, dict[str, list]] = {"scalars": {}, "images": {}}
    for path in sorted(glob.glob(os.path.join(workdir, TENSORBOARD_DIR, "**", "events.out.tfevents.*"),
                                 recursive=True)):
        with open(path, "rb") as f:
            raw = f.read()
        pos = 0
        while pos + 12 <= len(raw):
            (length,) = struct.unpack("<Q", raw[pos:pos + 8])
            if pos + 12 + length + 4 > len(raw):
                break  # a record still being written
            event = event_pb2.Event.FromString(raw[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for v in event.summary.value:
                if v.HasField("simple_value"):
                    out["scalars"].setdefault(v.tag, []).append((int(event.step), float(v.simple_value)))
                elif v.HasField("image"):
                    shape = (v.image.height, v.image.width, v.image.colorspace)
                    out["images"].setdefault(v.tag, []).append((int(event.step), shape))
    return out


class MetricsWriter:
    """Appends records to ``workdir/metrics.jsonl`` and, with ``tensorboard=True``, to TensorBoard event files.

    Args:
      workdir: the run directory (created if missing).
      resume_step: if given, existing records with ``step > resume_step`` are dropped first.
      tensorboard: also write TensorBoard scalars (and ``write_images``' images) to event files under
        ``workdir/tensorboard`` (needs the ``tensorboardX`` package; raises ImportError with a clear message if
        it is missing).
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
            self._tb = SummaryWriter(os.path.join(workdir, TENSORBOARD_DIR))

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
                if isinstance(v, float) and k != "time":  # TensorBoard keeps its own wall time
                    self._tb.add_scalar(f"{split}/{k}", v, int(step))
        return record

    @property
    def tensorboard(self) -> bool:
        """True if this writer writes TensorBoard event files (``tensorboard=True`` and ``enabled``)."""
        return self._tb is not None

    def write_images(self, step: int, images: dict[str, Any]) -> None:
        """Add images to TensorBoard (nothing without ``tensorboard=True``; metrics.jsonl holds no images).

        Args:
          step: the step the images belong to.
          images: ``{tag: image}``; an image is uint8 [H, W, 3|1] (or [H, W]), float [H, W, C] in [0, 1], or the
            path of an image file (e.g. a PNG the run wrote), read with Pillow.

        Raises:
          ValueError: an image that is not 2-D/3-D with 1, 3 or 4 channels (naming its tag).
        """
        if self._tb is None:
            return
        for tag, image in images.items():
            if isinstance(image, (str, os.PathLike)):
                from PIL import Image

                with Image.open(image) as im:
                    image = np.asarray(im.convert("RGB"))
            a = np.asarray(image)
            if a.ndim == 2:
                a = a[..., None]
            if a.ndim != 3 or a.shape[-1] not in (1, 3, 4):
                raise ValueError(f"images[{tag!r}]: expected an image [H, W, 1|3|4] or [H, W], got shape {a.shape}")
            if a.dtype != np.uint8:
                a = (np.clip(a.astype(np.float32), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
            self._tb.add_image(tag, a, int(step), dataformats="HWC")

    def flush(self) -> None:
        """Flush the TensorBoard event file (metrics.jsonl is written line by line)."""
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
