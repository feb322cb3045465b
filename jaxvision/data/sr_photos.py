"""``sr_photos``: super-resolution pairs from the bundled photos (``jaxvision.data.photos``), x``scale`` bicubic.

High-resolution (HR) images are the photos area-downscaled by ``downscale`` (train photos for 'train', the held-out
photos coffee and rocket for 'val'/'test'); the low-resolution (LR) input is the HR image downscaled by ``scale``
with PIL's bicubic filter (antialiased, like MATLAB's ``imresize``, the protocol of the SR papers), clipped to
[0, 1]. Batches ``{'low_res': float32 [B, P, P, 3], 'image': float32 [B, P scale, P scale, 3]}`` in [0, 1], with
``P = patch_size``: random HR crops (+ flip) redrawn every epoch on 'train', fixed crops on 'val'/'test'.

Training-only options (the held-out photos are never touched): ``train_photos`` names the ``photos.photo`` photos
the training patches come from (default ``TRAIN_PHOTOS``: ``photos.TRAIN_IMAGES`` plus three more natural photos,
the left view of ``stereo_motorcycle`` and scikit-learn's ``china`` and ``flower``; coffee and rocket are
refused); ``train_downscales`` cuts them from the training photos at several area-downscale factors (each (photo,
factor) pair is drawn equally often; pairs smaller than the HR patch are left out), so the same photos give more
and more varied content at one HR resolution; ``dihedral`` adds a random vertical flip and transpose to the
horizontal flip (all 8 flips/90-degree rotations of a patch, the usual SR augmentation of EDSR and later papers);
``channel_shuffle`` puts each patch's R, G, B channels in a random order (the "RGB permute" augmentation of Yoo et
al. 2020, "Rethinking Data Augmentation for Image Super-resolution"): the bicubic LR is per channel, so the pair
stays exact; ``contrast=c`` scales each patch's contrast by a random factor s in [1 - c, 1] about a random grey
level u in [0, 1] (``x s + u (1 - s)``, still in [0, 1]; bicubic weights sum to 1, so the LR follows exactly).
``whole_images(split)`` returns the held-out photos whole (cropped to a multiple of ``scale``), the test set of
``experiments/srgan_photos.py``.
"""
from __future__ import annotations

import numpy as np

from jaxvision._checks import check_choice, check_positive
from jaxvision.data import photos
from jaxvision.data.base import Dataset

SPLITS = ("train", "val", "test")
TRAIN_PHOTOS = photos.TRAIN_IMAGES + ("stereo_motorcycle",) + photos.SKLEARN_PHOTOS


def _resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    from PIL import Image

    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c]), mode="F").resize((w, h), Image.BICUBIC))
             for c in range(img.shape[-1])]
    return np.clip(np.stack(chans, -1), 0.0, 1.0).astype(np.float32)


