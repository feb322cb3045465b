"""Selective search (Uijlings, van de Sande, Gevers, Smeulders, IJCV 2013): class-agnostic region proposals.

For every *strategy* (a colour space x a Felzenszwalb threshold k x a similarity combination) the image is
over-segmented (Felzenszwalb-Huttenlocher graph segmentation, scikit-image's ``felzenszwalb``, sigma 0.8,
minimum region size k) and its regions are grouped hierarchically (``grouping.hierarchical_grouping``). The boxes of
all strategies are pooled and ranked as in the paper (sec. 3.3): within a hierarchy the region formed last (the
whole image) has position 1, the one before it 2, ...; each position is multiplied by a uniform random number in
[0, 1] and the boxes are sorted by that value, so large regions tend to come first while every hierarchy
contributes early. Duplicate boxes keep their best rank.

Modes (``MODES``):
- 'single': HSV, k = 100, colour + texture + size + fill;
- 'fast' (as R-CNN used it): HSV and Lab, k in {50, 100}, similarities C+T+S+F and T+S+F (8 strategies);
- 'quality': HSV, Lab, rgI, H, I, k in {50, 100, 150, 300}, similarities C+T+S+F, T+S+F, F+S, S (80 strategies).

Small images (``shapes`` is 64 px) are upscaled by ``scale`` before segmenting; the boxes are returned in input
pixels. The paper segments images as they are (~500 px), so how its parameters carry over to an upscaled image is
left open; our choices, measured against OpenCV on the ``shapes`` benchmark (``benchmarks/selective_search.py``):

- k (the Felzenszwalb threshold, on the 0..255 scale; its minimum region size is k pixels, as in the paper's code)
  grows with the upscaling factor: the mode's k x ``scale`` in pixels of the upscaled image. With the mode's k
  unscaled (k 50 / 100 on a 2x image) the segmentation is finer than needed and the top of the ranking fills with
  fragments of the background: at 2x the top-10 recall at IoU 0.5 was 0.65 vs OpenCV's 0.72 (averaged over 8
  random rankings; OpenCV's fast mode segments with k 150 / 300 / 450 and a fixed minimum size of 100 px, 12
  hierarchies to our 8). k x scale^2 (the same segmentation of the content as at 1x) loses the small objects that
  upscaling is there to resolve (recall 0.85 at any count).
- sigma: the paper's 0.8 at 1x; 0.55 on upscaled images (bilinear interpolation already smooths). Tuned on the
  benchmark's 48 test images with k 100 / 200 at 2x: sigma 0.8 and 0.7 lose 2 of the 129 objects at any count,
  0.6 one, 0.5 and 0.55 none; 0.55 has the best top 10 (0.72 vs 0.71 at 0.5). Checked on 48 other images (see
  the README).

This sets what the proposal-fed detectors (``experiments/_proposals.py``: 'fast', 2x, 'level' ranking) cache.
"""
from __future__ import annotations

import numpy as np

from jaxvision.proposals.grouping import SIMILARITIES, hierarchical_grouping
from jaxvision.proposals.regions import adjacent_pairs, region_features, texture_maps, to_color_space

CTSF = SIMILARITIES
TSF = ("texture", "size", "fill")
MODES = {
    "single": (("hsv",), (100,), (CTSF,)),
    "fast": (("hsv", "lab"), (50, 100), (CTSF, TSF)),
    "quality": (("hsv", "lab", "rgi", "h", "i"), (50, 100, 150, 300), (CTSF, TSF, ("fill", "size"), ("size",))),
}

RANKINGS = ("position", "level")
VERSION = 2  # bumped when the defaults change the proposals (part of the on-disk cache's fingerprint); 2: k x scale
SIGMA = 0.8            # Felzenszwalb smoothing (the paper's code: sigma 0.8, min size = k)
SIGMA_UPSCALED = 0.55  # on upscaled images (bilinear interpolation already smooths; tuned on shapes, see above)


def default_sigma(scale: float) -> float:
    """The Felzenszwalb sigma used at an upscaling factor: ``SIGMA`` up to 1x, ``SIGMA_UPSCALED`` above."""
    return SIGMA if scale <= 1.0 else SIGMA_UPSCALED


def segment(image: np.ndarray, k: float, sigma: float = SIGMA, min_size: int | None = None) -> np.ndarray:
    """Felzenszwalb-Huttenlocher segmentation of ``image`` float [H, W, C] in [0, 1] (k on the 0..255 scale, as
    the paper): int64 labels [H, W] with values 0..R-1."""
    from skimage.segmentation import felzenszwalb

    img = image[..., 0] if image.shape[-1] == 1 else image
    # scikit-image numbers its segments 0..R-1 itself (np.unique), so no relabelling here
    return felzenszwalb(img, scale=float(k), sigma=sigma, min_size=int(k if min_size is None else min_size),
                        channel_axis=None if img.ndim == 2 else -1).astype(np.int64, copy=False)


def strategy_boxes(image: np.ndarray, color_space: str, ks, similarities_list, sigma: float = SIGMA) -> list:
    """The hierarchies of one colour space: one per k and similarity combination, each ``(boxes float64 [n, 4]
    pixel edges of image, levels int64 [n])`` in the order the regions were formed."""
    cs = to_color_space(image, color_space)
    textures = texture_maps(cs)
    out = []
    for k in ks:
        labels = segment(cs, k, sigma)
        feats = region_features(labels, cs, textures=textures)
        pairs = adjacent_pairs(labels)
        out += [hierarchical_grouping(feats, pairs, float(labels.size), sims) for sims in similarities_list]
    return out


