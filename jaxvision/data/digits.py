"""``digits``: scikit-learn's bundled 1,797 real handwritten digits (8x8, 16 grey levels), no download.

The train/test split is fixed (independent of ``seed``): a permutation with seed 0 puts 360 images (20%, 36 per class
rounded by stratification) in ``test`` and the other 1,437 in ``train``. Images can be resized to 16 or 32 px with
bilinear interpolation (``skimage.transform.resize``, order 1), values in [0, 1].
"""
from __future__ import annotations

import functools

import numpy as np

from jaxvision._checks import check_choice
from jaxvision.data.base import Dataset, array_batches

SIZES = (8, 16, 32)
SPLITS = ("train", "test", "all")
NUM_TEST = 360


@functools.cache
def _split_indices() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits

    labels = load_digits().target
    rng = np.random.default_rng(0)
    test = []
    for c in range(10):  # stratified: 36 test images per class
        idx = np.flatnonzero(labels == c)
        test.append(rng.choice(idx, NUM_TEST // 10, replace=False))
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(len(labels)), test)
    return {"train": train, "test": test, "all": np.arange(len(labels))}


@functools.cache
def arrays(split: str = "train", size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """All images and labels of a split.

    Args:
      split: 'train' (1,437), 'test' (360) or 'all' (1,797).
      size: 8 (native), 16 or 32 px.

    Returns:
      images float32 [N, size, size, 1] in [0, 1]; labels int32 [N] in 0..9. Read-only arrays (cached).
    """
    check_choice("split", split, SPLITS)
    check_choice("size", size, SIZES)
    from sklearn.datasets import load_digits

    d = load_digits()
    idx = _split_indices()[split]
    images = (d.images[idx] / 16.0).astype(np.float32)
    if size != 8:
        from skimage.transform import resize

        images = resize(images, (len(idx), size, size), order=1, mode="edge", anti_aliasing=False)
        images = np.clip(images, 0.0, 1.0).astype(np.float32)
    images = images[..., None]
    labels = d.target[idx].astype(np.int32)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load(split: str, batch_size: int, seed: int = 0, num_devices: int | None = None, *, size: int = 8,
         shuffle: bool | None = None, drop_remainder: bool = True, host_id=None, num_hosts=None) -> Dataset:
    """Batches ``{'image': float32 [B, size, size, 1] in [0, 1], 'label': int32 [B]}`` (see ``jaxvision.data.load``)."""
    images, labels = arrays(split, size)
    info = {"name": "digits", "split": split, "num_classes": 10, "image_size": (size, size), "channels": 1,
            "class_names": tuple(str(c) for c in range(10)), "num_examples": len(labels)}
    return Dataset(len(labels), array_batches({"image": images, "label": labels}), batch_size, seed=seed,
                   shuffle=(split == "train") if shuffle is None else shuffle, drop_remainder=drop_remainder,
                   num_devices=num_devices, host_id=host_id, num_hosts=num_hosts, info=info)