def bicubic_downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """HR float32 [H, W, C] in [0, 1] (H, W divisible by ``scale``) -> LR [H/scale, W/scale, C] (PIL bicubic)."""
    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"hr: expected H and W divisible by scale={scale}, got {hr.shape}")
    return _resize(np.asarray(hr, np.float32), h // scale, w // scale)


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """LR float32 [h, w, C] -> [h scale, w scale, C] in [0, 1] (PIL bicubic): the bicubic baseline."""
    h, w = lr.shape[:2]
    return _resize(np.asarray(lr, np.float32), h * scale, w * scale)


def whole_images(split: str = "test", scale: int = 4, downscale: int = 2) -> list[tuple[np.ndarray, np.ndarray]]:
    """The split's photos whole: ``[(lr [h, w, 3], hr [h scale, w scale, 3])]`` (HR cropped to multiples of
    ``scale`` at the bottom/right)."""
    check_choice("split", split, SPLITS)
    out = []
    for img in photos.images("train" if split == "train" else "test", downscale):
        h, w = (s // scale * scale for s in img.shape[:2])
        hr = np.ascontiguousarray(img[:h, :w])
        out.append((bicubic_downscale(hr, scale), hr))
    return out


def train_pool(hr_size: int, downscales=(2,), names=TRAIN_PHOTOS) -> list[np.ndarray]:
    """The photos ``names`` at each factor of ``downscales`` with both sides >= ``hr_size`` (ValueError if none, or
    if a held-out test photo is among ``names``)."""
    held_out = sorted(set(names) & set(photos.TEST_IMAGES))
    if held_out or not names:
        raise ValueError(f"train_photos: expected training photos other than the held-out {photos.TEST_IMAGES}, got "
                         f"{tuple(names)!r}")
    if not downscales:
        raise ValueError(f"train_downscales: expected at least one factor, got {downscales!r}")
    for f in downscales:
        check_positive("train_downscales", f)
    pool = [img for f in downscales for img in (photos.photo(n, f) for n in names) if min(img.shape[:2]) >= hr_size]
    if not pool:
        raise ValueError(f"patch_size: no training photo at downscales {tuple(downscales)} has sides >= the HR "
                         f"patch ({hr_size} px)")
    return pool


def augment(rngs, hr: np.ndarray, dihedral: bool = False, channel_shuffle: bool = False,
            contrast: float = 0.0) -> np.ndarray:
    """The training augmentations of each patch of [n, S, S, 3], in this order: (``dihedral``) a random vertical
    flip and transpose (with the loader's horizontal flip: all 8 orientations), (``channel_shuffle``) a random
    channel order, (``contrast``) ``x s + u (1 - s)`` with s ~ U[1 - contrast, 1], u ~ U[0, 1].

    ``rngs``: one numpy Generator, or one per patch.
    """
    out = np.empty_like(hr)
    for j, x in enumerate(hr):
        rng = photos.patch_rng(rngs, j)
        if dihedral:
            x = x[::-1] if rng.random() < 0.5 else x
            x = x.transpose(1, 0, 2) if rng.random() < 0.5 else x
        if channel_shuffle:
            x = x[..., rng.permutation(x.shape[-1])]
        if contrast:
            s = rng.uniform(1.0 - contrast, 1.0)
            x = x * s + rng.uniform() * (1.0 - s)
        out[j] = x
    return out


def load(split: str, batch_size: int, seed: int = 0, num_devices: int | None = None, *, patch_size: int = 24,
         scale: int = 4, downscale: int = 2, train_photos=None, train_downscales=None, dihedral: bool = False,
         channel_shuffle: bool = False, contrast: float = 0.0, num_examples: int | None = None,
         drop_remainder: bool = True, host_id=None, num_hosts=None) -> Dataset:
    """SR patch batches (see the module docstring and ``jaxvision.data.load``).

    Args:
      patch_size: LR patch side P (HR patches are P * scale).
      scale: upscaling factor (4 in SRGAN).
      downscale: area downscale of the photos before anything else (HR resolution).
      train_photos: 'train' only: ``photos.photo`` names (default ``TRAIN_PHOTOS``).
      train_downscales: 'train' only: the factors the training patches are cut at (default ``(downscale,)``).
      dihedral: 'train' only: random vertical flips and transposes as well (8 orientations).
      channel_shuffle: 'train' only: each patch's colour channels in a random order.
      contrast: 'train' only: the largest contrast reduction (0 off, at most 1).
      num_examples: patches per epoch (default 4096 train, 256 val/test).
    """
    check_choice("split", split, SPLITS)
    for name, v in (("patch_size", patch_size), ("scale", scale), ("downscale", downscale)):
        check_positive(name, v)
    if not 0.0 <= contrast <= 1.0:
        raise ValueError(f"contrast: expected a fraction in [0, 1], got {contrast}")
    n = (4096 if split == "train" else 256) if num_examples is None else num_examples
    check_positive("num_examples", n)
    hr_size = patch_size * scale
    if split == "train":
        pool = train_pool(hr_size, (downscale,) if train_downscales is None else tuple(train_downscales),
                          TRAIN_PHOTOS if train_photos is None else tuple(train_photos))
    else:
        pool = photos.images("test", downscale)

    def pairs(hr):
        return {"low_res": np.stack([bicubic_downscale(x, scale) for x in hr]), "image": hr}

    if split == "train":
        photos.random_crops(np.random.default_rng(0), pool, 1, hr_size)  # validate sizes early

        def make_batch(idx, rngs):
            gens = [rngs[j] for j in range(len(idx))]  # one stream per row: crop, then augmentations continue it
            hr = photos.random_crops(gens, pool, len(idx), hr_size, flip=True)
            return pairs(augment(gens, hr, dihedral, channel_shuffle, contrast))
    else:
        fixed = pairs(photos.random_crops(np.random.default_rng([seed, 5151]), pool, n, hr_size))

        def make_batch(idx, rngs):
            return {k: v[idx] for k, v in fixed.items()}
    info = {"name": "sr_photos", "split": split, "image_size": (hr_size, hr_size), "low_res_size": (patch_size,
            patch_size), "scale": scale, "channels": 3, "num_examples": n}
    return Dataset(n, make_batch, batch_size, seed=seed, shuffle=split == "train", drop_remainder=drop_remainder,
                   num_devices=num_devices, host_id=host_id, num_hosts=num_hosts, info=info)
