"""Evaluation over every local device and every process, with results identical to a one-device run.

Two pieces, used by the FID / IS / KID feature extraction (``generative/fid_pipeline.py``) and by the detector
evaluation of the experiments (``experiments/_detection.py: run_predict``):

- :func:`map_over_devices` splits a batch over ``jax.local_devices()`` (``jax.shard_map`` in one jitted program):
  the rows are padded to a multiple of the device count by repeating the last row, each device runs the function
  on its block of rows, and the padding rows' outputs are dropped. The function must treat rows independently
  (a network in inference mode, a detector's predict with per-image NMS).
- :func:`gather_from_processes` concatenates per-process arrays of equal shapes in process order on every process
  (``multihost_utils.process_allgather`` of the raw bytes, so float64 / int64 arrays travel exactly even without
  ``jax_enable_x64``). With one process it returns its input.

:func:`process_block` is the rows of a global batch that this process evaluates when every process sees the whole
batch (FID sources): the batch is padded to a multiple of ``processes * local devices`` and process ``p`` takes
the ``p``-th contiguous block, the layout ``jaxvision.data.Dataset`` uses for its host slices; gathering the
blocks in process order restores the global order, so a metric computed on the gathered rows is the one of a
single-process run.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["map_over_devices", "gather_from_processes", "process_block", "pad_rows"]

_AXIS = "devices"


def _num_rows(tree, name: str) -> int:
    leaves = jax.tree.leaves(tree)
    if not leaves:
        raise ValueError(f"{name}: expected at least one array, got {tree!r}")
    shapes = [np.shape(x) for x in leaves]
    if any(len(s) == 0 for s in shapes) or len({s[0] for s in shapes}) != 1:
        raise ValueError(f"{name}: expected arrays with the same leading (row) dimension, got shapes {shapes}")
    return int(shapes[0][0])


def pad_rows(tree, multiple: int, name: str = "batched"):
    """Every array of ``tree`` (numpy, same leading dim n >= 1) padded to a multiple of ``multiple`` rows by
    repeating its last row. Returns ``(padded tree, n)``."""
    if multiple < 1:
        raise ValueError(f"multiple: expected >= 1, got {multiple}")
    n = _num_rows(tree, name)
    if n == 0:
        raise ValueError(f"{name}: expected at least one row, got 0")
    extra = -n % multiple

    def pad(x):
        x = np.asarray(x)
        return x if not extra else np.concatenate([x, np.repeat(x[-1:], extra, axis=0)])

    return jax.tree.map(pad, tree), n


def map_over_devices(fn: Callable[[Any, Any], Any], devices: Sequence | None = None) -> Callable[[Any, Any], Any]:
    """``fn(shared, batched) -> outputs`` run with ``batched`` split over ``devices`` (default: every local one).

    Args:
      fn: a traceable function; ``shared`` (e.g. model variables) goes whole to every device, ``batched`` is a
        pytree of arrays with a common leading dim (rows), and every output has that leading dim. Rows must be
        independent (the result of a row may not depend on the other rows).
      devices: the devices (of this process) to use.

    Returns:
      ``mapped(shared, batched) -> outputs`` as numpy arrays with the rows of ``batched`` (any count n >= 1: it
      is padded to a multiple of the device count, repeating the last row, and the padding outputs dropped).
      ``mapped.replicate(shared)`` puts ``shared`` on the devices once (pass the result to avoid a transfer per
      call); ``mapped.num_devices`` is the device count.
    """
    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices: expected at least one device, got none")
    mesh = Mesh(np.asarray(devices), (_AXIS,))
    replicated = NamedSharding(mesh, PartitionSpec())
    split = NamedSharding(mesh, PartitionSpec(_AXIS))
    program = jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=(PartitionSpec(), PartitionSpec(_AXIS)),
                                    out_specs=PartitionSpec(_AXIS), check_vma=False))

    def replicate(shared):
        return jax.device_put(shared, replicated)

    def mapped(shared, batched):
        padded, n = pad_rows(jax.device_get(batched), len(devices))
        out = jax.device_get(program(replicate(shared), jax.device_put(padded, split)))
        return jax.tree.map(lambda x: np.asarray(x)[:n], out)

    mapped.replicate = replicate
    mapped.num_devices = len(devices)
    return mapped


def process_block(n: int, num_devices: int | None = None) -> tuple[slice, int]:
    """``(rows, padded)``: the block of rows of a global batch of ``n`` rows that this process evaluates, once the
    batch is padded to ``padded`` rows, a multiple of ``jax.process_count() * num_devices`` (default: the local
    device count). Process ``p`` takes rows ``p * padded / P : (p + 1) * padded / P``."""
    if n < 1:
        raise ValueError(f"n: expected >= 1 rows, got {n}")
    procs = jax.process_count()
    shards = procs * (jax.local_device_count() if num_devices is None else int(num_devices))
    padded = -(-n // shards) * shards
    per = padded // procs
    p = jax.process_index()
    return slice(p * per, (p + 1) * per), padded


def _row_bytes(x: np.ndarray) -> np.ndarray:
    """``x`` [m, ...] as its raw bytes, uint8 [m, bytes per row]."""
    x = np.ascontiguousarray(x)
    return x.reshape(len(x), -1).view(np.uint8) if x.size else np.zeros((len(x), 0), np.uint8)


def gather_from_processes(tree):
    """Numpy arrays of every process, concatenated along the rows in process order, on every process.

    Every process must call it with the same structure and the same shapes (e.g. the rows each one evaluated of the
    same global batch), all arrays with the same leading dim. The arrays travel as raw bytes in one
    ``multihost_utils.process_allgather``, so any dtype arrives bit for bit. With one process it returns ``tree``
    as numpy arrays.
    """
    tree = jax.tree.map(np.asarray, tree)
    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    leaves, treedef = jax.tree.flatten(tree)
    m = _num_rows(leaves, "tree")
    rows = [_row_bytes(x) for x in leaves]
    got = np.asarray(multihost_utils.process_allgather(np.concatenate(rows, axis=1)))  # [P, m, bytes]
    out, start = [], 0
    for x, r in zip(leaves, rows):
        part = np.ascontiguousarray(got[:, :, start:start + r.shape[1]])
        start += r.shape[1]
        out.append(part.view(x.dtype).reshape(got.shape[0] * m, *x.shape[1:]) if r.shape[1] else
                   np.zeros((got.shape[0] * m, *x.shape[1:]), x.dtype))
    return jax.tree.unflatten(treedef, out)
