"""Region features and true adjacency of a segmentation, for selective search (Uijlings et al. 2013, sec. 3).

All functions take an integer label image ``labels [H, W]`` with values ``0..R-1`` (every value present, e.g. a
Felzenszwalb segmentation) and work on all regions at once (``np.bincount`` over ``label * bins + bin``).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

COLOR_BINS = 25     # per channel (paper: 25 bins, L1-normalised histogram)
TEXTURE_BINS = 10   # per orientation and channel (paper: 10 bins, 8 orientations of Gaussian derivatives, sigma 1)
ORIENTATIONS = 8
COLOR_SPACES = ("rgb", "hsv", "lab", "rgi", "h", "i")


def to_color_space(image: np.ndarray, name: str) -> np.ndarray:
    """``image`` float [H, W, 3] RGB in [0, 1] converted to a colour space of the paper, float32 [H, W, C] in [0, 1].

    'rgb', 'hsv', 'lab' (L/100, (a+128)/255, (b+128)/255), 'rgi' (normalised r, g and intensity), 'h' (hue only),
    'i' (intensity only).
    """
    from skimage import color

    if name not in COLOR_SPACES:
        raise ValueError(f"color_space: expected one of {COLOR_SPACES}, got {name!r}")
    image = np.asarray(image, np.float32)
    if name == "rgb":
        out = image
    elif name in ("hsv", "h"):
        out = color.rgb2hsv(image)
        out = out[..., :1] if name == "h" else out
    elif name == "lab":
        lab = color.rgb2lab(image)
        out = np.stack([lab[..., 0] / 100.0, (lab[..., 1] + 128.0) / 255.0, (lab[..., 2] + 128.0) / 255.0], -1)
    else:
        s = image.sum(-1, keepdims=True)
        i = s / 3.0
        if name == "i":
            out = i
        else:
            rg = np.where(s > 0, image[..., :2] / np.maximum(s, 1e-12), 1.0 / 3.0)
            out = np.concatenate([rg, i], -1)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _histograms(labels: np.ndarray, values: np.ndarray, num_regions: int, bins: int) -> np.ndarray:
    """Per-region histograms of every channel of ``values [H, W, K]`` in [0, 1]: float32 [R, K * bins], each row
    L1-normalised over all its K * bins entries (the paper's normalisation)."""
    k = values.shape[-1]
    b = np.minimum((values * bins).astype(np.int64), bins - 1)                # [H, W, K]
    idx = (labels[..., None].astype(np.int64) * k + np.arange(k)) * bins + b  # region, channel, bin
    h = np.bincount(idx.ravel(), minlength=num_regions * k * bins).reshape(num_regions, k * bins)
    h = h.astype(np.float32)
    return h / np.maximum(h.sum(1, keepdims=True), 1.0)


def texture_maps(image: np.ndarray) -> np.ndarray:
    """Gaussian derivative responses (sigma 1) in 8 orientations per channel: float32 [H, W, 8 * C] in [0, 1].

    Orientation ``o`` is the derivative along angle ``o * 45`` degrees, ``cos * d/dx + sin * d/dy``, keeping its
    positive part (opposite orientations are the two signs of one derivative); each map is divided by its maximum.
    """
    maps = []
    angles = np.arange(ORIENTATIONS) * (2 * np.pi / ORIENTATIONS)
    for c in range(image.shape[-1]):
        ch = image[..., c].astype(np.float32)
        gx = ndimage.gaussian_filter(ch, 1.0, order=(0, 1))
        gy = ndimage.gaussian_filter(ch, 1.0, order=(1, 0))
        for a in angles:
            r = np.maximum(np.cos(a) * gx + np.sin(a) * gy, 0.0)
            maps.append(r / max(float(r.max()), 1e-12))
    return np.stack(maps, -1).astype(np.float32)


def region_features(labels: np.ndarray, image: np.ndarray, num_regions: int | None = None,
                    textures: np.ndarray | None = None) -> dict:
    """Size, bounding box, colour and texture histograms of every region.

    Args:
      labels: int [H, W], values 0..R-1.
      image: float32 [H, W, C] in [0, 1], the colour space the histograms are taken in.
      num_regions: R (default ``labels.max() + 1``).
      textures: ``texture_maps(image)`` if already computed (several segmentations of one image share it).

    Returns:
      dict with 'size' float64 [R] (pixels), 'box' float64 [R, 4] (x0, y0, x1, y1) pixel edges (x1, y1 exclusive),
      'color' float32 [R, 25 C], 'texture' float32 [R, 80 C].
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape != image.shape[:2]:
        raise ValueError(f"labels: expected [H, W] matching image {image.shape[:2]}, got {labels.shape}")
    r = int(labels.max()) + 1 if num_regions is None else int(num_regions)
    flat = labels.ravel()
    size = np.bincount(flat, minlength=r).astype(np.float64)
    if np.any(size == 0):
        raise ValueError(f"labels: expected every value in 0..{r - 1} present, missing {np.flatnonzero(size == 0)[:5]}")
    box = np.array([[sl[1].start, sl[0].start, sl[1].stop, sl[0].stop]
                    for sl in ndimage.find_objects(labels.astype(np.int32) + 1, r)], np.float64)
    return {"size": size, "box": box, "color": _histograms(labels, image, r, COLOR_BINS),
            "texture": _histograms(labels, texture_maps(image) if textures is None else textures, r, TEXTURE_BINS)}


def adjacent_pairs(labels: np.ndarray) -> np.ndarray:
    """Pairs of regions that share a pixel edge (4-connectivity): int64 [P, 2], ``i < j``, unique, sorted."""
    labels = np.asarray(labels, np.int64)
    a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
    b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
    d = a != b
    lo, hi = np.minimum(a[d], b[d]), np.maximum(a[d], b[d])
    r = int(labels.max()) + 1
    keys = np.unique(lo * r + hi)
    return np.stack([keys // r, keys % r], 1)
