"""``text_embeddings``: images with precomputed caption embeddings read from a file (CUB / COCO for StackGAN).

StackGAN's CUB and COCO releases ship a fixed text embedding per caption (char-CNN-RNN, 1024-d, ten captions per
bird image) instead of the captions themselves. Convert them once to one ``.npz`` per split holding

- ``image``: uint8 [N, H, W, 3] (or float in [0, 1]),
- ``embedding``: float [N, E] or [N, K, E] (K captions per image),
- optionally ``caption``: str [N] or [N, K] (for sample grids),

and point ``path`` at the file, or at a directory holding ``<split>.npz``. Batches: ``image`` float32 [B, H, W, 3]
in [0, 1] and ``embedding`` float32 [B, E]: with K captions, training batches take a random one per example (its
random generator; ``average`` > 1 averages that many distinct random ones, as StackGAN's training does), evaluation
batches the first; ``caption_index`` int32 [B] says which (-1 when averaged).
"""
from __future__ import annotations

import os

import numpy as np

from jaxvision._checks import check_positive
from jaxvision.data.base import Dataset


def read_embeddings(path: str, split: str = "train") -> dict:
    """The arrays of ``path`` (an .npz file, or a directory with ``<split>.npz``), checked.

    Returns:
      ``{'image': uint8 or float32 [N, H, W, 3], 'embedding': float32 [N, K, E], 'caption': str [N, K] (if any)}``.

    Raises:
      FileNotFoundError: no such file; ValueError: a missing key or inconsistent shapes, naming the array.
    """
    file = os.path.join(path, f"{split}.npz") if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise FileNotFoundError(f"path: no embeddings file {file!r} (expected an .npz or a directory with "
                                f"{split}.npz)")
    with np.load(file, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    for key in ("image", "embedding"):
        if key not in arrays:
            raise ValueError(f"{file}: expected an array {key!r}, got {sorted(arrays)}")
    image, emb = arrays["image"], np.asarray(arrays["embedding"], np.float32)
    if image.ndim != 4 or image.shape[-1] != 3:
        raise ValueError(f"{file}: 'image': expected [N, H, W, 3], got {image.shape}")
    if emb.ndim == 2:
        emb = emb[:, None]
    if emb.ndim != 3 or emb.shape[0] != image.shape[0]:
        raise ValueError(f"{file}: 'embedding': expected [N={image.shape[0]}, E] or [N, K, E], got {emb.shape}")
    if not np.all(np.isfinite(emb)):
        raise ValueError(f"{file}: 'embedding': expected finite values, got NaN or inf")
    if image.dtype != np.uint8 and (image.min() < 0 or image.max() > 1):
        raise ValueError(f"{file}: 'image': expected uint8 or floats in [0, 1], got {image.dtype} in "
                         f"[{image.min():.4g}, {image.max():.4g}]")
    out = {"image": image, "embedding": emb}
    if "caption" in arrays:
        cap = np.asarray(arrays["caption"]).astype(str)
        out["caption"] = cap.reshape(cap.shape[0], -1)
    return out


def load(split: str, batch_size: int, seed: int = 0, num_devices: int | None = None, *, path: str,
         average: int = 1, random_caption: bool | None = None, shuffle: bool | None = None,
         drop_remainder: bool = True, host_id=None, num_hosts=None) -> Dataset:
    """Image + precomputed text embedding batches (see the module docstring and ``jaxvision.data.load``).

    Args:
      split: the split name (the file ``<path>/<split>.npz`` when ``path`` is a directory).
      path: .npz file or directory.
      average: embeddings averaged per example (1..K).
      random_caption: pick random captions (default: True for 'train').
    """
    arrays = read_embeddings(path, split)
    n, k = arrays["embedding"].shape[:2]
    check_positive("average", average)
    if average > k:
        raise ValueError(f"average: expected <= the {k} embeddings per image, got {average}")
    rand = (split == "train") if random_caption is None else random_caption
    image, emb = arrays["image"], arrays["embedding"]

    def make_batch(idx, rngs):
        if rand:
            picks = [rngs[j].choice(k, average, replace=False) for j in range(len(idx))]
        else:
            picks = [np.arange(average) for _ in idx]
        e = np.stack([emb[i, p].mean(0) for i, p in zip(idx, picks)]).astype(np.float32)
        img = image[idx]
        img = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
        which = np.array([p[0] if average == 1 else -1 for p in picks], np.int32)
        return {"image": img, "embedding": e, "caption_index": which}

    info = {"name": "text_embeddings", "split": split, "image_size": image.shape[1:3], "channels": 3,
            "embedding_dim": emb.shape[-1], "captions_per_image": k, "num_examples": n,
            "captions": arrays.get("caption")}
    return Dataset(n, make_batch, batch_size, seed=seed, shuffle=(split == "train") if shuffle is None else shuffle,
                   drop_remainder=drop_remainder, num_devices=num_devices, host_id=host_id, num_hosts=num_hosts,
                   info=info)