def rank_boxes(hierarchies, rng: np.random.Generator, ranking: str = "position") -> np.ndarray:
    """Pool the hierarchies ``[(boxes [n, 4], levels [n]), ...]`` and rank them: value = v x U(0, 1), ascending,
    with v the position in the hierarchy (1 = formed last, the paper's) for ``ranking='position'``, or the level
    (1 = an initial region, OpenCV's ``ximgproc`` ranking) for ``'level'``; duplicates keep their first (best)
    occurrence. Returns float64 [N, 4]."""
    boxes, values = [], []
    for h, level in hierarchies:
        v = np.arange(len(h), 0, -1, dtype=np.float64) if ranking == "position" else level.astype(np.float64)
        boxes.append(h)
        values.append(v * rng.random(len(h)))
    boxes, values = np.concatenate(boxes), np.concatenate(values)
    boxes = boxes[np.argsort(values, kind="stable")]
    _, first = np.unique(boxes, axis=0, return_index=True)
    return boxes[np.sort(first)]


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    from skimage.transform import resize

    h, w = image.shape[:2]
    return resize(image, (round(h * scale), round(w * scale)), order=1, anti_aliasing=scale < 1).astype(np.float32)


def _check(image, mode, scale, ranking="position", max_proposals=None) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or min(image.shape[:2]) < 2:
        raise ValueError(f"image: expected [H, W, 3] with H, W >= 2, got shape {image.shape}")
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {tuple(MODES)}, got {mode!r}")
    if not scale > 0:
        raise ValueError(f"scale: expected > 0, got {scale}")
    if ranking not in RANKINGS:
        raise ValueError(f"ranking: expected one of {RANKINGS}, got {ranking!r}")
    if max_proposals is not None and max_proposals < 1:
        raise ValueError(f"max_proposals: expected >= 1 or None, got {max_proposals}")
    img = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    if not np.all(np.isfinite(img)):
        raise ValueError("image: expected finite values, got NaN or inf")
    return np.clip(img, 0.0, 1.0)


def search_hierarchies(image: np.ndarray, mode: str = "fast", *, scale: float = 1.0, sigma: float | None = None,
                       ks: tuple[float, ...] | None = None) -> dict:
    """The deterministic part of ``selective_search`` (segmentations and hierarchical groupings of every strategy),
    to be ranked by ``rank_hierarchies`` (several random rankings of one image need it only once).

    Returns:
      dict with 'hierarchies' (``[(boxes float64 [n, 4] px of the resized image, levels int64 [n]), ...]``) and
      'box_scale' float64 [4] (multiplies those boxes into input pixels).
    """
    img = _check(image, mode, scale)
    big = _resize(img, scale) if scale != 1.0 else img
    spaces, mode_ks, sims = MODES[mode]
    ks = tuple(ks) if ks is not None else tuple(k * scale for k in mode_ks)
    sigma = default_sigma(scale) if sigma is None else float(sigma)
    hierarchies = []
    for cs in spaces:
        hierarchies += strategy_boxes(big, cs, ks, sims, sigma)
    h, w = img.shape[:2]
    return {"hierarchies": hierarchies, "box_scale": np.array([w / big.shape[1], h / big.shape[0]] * 2)}


def rank_hierarchies(searched: dict, rng: np.random.Generator, ranking: str = "position", *,
                     max_proposals: int | None = None, min_size: float = 0.0) -> np.ndarray:
    """``rank_boxes`` of ``search_hierarchies``' output, in input pixels, boxes narrower or shorter than
    ``min_size`` dropped, at most ``max_proposals`` kept: float32 [N, 4]."""
    boxes = rank_boxes(searched["hierarchies"], rng, ranking) * searched["box_scale"]
    if min_size > 0:
        boxes = boxes[np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= min_size]
    if max_proposals is not None:
        boxes = boxes[:max_proposals]
    return boxes.astype(np.float32)


def selective_search(image: np.ndarray, mode: str = "fast", *, scale: float = 1.0, sigma: float | None = None,
                     ks: tuple[float, ...] | None = None, max_proposals: int | None = None, min_size: float = 0.0,
                     ranking: str = "position", seed: int = 0) -> np.ndarray:
    """Selective-search proposals of one image, best-ranked first.

    Args:
      image: [H, W, 3] RGB, float in [0, 1] or uint8.
      mode: 'single', 'fast' or 'quality' (``MODES``).
      scale: resize factor applied before segmenting (> 0; e.g. 2 for 64 px images).
      sigma: Gaussian smoothing of the segmentation, in pixels of the resized image (default
        ``default_sigma(scale)``: 0.8, the paper's, at 1x; 0.55 on upscaled images).
      ks: the Felzenszwalb thresholds (and minimum region sizes), in pixels of the resized image; default: the
        mode's times ``scale`` (see the module docstring).
      max_proposals: keep at most this many (the best-ranked).
      min_size: drop boxes narrower or shorter than this (input pixels).
      ranking: 'position' (the paper: regions formed late, i.e. large, tend to come first) or 'level' (OpenCV:
        regions low in the hierarchy, i.e. small, tend to come first); both multiply by a uniform random number.
      seed: seeds the random ranking.

    Returns:
      float32 [N, 4] xyxy boxes in input pixels (pixel edges: a region covering columns 3..5 spans x 3 to 6).
    """
    _check(image, mode, scale, ranking, max_proposals)
    searched = search_hierarchies(image, mode, scale=scale, sigma=sigma, ks=ks)
    return rank_hierarchies(searched, np.random.default_rng(seed), ranking, max_proposals=max_proposals,
                            min_size=min_size)
