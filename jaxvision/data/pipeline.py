"""The parallel input pipeline: a ``Dataset``'s training batches built ahead in grain worker processes/threads.

Step ``k`` of a run reads ``dataset.batch(k % len, epoch=k // len)``, a function of ``(seed, epoch, index)`` only;
``step_batches`` produces exactly that sequence, in order, with ``grain`` (``MapDataset.range(start, stop)`` mapped
by ``StepBatch``, ``ReadOptions`` threads, ``mp_prefetch`` worker processes). So the batches, and a resumed run,
are identical whatever the number of workers: the iterator position is the training step, which the Orbax
checkpoint stores, and a resumed run starts the pipeline at that step.

Worker processes are spawned (grain): the data set is pickled into them, so its ``make_batch`` must be picklable
(the TFDS / folder data sets are; the embedded ones build batches from in-memory arrays and gain little from
workers). Threads suit sources whose decoding and resizing release the GIL (PIL, OpenCV).
"""
from __future__ import annotations

from collections.abc import Iterator


class StepBatch:
    """``k -> dataset.batch(k % len, k // len)``: the batch training step ``k`` reads (picklable)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __call__(self, k: int) -> dict:
        epoch, i = divmod(int(k), len(self.dataset))
        return self.dataset.batch(i, epoch)


def _absl_flags_parsed() -> None:
    """grain reads absl flags; outside an absl app they are unparsed, which grain's workers refuse."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def step_batches(dataset, start: int, stop: int, workers: int = 0, threads: int = 0,
                 buffer: int = 2) -> Iterator[dict]:
    """Batches of training steps ``start .. stop - 1`` of ``dataset`` (see the module docstring), in order.

    Args:
      dataset: a ``Dataset`` (anything with ``len`` and ``batch(i, epoch)``).
      workers: grain worker processes building batches ahead (0: none). threads: grain reader threads (0: none).
      buffer: batches built ahead per worker (or by the threads).
    With ``workers == threads == 0`` this is the plain loop over ``dataset.batch`` in the caller's thread.
    """
    for name, v in (("workers", workers), ("threads", threads), ("buffer", buffer)):
        if int(v) < 0:
            raise ValueError(f"{name}: expected >= 0, got {v}")
    if stop <= start:
        return
    if not workers and not threads:
        fn = StepBatch(dataset)
        for k in range(start, stop):
            yield fn(k)
        return
    import grain

    _absl_flags_parsed()
    ds = grain.MapDataset.range(start, stop).map(StepBatch(dataset))
    it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=int(threads), prefetch_buffer_size=int(buffer)
                                                 if threads else 0))
    if workers:
        it_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=int(workers),
                                                               per_worker_buffer_size=max(1, int(buffer))))
    iterator = iter(it_ds)
    try:
        yield from iterator
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
