"""SSD-style detection augmentation, worker-side numpy/OpenCV ops on TFDS-format examples with exact box transforms.

An example is ``{'image': uint8 [H, W, 3], 'objects': {'bbox': float32 [N, 4] normalized [ymin, xmin, ymax, xmax],
'label': [N], ...per-object arrays}}`` (what ``tfds.data_source``, ``coco_json`` and ``voc_xml`` yield); the ops
return a new example of the same format, so ``convert_detection`` resizes it afterwards. As in SSD (Liu et al.
2016) and torchvision's detection references:

- ``photometric_distort``: random brightness (+-32), contrast (x[0.5, 1.5], before or after the rest), saturation
  (x[0.5, 1.5]) and hue (+-18 degrees), each with probability 1/2;
- ``iou_crop``: a random crop (each side 0.3-1 of the image, aspect ratio 0.5-2) whose IoU with some object is at
  least a minimum drawn from (none, 0.1, 0.3, 0.5, 0.7, 0.9) or no crop at all; objects whose centre falls inside
  are kept, clipped to the crop: ``x' = clip(x - x0, 0, w_crop)`` in pixels;
- ``hflip``: with probability 1/2, ``x' = W - x`` (xmin and xmax swap).

``SSDAugment(size)(example, rng)`` crops, resizes to ``size``, flips and distorts the colours (the last two on the
smaller image); ``rng`` is a ``numpy.random.Generator`` (the
``Dataset``'s per-example generator, a function of (seed, epoch, position)). ``load`` builds detection batches with
``jaxvision.data.detection_rows.DetectionBatches``, which applies the same operations, in the same order and with
the same random draws, to a whole batch in place (bit for bit these functions' results).
"""
from __future__ import annotations

import numpy as np

MIN_IOUS = (None, 0.1, 0.3, 0.5, 0.7, 0.9, "nocrop")


def _objects_subset(objects: dict, keep: np.ndarray) -> dict:
    out = {}
    for k, v in objects.items():
        a = np.asarray(v)
        out[k] = a[keep] if a.ndim >= 1 and len(a) == len(keep) else a
    out.pop("area", None)  # the annotation area no longer applies to a cropped box (box area is used instead)
    return out


def _lut(fn) -> np.ndarray:
    return np.clip(np.round(fn(np.arange(256, dtype=np.float64))), 0, 255).astype(np.uint8)


def _lut_all_channels(img: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``lut[img]`` for a contiguous uint8 [H, W, C] image: OpenCV's ``LUT`` on the [H, W * C] single-channel view
    (the same values, about 1.5x faster than on the 3-channel image)."""
    import cv2

    h, w = img.shape[:2]
    return cv2.LUT(img.reshape(h, -1), lut).reshape(img.shape)


def photometric_distort(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 [H, W, 3] RGB -> uint8 [H, W, 3]: SSD's random brightness, contrast, saturation and hue.

    Each step is a uint8 lookup table (OpenCV ``LUT``; saturation and hue on OpenCV's uint8 HSV, hue in 2-degree
    units), rounding to uint8 between steps as the images are stored.
    """
    import cv2

    img = np.ascontiguousarray(image, np.uint8)
    contrast_first = rng.random() < 0.5
    delta = rng.uniform(-32, 32) if rng.random() < 0.5 else 0.0
    contrast = rng.uniform(0.5, 1.5) if rng.random() < 0.5 else None
    first = contrast if contrast is not None and contrast_first else 1.0
    if delta or first != 1.0:
        img = _lut_all_channels(img, _lut(lambda v: (v + delta) * first))
    do_sat, sat = rng.random() < 0.5, rng.uniform(0.5, 1.5)
    do_hue, hue = rng.random() < 0.5, rng.uniform(-18, 18)
    if do_sat or do_hue:
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)  # H in [0, 180): 2 degrees per unit
        h_lut = (np.round(np.arange(256) + (hue / 2 if do_hue else 0)) % 180).astype(np.uint8)
        s_lut = _lut(lambda v: v * (sat if do_sat else 1.0))
        hsv = cv2.LUT(hsv, np.stack([h_lut, s_lut, np.arange(256, dtype=np.uint8)], -1)[None])
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if contrast is not None and not contrast_first:
        img = _lut_all_channels(img, _lut(lambda v: v * contrast))
    return img


