"""``paired_folder``: the pix2pix paired-folder format (facades, maps, cityscapes, edges2shoes, ...).

``root/<split>/*.{jpg,jpeg,png}``, each file the two images of a pair side by side: A on the left half, B on the
right (``datasets/combine_A_and_B.py`` of pytorch-CycleGAN-and-pix2pix writes them so; the archives at
``efrosgans.eecs.berkeley.edu/pix2pix/datasets/`` are laid out so). ``direction='AtoB'`` makes A the
``condition`` and B the ``image`` (target); 'BtoA' swaps them (facades: labels are B, so BtoA). Each half is
resized (bilinear, PIL) to ``image_size`` x ``image_size``; train examples get the paper's jitter: resize to
``load_size`` (286 for 256) then a random ``image_size`` crop and a random horizontal flip, the same for both
halves. Batches ``{'condition', 'image'}`` float32 [B, S, S, 3] in [0, 1]. Files are read when a batch is made.
"""
from __future__ import annotations

import os

import numpy as np

from jaxvision._checks import check_choice, check_positive
from jaxvision.data.base import Dataset

DIRECTIONS = ("AtoB", "BtoA")
EXTENSIONS = (".jpg", ".jpeg", ".png")


def split_pair(path: str, image_size: int, load_size: int | None = None, rng: np.random.Generator | None = None):
    """Read one side-by-side file -> (A, B) float32 [S, S, 3] in [0, 1] (jittered when ``rng`` is given)."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        if w < 2:
            raise ValueError(f"{path}: expected an A|B side-by-side image, got width {w}")
        halves = [im.crop((0, 0, w // 2, h)), im.crop((w // 2, 0, 2 * (w // 2), h))]
    size = image_size if rng is None else (load_size or image_size)
    out = [np.asarray(x.resize((size, size), Image.BILINEAR), np.float32) / 255.0 for x in halves]
    if rng is not None:
        y, x = rng.integers(0, size - image_size + 1, 2)
        flip = rng.random() < 0.5
        out = [a[y:y + image_size, x:x + image_size] for a in out]
        out = [a[:, ::-1] if flip else a for a in out]
    return out[0], out[1]


def load(split: str, batch_size: int, seed: int = 0, num_devices: int | None = None, *, root: str = "",
         direction: str = "AtoB", image_size: int = 256, load_size: int | None = None, jitter: bool | None = None,
         drop_remainder: bool = True, host_id=None, num_hosts=None) -> Dataset:
    """Pairs from ``root/<split>/`` (see the module docstring and ``jaxvision.data.load``).

    Args:
      split: the sub-folder ('train', 'val', 'test').
      root: the data set folder (e.g. an unpacked ``facades.tar.gz``).
      direction: 'AtoB' (left half is the condition) or 'BtoA'.
      image_size: S, the side of the returned images.
      load_size: resize before the random crop on train (default ``image_size * 286 // 256``).
      jitter: random crop + flip (default: on for 'train' only).

    Raises:
      FileNotFoundError: no ``root/<split>`` folder or no image in it.
    """
    check_choice("direction", direction, DIRECTIONS)
    check_positive("image_size", image_size)
    folder = os.path.join(root, split)
    if not root or not os.path.isdir(folder):
        raise FileNotFoundError(f"root: expected a folder with a {split!r} sub-folder of A|B images, got {root!r}")
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith(EXTENSIONS))
    if not files:
        raise FileNotFoundError(f"root: no {'/'.join(EXTENSIONS)} files in {folder}")
    paths = [os.path.join(folder, f) for f in files]
    jitter = split == "train" if jitter is None else jitter
    load_size = load_size or image_size * 286 // 256
    if load_size < image_size:
        raise ValueError(f"load_size: expected >= image_size={image_size}, got {load_size}")

    def make_batch(idx, rngs):
        pairs = [split_pair(paths[i], image_size, load_size, rngs[j] if jitter else None) for j, i in enumerate(idx)]
        a, b = (np.stack(x) for x in zip(*pairs))
        cond, target = (a, b) if direction == "AtoB" else (b, a)
        return {"condition": cond, "image": target}

    info = {"name": "paired_folder", "split": split, "root": root, "direction": direction,
            "image_size": (image_size, image_size), "condition_channels": 3, "channels": 3,
            "num_examples": len(paths)}
    return Dataset(len(paths), make_batch, batch_size, seed=seed, shuffle=split == "train",
                   drop_remainder=drop_remainder, num_devices=num_devices, host_id=host_id, num_hosts=num_hosts,
                   info=info)
