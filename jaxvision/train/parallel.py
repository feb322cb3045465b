"""Data parallelism: the only module that maps computations over devices.

A step built with ``make_train_step(loss_fn, axis_name=AXIS)`` is wrapped by ``pmap_step``; the state is
``replicate``-d onto the local devices and every batch ``shard``-ed to ``[D, B/D, ...]`` (or loaded that way with
``jaxvision.data.load(..., num_devices=D)``). Gradients are averaged with ``lax.pmean`` over the axis ``'batch'``,
so the same code runs on one device (D = 1) and on N.

Multi-host (several processes, each with its local devices): call ``initialize_distributed()`` first thing in
every process. It passes the coordinator address, process count and process id to ``jax.distributed.initialize``
from its arguments or, if not given, from the environment variables ``JAXVISION_COORDINATOR`` (``host:port`` of
process 0), ``JAXVISION_NUM_PROCESSES`` and ``JAXVISION_PROCESS_ID``; with none of them set it calls
``jax.distributed.initialize()`` without arguments, which auto-detects Cloud TPU, SLURM and similar clusters.
Each process then loads its slice of every global batch (``jaxvision.data.load`` defaults to
``host_id=jax.process_index(), num_hosts=jax.process_count()``) and pmaps over its local devices; the ``pmean``
spans all devices of all processes.
"""
from __future__ import annotations

import collections
import os
from collections.abc import Callable, Generator, Iterable

import jax
import numpy as np

from jaxvision.train.state import is_typed_key, make_eval_step, make_train_step

AXIS = "batch"


def local_device_count() -> int:
    """Number of devices this process drives."""
    return jax.local_device_count()


def replicate(tree, devices=None):
    """Copy every array of ``tree`` onto each local device: leaves get a leading device axis [D, ...]."""
    devices = list(devices or jax.local_devices())
    mesh = jax.sharding.Mesh(np.array(devices), ("d",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("d"))

    def put(x):
        if is_typed_key(x):  # typed PRNG keys: replicate the key data, then re-wrap
            return jax.random.wrap_key_data(put(jax.random.key_data(x)), impl=jax.random.key_impl(x))
        x = np.asarray(x)
        return jax.device_put(np.broadcast_to(x, (len(devices),) + x.shape), sharding)

    return jax.tree.map(put, tree)


def unreplicate(tree):
    """The copy of device 0 of a replicated tree (drops the leading device axis)."""
    return jax.tree.map(lambda x: x[0], tree)


def shard(batch: dict, num_devices: int | None = None) -> dict:
    """Reshape every array of a host batch from [B, ...] to [D, B/D, ...] (D defaults to the local device count)."""
    d = num_devices or local_device_count()
    out = {}
    for k, v in batch.items():
        if v.shape[0] % d:
            raise ValueError(f"batch[{k!r}]: expected a leading dim divisible by {d} devices, got {v.shape}")
        out[k] = v.reshape(d, v.shape[0] // d, *v.shape[1:])
    return out


def prefetch_to_device(batches: Iterable[dict], size: int = 2,
                       transform: Callable[[dict], dict] | None = None) -> Generator[dict, None, None]:
    """Yield ``batches`` (after ``transform``), each one transferred to the device ``size`` batches ahead of its
    use, so the transfer of the next batch overlaps the current step (``jax.device_put`` is asynchronous).

    Batches with a leading device axis for ``pmap`` (``transform`` given, e.g. ``shard``) stay numpy: ``pmap``
    splits them over the devices itself. ``size=0`` yields the host batches unchanged. Close the generator to
    stop the source (its grain workers) early.
    """
    if size < 0:
        raise ValueError(f"size: expected >= 0, got {size}")
    source = iter(batches)
    put = transform if transform is not None else jax.device_put
    if size == 0:
        put = transform or (lambda b: b)
    queue: collections.deque = collections.deque()
    try:
        for batch in source:
            queue.append(put(batch))
            if len(queue) > size:
                yield queue.popleft()
        while queue:
            yield queue.popleft()
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def pmap_step(step_fn: Callable, donate_state: bool = True) -> Callable:
    """``jax.pmap`` over the axis ``'batch'``: ``(replicated state, sharded batch) -> replicated outputs``.

    ``step_fn`` must have been built for this axis (``make_train_step(loss_fn, axis_name=AXIS)``) so that its
    gradients are averaged across devices.
    """
    return jax.pmap(step_fn, axis_name=AXIS, donate_argnums=(0,) if donate_state else ())


def data_parallel_train_step(loss_fn: Callable) -> Callable:
    """``pmap_step(make_train_step(loss_fn, axis_name='batch'))``."""
    return pmap_step(make_train_step(loss_fn, axis_name=AXIS))


def data_parallel_eval_step(metrics_fn: Callable) -> Callable:
    """``pmap`` of ``make_eval_step(metrics_fn, axis_name='batch')``; outputs are summed over devices."""
    return jax.pmap(make_eval_step(metrics_fn, axis_name=AXIS), axis_name=AXIS)


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> bool:
    """Join a multi-process run (see the module docstring for the environment variables).

    Returns:
      True if ``jax.distributed.initialize`` was called with explicit settings, False if it auto-detected.
    """
    env = os.environ
    coordinator_address = coordinator_address or env.get("JAXVISION_COORDINATOR")
    if num_processes is None and "JAXVISION_NUM_PROCESSES" in env:
        num_processes = int(env["JAXVISION_NUM_PROCESSES"])
    if process_id is None and "JAXVISION_PROCESS_ID" in env:
        process_id = int(env["JAXVISION_PROCESS_ID"])
    given = [coordinator_address is not None, num_processes is not None, process_id is not None]
    if any(given) and not all(given):
        raise ValueError("initialize_distributed: expected coordinator_address, num_processes and process_id all "
                         f"set or all unset, got {coordinator_address!r}, {num_processes!r}, {process_id!r}")
    if all(given):
        jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                                   process_id=process_id)
        return True
    jax.distributed.initialize()
    return False
