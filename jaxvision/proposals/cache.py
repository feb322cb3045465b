"""Selective-search proposals of a whole split: computed once in parallel worker processes, cached on disk.

As in R-CNN, proposals are a preprocessing step: ``cached_proposals(path, images, ...)`` returns the padded
proposals of every image, reading ``path`` (.npz) if it holds the proposals of exactly these images and options
(checked by a fingerprint of the pixels and the options), else computing them (``compute_proposals``) and writing
the file. The time spent computing is returned separately from any training time.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import time

import numpy as np

from jaxvision.proposals import search
from jaxvision.proposals.search import selective_search


def _chunk(args):
    images, start, max_proposals, options = args
    seed = options.pop("seed", 0)
    t0 = time.process_time()
    out = []
    for j, img in enumerate(images):
        out.append(selective_search(img, max_proposals=max_proposals, seed=seed + start + j, **options))
    return out, time.process_time() - t0


def pad_proposals(proposals, max_proposals: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image proposal arrays ``[N_i, 4]`` -> boxes float32 [N, P, 4] (zeros past N_i) and mask bool [N, P]."""
    boxes = np.zeros((len(proposals), max_proposals, 4), np.float32)
    mask = np.zeros((len(proposals), max_proposals), bool)
    for i, p in enumerate(proposals):
        n = min(len(p), max_proposals)
        boxes[i, :n], mask[i, :n] = p[:n], True
    return boxes, mask


def compute_proposals(images: np.ndarray, max_proposals: int, *, workers: int | None = None, chunk_size: int = 16,
                      stats: dict | None = None, **options) -> tuple[np.ndarray, np.ndarray]:
    """Selective search over ``images`` in ``workers`` processes (default: the CPU count).

    Args:
      images: [N, H, W, 3] uint8 or float in [0, 1].
      max_proposals: P, the best-ranked proposals kept per image.
      workers: worker processes (1: in this process).
      chunk_size: images per task.
      stats: if given, receives 'cpu_seconds': the CPU time the searches took, summed over the workers (on a
        machine shared with other work this, divided by the worker count, estimates the unloaded wall time).
      **options: ``selective_search`` keyword arguments (mode, scale, ranking, seed: image i is ranked with
        ``seed + i``).

    Returns:
      boxes float32 [N, P, 4] xyxy px, mask bool [N, P] (True for real proposals, a prefix of each row).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images: expected [N, H, W, 3], got shape {images.shape}")
    if max_proposals < 1:
        raise ValueError(f"max_proposals: expected >= 1, got {max_proposals}")
    workers = os.cpu_count() or 1 if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers: expected >= 1, got {workers}")
    tasks = [(images[s:s + chunk_size], s, max_proposals, dict(options)) for s in range(0, len(images), chunk_size)]
    if workers == 1 or len(tasks) == 1:
        results = [_chunk(t) for t in tasks]
    else:
        # spawn: the parent may hold JAX's threads, which a fork would copy in an undefined state
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            results = list(pool.map(_chunk, tasks))
    if stats is not None:
        stats["cpu_seconds"] = float(sum(r[1] for r in results))
    return pad_proposals([p for r in results for p in r[0]], max_proposals)


def fingerprint(images: np.ndarray, max_proposals: int, options: dict) -> str:
    """SHA-1 of the pixels, their shape and dtype, ``max_proposals``, the options and ``search.VERSION`` (what the
    cache is valid for: a file written with other defaults is recomputed)."""
    h = hashlib.sha1(np.ascontiguousarray(images).tobytes())
    h.update(json.dumps([list(images.shape), str(images.dtype), max_proposals, sorted(options.items()),
                        search.VERSION],
                        default=str).encode())
    return h.hexdigest()


def cached_proposals(path: str, images: np.ndarray, max_proposals: int, *, workers: int | None = None,
                     **options) -> dict:
    """Proposals of ``images`` from the cache file ``path``, computed and written first if absent or stale.

    Returns:
      dict with 'proposals' float32 [N, P, 4], 'proposal_mask' bool [N, P], 'seconds' (time spent computing in
      this call; 0.0 when read from the cache), 'cached' (True when read from the cache), 'compute_seconds' and
      'cpu_seconds' (wall and summed worker CPU time of the computation that made the file).
    """
    images = np.asarray(images)
    key = fingerprint(images, max_proposals, options)
    if os.path.exists(path):
        with np.load(path) as f:
            if str(f["fingerprint"]) == key:
                return {"proposals": f["proposals"], "proposal_mask": f["proposal_mask"], "seconds": 0.0,
                        "cached": True, "compute_seconds": float(f["seconds"]),
                        "cpu_seconds": float(f["cpu_seconds"]) if "cpu_seconds" in f else float("nan")}
    t0 = time.perf_counter()
    stats = {}
    boxes, mask = compute_proposals(images, max_proposals, workers=workers, stats=stats, **options)
    seconds = time.perf_counter() - t0
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    np.savez_compressed(tmp, proposals=boxes, proposal_mask=mask, fingerprint=key, seconds=seconds,
                        cpu_seconds=stats["cpu_seconds"])
    os.replace(tmp, path)
    return {"proposals": boxes, "proposal_mask": mask, "seconds": seconds, "cached": False,
            "compute_seconds": seconds, "cpu_seconds": stats["cpu_seconds"]}
