"""``pairs``: embedded paired image-to-image data for Pix2Pix, generated from a seed (nothing downloaded).

Two kinds (``kind=``), both with batches ``{'condition': float32 [B, S, S, Cc], 'image': float32 [B, S, S, 3]}``
in [0, 1] (``condition`` is the input, ``image`` the target):

- ``'shapes'`` (label maps -> rendered images, like facades' labels -> photos): 1..``max_objects`` shapes of the
  six ``shapes`` classes. The condition is a semantic label map (one fixed palette colour per class,
  ``LABEL_PALETTE``; background black, Cc = 3); the target renders the same layout over a random colour gradient,
  each shape in a random colour of ``shapes.COLORS`` with a linear shading, plus pixel noise. The colours are not in
  the label map: an L1-only model can only predict their mean, which is what the GAN term should fix. Example ``k``
  of a split comes from ``default_rng([data_seed, split_code, k])`` (train 1, val 2, test 3).
- ``'edges'`` (Canny edges -> photos, like edges2shoes): crops of the bundled photos (``jaxvision.data.photos``:
  train photos for 'train', held-out photos for 'val'/'test', downscaled by ``downscale``); the condition is
  ``skimage.feature.canny`` of the crop's grey level (``sigma``), Cc = 1, edges 1 on 0. Train crops are redrawn
  every epoch (random position and flip); val/test crops are fixed by ``data_seed``.
"""
from __future__ import annotations

import functools

import numpy as np

from jaxvision._checks import check_choice, check_positive
from jaxvision.data import photos
from jaxvision.data.base import Dataset
from jaxvision.data.shapes import CLASS_NAMES, COLORS, _background, _rasterize, _shape_geometry

KINDS = ("shapes", "edges")
SPLIT_CODES = {"train": 1, "val": 2, "test": 3}
DEFAULT_NUM_EXAMPLES = {"shapes": {"train": 2048, "val": 128, "test": 128},
                        "edges": {"train": 4096, "val": 128, "test": 128}}
#: label-map colour of each class of ``shapes.CLASS_NAMES`` (background: black)
LABEL_PALETTE = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 1.0],
                          [0.0, 1.0, 1.0]], np.float32)


def render_pair(rng: np.random.Generator, image_size: int = 64, max_objects: int = 3, noise: float = 0.02):
    """One (label map, rendered image) pair: float32 [S, S, 3] each in [0, 1]."""
    s = image_size
    img = _background(rng, s, None)
    label = np.zeros((s, s, 3), np.float32)
    yy = np.linspace(-1.0, 1.0, s, dtype=np.float32)[:, None, None]
    for _ in range(int(rng.integers(1, max_objects + 1))):
        r = rng.uniform(0.12 * s, 0.3 * s)
        cx, cy = rng.uniform(r + 0.5, s - r - 0.5, 2)
        cls = int(rng.integers(len(CLASS_NAMES)))
        outline, _, _, _ = _shape_geometry(cls, cx, cy, r, rng)
        m = _rasterize(outline, cx, cy, r, s)
        color = COLORS[rng.integers(len(COLORS))] + rng.uniform(-0.08, 0.08, 3)
        shade = 1.0 + 0.25 * yy * rng.choice([-1.0, 1.0])          # lit from above or below
        img = np.where(m[..., None], np.clip(color * shade, 0, 1), img)
        label[m] = LABEL_PALETTE[cls]
    img = np.clip(img + noise * rng.standard_normal(img.shape), 0.0, 1.0)
    return label, img.astype(np.float32)


@functools.lru_cache(maxsize=8)
def generate_shapes(split: str, data_seed: int, num_examples: int, image_size: int, max_objects: int) -> dict:
    """A whole 'shapes' split (cached): condition uint8 [N, S, S, 3], image uint8 [N, S, S, 3]."""
    out = {"condition": np.zeros((num_examples, image_size, image_size, 3), np.uint8),
           "image": np.zeros((num_examples, image_size, image_size, 3), np.uint8)}
    for k in range(num_examples):
        label, img = render_pair(np.random.default_rng([data_seed & 0xFFFFFFFF, SPLIT_CODES[split], k]),
                                 image_size, max_objects)
        out["condition"][k], out["image"][k] = np.round(label * 255), np.round(img * 255)
    for v in out.values():
        v.setflags(write=False)
    return out


def canny_edges(images: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Canny edge maps float32 [N, S, S, 1] (1 on edges) of images float32 [N, S, S, 3] in [0, 1]."""
    from skimage.color import rgb2gray
    from skimage.feature import canny

    return np.stack([canny(rgb2gray(im), sigma=sigma) for im in images]).astype(np.float32)[..., None]


def load(split: str, batch_size: int, seed: int = 0, num_devices: int | None = None, *, kind: str = "shapes",
         image_size: int = 64, num_examples: int | None = None, data_seed: int = 0, max_objects: int = 3,
         downscale: int = 2, sigma: float = 1.5, drop_remainder: bool = True, host_id=None,
         num_hosts=None) -> Dataset:
    """Paired batches ``{'condition', 'image'}`` (see the module docstring and ``jaxvision.data.load``).

    Args:
      split: 'train', 'val' or 'test'.
      kind: 'shapes' (label maps -> rendered images) or 'edges' (Canny edges -> photo crops).
      image_size: S (>= 16).
      num_examples: pairs per split (default: 2048 / 4096 train, 128 val/test).
      data_seed: seeds the pairs ('shapes') or the fixed val/test crops ('edges'); ``seed`` shuffles.
      max_objects: most shapes per image ('shapes').
      downscale: photo downscale factor before cropping ('edges').
      sigma: Canny Gaussian sigma ('edges').
    """
    check_choice("split", split, tuple(SPLIT_CODES))
    check_choice("kind", kind, KINDS)
    if image_size < 16:
        raise ValueError(f"image_size: expected >= 16, got {image_size}")
    n = DEFAULT_NUM_EXAMPLES[kind][split] if num_examples is None else num_examples
    check_positive("num_examples", n)
    check_positive("max_objects", max_objects)
    check_positive("sigma", sigma)
    if kind == "shapes":
        data = generate_shapes(split, data_seed, n, image_size, max_objects)

        def make_batch(idx, rngs):
            return {k: v[idx].astype(np.float32) / 255.0 for k, v in data.items()}
        channels = 3
    else:
        pool = photos.images("train" if split == "train" else "test", downscale)
        if split == "train":
            photos.random_crops(np.random.default_rng(0), pool, 1, image_size)  # validate image_size early

            def make_batch(idx, rngs):
                img = photos.random_crops(rngs, pool, len(idx), image_size, flip=True)
                return {"condition": canny_edges(img, sigma), "image": img}
        else:
            fixed = photos.random_crops(np.random.default_rng([data_seed, SPLIT_CODES[split], 7357]), pool, n,
                                        image_size)
            fixed_edges = canny_edges(fixed, sigma)

            def make_batch(idx, rngs):
                return {"condition": fixed_edges[idx], "image": fixed[idx]}
        channels = 1
    info = {"name": "pairs", "kind": kind, "split": split, "image_size": (image_size, image_size),
            "condition_channels": channels, "channels": 3, "num_examples": n}
    return Dataset(n, make_batch, batch_size, seed=seed, shuffle=split == "train", drop_remainder=drop_remainder,
                   num_devices=num_devices, host_id=host_id, num_hosts=num_hosts, info=info)
