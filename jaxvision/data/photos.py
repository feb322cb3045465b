"""``photos``: the real colour photographs bundled with scikit-image, as random square patches.

The split is by image (no photo appears in both): ``train`` crops astronaut, chelsea, hubble_deep_field,
immunohistochemistry, retina; ``test`` crops coffee and rocket. Each photo is first downscaled by ``downscale``
(area averaging) so that a patch shows a recognisable part of the scene, then patches of ``patch_size`` px are cut at
random positions (with a random horizontal flip on ``train``). Train patches are redrawn every epoch, each from
``(seed, epoch, position)``; test patches are fixed by ``seed``.
"""
from __future__ import annotations

import functools

import numpy as np

from jaxvision._checks import check_choice, check_positive
from jaxvision.data.base import Dataset

TRAIN_IMAGES = ("astronaut", "chelsea", "hubble_deep_field", "immunohistochemistry", "retina")
TEST_IMAGES = ("coffee", "rocket")
SPLITS = {"train": TRAIN_IMAGES, "test": TEST_IMAGES}


#: The colour sample photos scikit-learn bundles (``sklearn.datasets.load_sample_image``, 427 x 640 JPEGs): two more
#: real photographs for training-only pools (``sr_photos``); the ``photos`` splits above do not use them.
SKLEARN_PHOTOS = ("china", "flower")


def area_downscale(img: np.ndarray, factor: int) -> np.ndarray:
    """[H, W, C] -> [H // factor, W // factor, C]: the mean of each ``factor`` x ``factor`` block (the bottom / right
    remainder dropped); ``factor`` 1 returns ``img``."""
    if factor <= 1:
        return img
    h, w = (s // factor * factor for s in img.shape[:2])
    return img[:h, :w].reshape(h // factor, factor, w // factor, factor, img.shape[-1]).mean((1, 3))


@functools.cache
def photo(name: str, downscale: int = 1) -> np.ndarray:
    """One bundled photo as float32 [H, W, 3] in [0, 1], area-downscaled by an integer factor (cached, read-only).
    ``name``: a ``skimage.data`` colour image (``stereo_motorcycle``: its left view) or one of ``SKLEARN_PHOTOS``."""
    if name in SKLEARN_PHOTOS:
        from sklearn.datasets import load_sample_image

        img = load_sample_image(f"{name}.jpg")
    else:
        import skimage.data

        if not callable(getattr(skimage.data, name, None)):
            raise ValueError(f"name: expected a skimage.data photo or one of {SKLEARN_PHOTOS}, got {name!r}")
        img = getattr(skimage.data, name)()
        img = img[0] if isinstance(img, tuple) else img
    if img.ndim != 3 or img.shape[-1] < 3:
        raise ValueError(f"name: expected a colour skimage.data image, got {name!r} with shape {img.shape}")
    img = np.ascontiguousarray(area_downscale(img[..., :3].astype(np.float32) / 255.0, downscale), np.float32)
    img.setflags(write=False)
    return img


def images(split: str, downscale: int = 1) -> list[np.ndarray]:
    """The photos of a split ('train' or 'test'), float32 [H, W, 3] in [0, 1] each."""
    check_choice("split", split, tuple(SPLITS))
    return [photo(n, downscale) for n in SPLITS[split]]


def patch_rng(rngs, j: int) -> np.random.Generator:
    """The Generator of patch ``j``: ``rngs`` itself if it is one Generator, else ``rngs[j]`` (one per patch)."""
    return rngs if isinstance(rngs, np.random.Generator) else rngs[j]


def random_crops(rngs, pool: list[np.ndarray], n: int, size: int, flip: bool = False) -> np.ndarray:
    """``n`` random ``size`` x ``size`` crops, each from a uniformly chosen photo of ``pool``.

    Returns float32 [n, size, size, 3].

    ``rngs`` is one numpy Generator for all crops, or a sequence of one Generator per crop.
    """
    out = np.empty((n, size, size, 3), np.float32)
    for j in range(n):
        rng = patch_rng(rngs, j)
        img = pool[rng.integers(0, len(pool))]
        if min(img.shape[:2]) < size:
            raise ValueError(f"patch_size: expected <= {min(img.shape[:2])} px at this downscale, got {size}")
        y = rng.integers(0, img.shape[0] - size + 1)
        x = rng.integers(0, img.shape[1] - size + 1)
        crop = img[y:y + size, x:x + size]
        out[j] = crop[:, ::-1] if flip and rng.random() < 0.5 else crop
    return out


def load(split: str, batch_size: int, seed: int = 0, num_devices: int | None = None, *, patch_size: int = 32,
         downscale: int = 4, num_examples: int = 4096, drop_remainder: bool = True, host_id=None,
         num_hosts=None) -> Dataset:
    """Batches ``{'image': float32 [B, patch_size, patch_size, 3] in [0, 1]}`` (see ``jaxvision.data.load``)."""
    check_choice("split", split, tuple(SPLITS))
    check_positive("patch_size", patch_size)
    check_positive("downscale", downscale)
    check_positive("num_examples", num_examples)
    pool = images(split, downscale)
    if split == "test":
        fixed = random_crops(np.random.default_rng([seed, 7357]), pool, num_examples, patch_size)

        def make_batch(idx, rngs):
            return {"image": fixed[idx]}
    else:
        random_crops(np.random.default_rng(0), pool, 1, patch_size)  # validate patch_size early

        def make_batch(idx, rngs):
            return {"image": random_crops(rngs, pool, len(idx), patch_size, flip=True)}
    info = {"name": "photos", "split": split, "image_size": (patch_size, patch_size), "channels": 3,
            "images": SPLITS[split], "num_examples": num_examples}
    return Dataset(num_examples, make_batch, batch_size, seed=seed, shuffle=split == "train",
                   drop_remainder=drop_remainder, num_devices=num_devices, host_id=host_id, num_hosts=num_hosts,
                   info=info)