def choose_crop(boxes_px: np.ndarray, h: int, w: int, rng: np.random.Generator, min_scale: float = 0.3,
                aspect: tuple[float, float] = (0.5, 2.0), max_trials: int = 40,
                max_rounds: int = 20) -> tuple[int, int, int, int] | None:
    """An IoU-constrained crop ``(x0, y0, x1, y1)`` (integer pixels) of an ``h x w`` image with xyxy pixel boxes
    ``[N, 4]``, or None for no crop (drawn as one of the options, or nothing found in ``max_rounds``).

    Each round draws a minimum IoU from ``MIN_IOUS`` and ``max_trials`` candidate crops at once (sides
    ``min_scale``-1 of the image, aspect ratio within ``aspect``); the first candidate that contains the centre of
    some box and has IoU >= the minimum with one of those boxes is the crop. A round's draws: ``rng.integers(7)``,
    then ``rng.uniform(min_scale, 1, (T, 2))`` (the sides: x, y), ``rng.random(T)`` (x position fractions) and
    ``rng.random(T)`` (y), drawn as one ``rng.random(4 T)`` (the same numbers).
    """
    boxes_px = np.asarray(boxes_px, np.float64).reshape(-1, 4)
    if len(boxes_px) == 0:
        return None
    t = int(max_trials)
    box = boxes_px.T[:, :, None]  # [4 (x0, y0, x1, y1), N, 1]: the candidates run along the last axis
    lo_box, hi_box = box[:2], box[2:]
    centers = (lo_box + hi_box) / 2
    area = (box[2] - box[0]) * (box[3] - box[1])  # [N, 1]
    size, span = np.array([[w], [h]], np.float64), np.array([[w + 1], [h + 1]], np.int64)
    positive = min_scale * min(w, h) >= 2  # every side drawn is >= 1 px: no need to check
    nonnegative = 0 <= min_scale <= 1  # sides <= the image: position fractions x (span - side) >= 0
    for _ in range(max_rounds):
        min_iou = MIN_IOUS[rng.integers(len(MIN_IOUS))]
        if min_iou == "nocrop":
            return None
        u = rng.random(4 * t)  # == uniform's 2 T (as min_scale + (1 - min_scale) u), then 2 x random(T)
        sides = ((min_scale + (1.0 - min_scale) * u[:2 * t].reshape(t, 2).T) * size).astype(np.int64)  # [2, T]
        lo = u[2 * t:].reshape(2, t) * (span - sides)  # [2, T]: x0, y0 (>= 0 when min_scale <= 1: trunc = floor)
        lo = (lo if nonnegative else np.floor(lo)).astype(np.int64)
        hi = lo + sides
        cw, ch = sides[0], sides[1]
        if positive:
            ratio = cw / ch
            ok = (ratio >= aspect[0]) & (ratio <= aspect[1])
        else:
            ratio = cw / np.maximum(ch, 1)
            ok = (cw > 0) & (ch > 0) & (ratio >= aspect[0]) & (ratio <= aspect[1])
        lo3, hi3 = lo[:, None], hi[:, None]  # [2, 1, T] (compared with float64 boxes as float64)
        inside = ((centers > lo3) & (centers < hi3)).all(0)  # [N, T]
        if min_iou is not None:  # (any IoU is >= -1, the threshold of None)
            inter = np.maximum(np.minimum(hi3, hi_box) - np.maximum(lo3, lo_box), 0).prod(0)
            inside &= inter / np.maximum(cw * ch + area - inter, 1e-12) >= float(min_iou)
        good = ok & inside.any(0)
        if good.any():
            k = int(np.argmax(good))
            return int(lo[0, k]), int(lo[1, k]), int(hi[0, k]), int(hi[1, k])
    return None


def pixel_boxes(bbox: np.ndarray, h, w) -> np.ndarray:
    """Normalized [ymin, xmin, ymax, xmax] ``[..., 4]`` -> float64 xyxy pixels of an ``h x w`` image (``h``, ``w``
    numbers, or arrays broadcasting against ``bbox[..., 0]``: one image size per row of a batch)."""
    bbox = np.asarray(bbox, np.float64)
    return np.stack([bbox[..., 1] * w, bbox[..., 0] * h, bbox[..., 3] * w, bbox[..., 2] * h], -1)


