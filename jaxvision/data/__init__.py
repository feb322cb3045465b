"""jaxvision.data: embedded datasets and TFDS adapters yielding fixed-shape numpy batches.

``load(name, split, batch_size, seed=0, num_devices=None, **options) -> Dataset``; see ``jaxvision.data.registry``.
"""
from jaxvision.data.base import Dataset
from jaxvision.data.registry import NAMES, load

__all__ = ["Dataset", "NAMES", "load"]