def crop_boxes(px: np.ndarray, crop) -> tuple[np.ndarray, np.ndarray]:
    """xyxy pixel boxes ``px`` [..., 4] and a crop ``(x0, y0, x1, y1)`` (numbers, or arrays broadcasting against
    ``px[..., 0]``: one crop per row of a batch) -> (``inside`` bool [...]: the boxes whose centre lies inside,
    every box's normalized [ymin, xmin, ymax, xmax] float32 [..., 4] in the crop, clipped to it)."""
    x0, y0, x1, y1 = crop
    cx, cy = (px[..., 0] + px[..., 2]) / 2, (px[..., 1] + px[..., 3]) / 2
    inside = (cx > x0) & (cx < x1) & (cy > y0) & (cy < y1)
    cw, ch = x1 - x0, y1 - y0
    normalized = np.stack([np.clip(px[..., 1] - y0, 0, ch) / ch, np.clip(px[..., 0] - x0, 0, cw) / cw,
                           np.clip(px[..., 3] - y0, 0, ch) / ch, np.clip(px[..., 2] - x0, 0, cw) / cw], -1)
    return inside, normalized.astype(np.float32)


def iou_crop(example: dict, rng: np.random.Generator, **options) -> dict:
    """SSD's IoU-constrained random crop of a TFDS-format example (see the module docstring and ``choose_crop``)."""
    image = np.asarray(example["image"])
    h, w = image.shape[:2]
    px = pixel_boxes(np.asarray(example["objects"]["bbox"], np.float64).reshape(-1, 4), h, w)
    crop = choose_crop(px, h, w, rng, **options)
    if crop is None:
        return example
    x0, y0, x1, y1 = crop
    keep, bbox = crop_boxes(px, crop)
    objects = _objects_subset(example["objects"], keep)
    objects["bbox"] = bbox[keep]
    return {**example, "image": image[y0:y1, x0:x1], "objects": objects}


def flip_boxes(bbox: np.ndarray) -> np.ndarray:
    """Normalized [ymin, xmin, ymax, xmax] ``[..., 4]`` of an image mirrored left-right: ``x' = 1 - x``
    (float32)."""
    bbox = np.asarray(bbox, np.float32)
    return np.stack([bbox[..., 0], 1 - bbox[..., 3], bbox[..., 2], 1 - bbox[..., 1]], -1)


def hflip(example: dict, rng: np.random.Generator, p: float = 0.5) -> dict:
    """Mirror the image and its boxes left-right with probability ``p``: normalized ``x' = 1 - x``."""
    if rng.random() >= p:
        return example
    flipped = flip_boxes(np.asarray(example["objects"]["bbox"], np.float32).reshape(-1, 4))
    import cv2

    image = np.asarray(example["image"])
    image = cv2.flip(np.ascontiguousarray(image), 1).reshape(image.shape)
    return {**example, "image": image, "objects": {**example["objects"], "bbox": flipped}}


def opencv_view(image: np.ndarray) -> np.ndarray:
    """``image`` [H, W, (C)] itself if OpenCV reads it without a copy (rows at a positive stride, each row's pixels
    and channels contiguous, e.g. a crop view of a decoded image), else a contiguous copy (the same pixels)."""
    image = np.asarray(image)
    item = image.itemsize
    inner = (image.shape[2] * item, item) if image.ndim == 3 else (item,)
    if image.ndim in (2, 3) and image.strides[1:] == inner and image.strides[0] >= image.shape[1] * inner[0] > 0:
        return image
    return np.ascontiguousarray(image)


def resize_image(example: dict, size: int) -> dict:
    """The example's image resized to ``size x size`` (OpenCV bilinear, uint8); normalized boxes are unchanged."""
    import cv2

    image = np.asarray(example["image"])
    if image.shape[:2] == (size, size):
        return example
    out = cv2.resize(opencv_view(image), (size, size), interpolation=cv2.INTER_LINEAR)
    return {**example, "image": out.reshape(size, size, *image.shape[2:])}


class SSDAugment:
    """``(example, rng) -> example``: IoU-constrained crop, resize to ``size`` if given, horizontal flip,
    photometric distortion (flip and colours on the network's pixels only). Picklable (worker processes)."""

    def __init__(self, size: int | None = None, photometric: bool = True, crop: bool = True, flip: bool = True):
        self.size, self.photometric, self.crop, self.flip = size, photometric, crop, flip

    def __call__(self, example: dict, rng: np.random.Generator) -> dict:
        if self.crop:
            example = iou_crop(example, rng)
        if self.size:
            example = resize_image(example, self.size)
        if self.flip:
            example = hflip(example, rng)
        if self.photometric:
            example = {**example, "image": photometric_distort(example["image"], rng)}
        return example
