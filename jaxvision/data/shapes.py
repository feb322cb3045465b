"""``shapes``: procedural detection images generated from a seed (numpy + scikit-image rasterization).

Every image holds 1..``max_objects`` filled shapes of six classes (circle, square, triangle, diamond, pentagon,
star) in eight jittered colours and a range of sizes, over a random colour gradient (or a crop of a bundled
scikit-image photo with ``backgrounds=True``), with clutter (thin random lines and dots) and pixel noise. Objects are
drawn in order, so later ones partially occlude earlier ones; a placement is rejected if it would hide more than half
of an earlier object. Image ``k`` of a split comes from ``numpy.random.default_rng([data_seed, split_code, k])``
with split codes train=1, val=2, test=3, so the three splits are disjoint random streams (``seed`` only
shuffles); ``backgrounds`` of train use the training photos, those of val/test the test photos
(``jaxvision.data.photos``).

Targets, per object (padded to ``max_boxes`` with ``mask=False``, label -1):
- ``boxes``: the full (amodal) extent of the shape, xyxy in continuous pixel coordinates.
- ``labels``: class index into ``CLASS_NAMES``.
- ``landmarks``: ``NUM_LANDMARKS = 6`` points (x, y) in px: index 0 is the centre, then the vertices clockwise from
  the top-most (square: top-left first; circle: top, right, bottom, left). ``landmarks_mask`` marks the points a
  class defines (circle 5, square 5, triangle 4, diamond 5, pentagon 6, star 6: its 5 outer tips).

Shapes lie fully inside the image. Generated splits are cached in memory per option set.
"""
from __future__ import annotations

import functools

import numpy as np
from skimage.draw import disk, line, polygon

from jaxvision._checks import check_choice, check_positive
from jaxvision.data.base import Dataset

CLASS_NAMES = ("circle", "square", "triangle", "diamond", "pentagon", "star")
NUM_LANDMARKS = 6
COLORS = np.array([[0.9, 0.1, 0.1], [0.1, 0.8, 0.1], [0.15, 0.3, 0.95], [0.95, 0.9, 0.1],
                   [0.9, 0.1, 0.9], [0.1, 0.9, 0.9], [1.0, 0.55, 0.0], [0.97, 0.97, 0.97]], np.float32)
SPLIT_CODES = {"train": 1, "val": 2, "test": 3}
DEFAULT_NUM_EXAMPLES = {"train": 2048, "val": 256, "test": 256}


def _regular(n: int, cx: float, cy: float, r: float, theta: float) -> np.ndarray:
    """n vertices [n, 2] (x, y), the first at angle ``theta`` from straight up, clockwise on screen (y down)."""
    a = theta - np.pi / 2 + 2 * np.pi * np.arange(n) / n
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], -1)


def _shape_geometry(cls: int, cx: float, cy: float, r: float, rng: np.random.Generator):
    """Outline polygon [V, 2] (or None for a circle), landmarks [L, 2], landmark mask [L], box [4]."""
    lm = np.zeros((NUM_LANDMARKS, 2), np.float32)
    lm_mask = np.zeros(NUM_LANDMARKS, bool)
    name = CLASS_NAMES[cls]
    if name == "circle":
        pts, outline = _regular(4, cx, cy, r, 0.0), None
        box = [cx - r, cy - r, cx + r, cy + r]
    elif name == "square":
        h = r / np.sqrt(2)
        pts = np.array([[cx - h, cy - h], [cx + h, cy - h], [cx + h, cy + h], [cx - h, cy + h]])
        outline = pts
    elif name == "diamond":
        w = r * rng.uniform(0.5, 0.8)
        pts = np.array([[cx, cy - r], [cx + w, cy], [cx, cy + r], [cx - w, cy]])
        outline = pts
    elif name in ("triangle", "pentagon"):
        n = 3 if name == "triangle" else 5
        pts = _regular(n, cx, cy, r, rng.uniform(-np.pi / n, np.pi / n))
        outline = pts
    else:  # star: 5 outer tips interleaved with inner vertices at 0.45 r
        theta = rng.uniform(-np.pi / 5, np.pi / 5)
        pts = _regular(5, cx, cy, r, theta)
        inner = _regular(5, cx, cy, 0.45 * r, theta + np.pi / 5)
        outline = np.stack([pts, inner], 1).reshape(10, 2)
    if outline is not None:
        box = [outline[:, 0].min(), outline[:, 1].min(), outline[:, 0].max(), outline[:, 1].max()]
    lm[0] = (cx, cy) if name != "triangle" else pts.mean(0)
    lm[1:1 + len(pts)] = pts
    lm_mask[:1 + len(pts)] = True
    return outline, lm, lm_mask, np.asarray(box, np.float32)


def _rasterize(outline, cx, cy, r, size):
    """Boolean mask [size, size] of the pixels whose centres lie inside the shape (pixel (i, j) centre (j+.5, i+.5))."""
    m = np.zeros((size, size), bool)
    if outline is None:
        rr, cc = disk((cy - 0.5, cx - 0.5), r, shape=(size, size))
    else:
        rr, cc = polygon(outline[:, 1] - 0.5, outline[:, 0] - 0.5, shape=(size, size))
    m[rr, cc] = True
    return m


def _background(rng, size, photo_pool):
    if photo_pool:
        img = photo_pool[rng.integers(len(photo_pool))]
        y, x = rng.integers(0, img.shape[0] - size + 1), rng.integers(0, img.shape[1] - size + 1)
        return np.array(img[y:y + size, x:x + size]) * rng.uniform(0.5, 0.9)
    c0, c1 = rng.uniform(0.0, 0.6, 3), rng.uniform(0.0, 0.6, 3)
    t = np.linspace(0, 1, size, dtype=np.float32)
    ramp = t[:, None] if rng.random() < 0.5 else t[None, :]
    return (c0 + (c1 - c0) * ramp[..., None]).astype(np.float32) * np.ones((size, size, 1), np.float32)


def _clutter(rng, img):
    size = img.shape[0]
    for _ in range(rng.integers(0, 7)):
        y0, x0, y1, x1 = rng.integers(0, size, 4)
        rr, cc = line(y0, x0, y1, x1)
        img[rr, cc] = rng.uniform(0, 1, 3)
    for _ in range(rng.integers(0, 10)):  # specks of 1-3 px
        y, x = rng.integers(0, size, 2)
        h, w = rng.integers(1, 4, 2)
        img[y:y + h, x:x + w] = rng.uniform(0, 1, 3)


def render(rng: np.random.Generator, image_size: int = 64, max_objects: int = 4, single_object: bool = False,
           photo_pool=None, clutter: bool = True, noise: float = 0.02):
    """One image and its objects.

    Returns:
      image float32 [S, S, 3] in [0, 1]; boxes float32 [n, 4] xyxy px; labels int32 [n]; landmarks float32
      [n, L, 2] (x, y) px; landmarks_mask bool [n, L].
    """
    s = image_size
    img = _background(rng, s, photo_pool)
    if clutter:
        _clutter(rng, img)
    owner = np.full((s, s), -1, np.int64)
    n_want = 1 if single_object else int(rng.integers(1, max_objects + 1))
    rmin, rmax = (0.15 * s, 0.4 * s) if single_object else (0.07 * s, 0.22 * s)
    objs, areas = [], []
    for _ in range(20 * n_want):
        if len(objs) == n_want:
            break
        r = rng.uniform(rmin, rmax)
        cx, cy = rng.uniform(r + 0.5, s - r - 0.5, 2)
        cls = int(rng.integers(len(CLASS_NAMES)))
        outline, lm, lm_mask, box = _shape_geometry(cls, cx, cy, r, rng)
        m = _rasterize(outline, cx, cy, r, s)
        area = int(m.sum())
        if area < 4:
            continue
        if objs:  # every earlier object must keep at least half of its pixels visible
            covered = np.bincount(owner[m] + 1, minlength=len(objs) + 1)[1:]
            visible = np.bincount(owner.ravel() + 1, minlength=len(objs) + 1)[1:]
            if np.any(visible - covered < 0.5 * np.asarray(areas)):
                continue
        color = COLORS[rng.integers(len(COLORS))] + rng.uniform(-0.08, 0.08, 3)
        bg = img[m].mean(0)
        if np.abs(color - bg).sum() < 0.5:  # too close to what is underneath: take the opposite colour
            color = 1.0 - bg
        img[m] = np.clip(color, 0, 1)
        owner[m] = len(objs)
        objs.append((box, cls, lm, lm_mask))
        areas.append(area)
    if noise:
        img = img + noise * rng.standard_normal(img.shape)
    img = np.clip(img, 0.0, 1.0).astype(np.float32)
    boxes = np.stack([o[0] for o in objs]).astype(np.float32)
    labels = np.array([o[1] for o in objs], np.int32)
    lms = np.stack([o[2] for o in objs]).astype(np.float32)
    lm_masks = np.stack([o[3] for o in objs])
    return img, boxes, labels, lms, lm_masks


@functools.lru_cache(maxsize=16)
def generate(split: str, seed: int, num_examples: int, image_size: int, max_boxes: int, max_objects: int,
             single_object: bool, backgrounds: bool, clutter: bool = True, noise: float = 0.02) -> dict:
    """A whole split as padded arrays (cached): image uint8 [N, S, S, 3] plus the target arrays of the batch format."""
    pool = None
    if backgrounds:
        from jaxvision.data import photos

        pool = photos.images("train" if split == "train" else "test", downscale=max(1, 256 // image_size))
    n, L = num_examples, NUM_LANDMARKS
    out = {"image": np.zeros((n, image_size, image_size, 3), np.uint8),
           "boxes": np.zeros((n, max_boxes, 4), np.float32), "labels": np.full((n, max_boxes), -1, np.int32),
           "mask": np.zeros((n, max_boxes), bool), "landmarks": np.zeros((n, max_boxes, L, 2), np.float32),
           "landmarks_mask": np.zeros((n, max_boxes, L), bool)}
    for k in range(n):
        rng = np.random.default_rng([seed & 0xFFFFFFFF, SPLIT_CODES[split], k])
        img, boxes, labels, lms, lm_masks = render(rng, image_size, max_objects, single_object, pool, clutter, noise)
        j = len(labels)
        out["image"][k] = np.round(img * 255)
        out["boxes"][k, :j], out["labels"][k, :j], out["mask"][k, :j] = boxes, labels, True
        out["landmarks"][k, :j], out["landmarks_mask"][k, :j] = lms, lm_masks
    for v in out.values():
        v.setflags(write=False)
    return out


def load(split: str, batch_size: int, seed: int = 0, num_devices: int | None = None, *, image_size: int = 64,
         max_boxes: int | None = None, max_objects: int | None = None, single_object: bool = False,
         backgrounds: bool = False, clutter: bool = True, noise: float = 0.02, num_examples: int | None = None,
         data_seed: int = 0, shuffle: bool | None = None, drop_remainder: bool = True, host_id=None,
         num_hosts=None) -> Dataset:
    """Detection batches (see the module docstring and ``jaxvision.data.load``).

    Args:
      split: 'train', 'val' or 'test'.
      image_size: S, images are [S, S, 3]; at least 16.
      max_boxes: padded object count per image (default 8, or 1 with ``single_object``).
      max_objects: most objects drawn per image (default min(max_boxes, 4)).
      single_object: exactly one larger object per image (localization / landmarks).
      backgrounds: crops of bundled scikit-image photos instead of colour gradients.
      num_examples: images in the split (default 2048 train, 256 val/test).
      data_seed: seeds the images themselves (``seed`` only seeds the epoch order).
    """
    check_choice("split", split, tuple(SPLIT_CODES))
    if image_size < 16:
        raise ValueError(f"image_size: expected >= 16, got {image_size}")
    max_boxes = (1 if single_object else 8) if max_boxes is None else max_boxes
    check_positive("max_boxes", max_boxes)
    max_objects = min(max_boxes, 4) if max_objects is None else max_objects
    if not 1 <= max_objects <= max_boxes:
        raise ValueError(f"max_objects: expected in [1, max_boxes={max_boxes}], got {max_objects}")
    n = DEFAULT_NUM_EXAMPLES[split] if num_examples is None else num_examples
    check_positive("num_examples", n)
    data = generate(split, data_seed, n, image_size, max_boxes, max_objects, single_object, backgrounds, clutter, noise)

    def make_batch(idx, rngs):
        b = {k: v[idx] for k, v in data.items()}
        b["image"] = b["image"].astype(np.float32) / 255.0
        return b

    info = {"name": "shapes", "split": split, "num_classes": len(CLASS_NAMES), "class_names": CLASS_NAMES,
            "image_size": (image_size, image_size), "channels": 3, "max_boxes": max_boxes,
            "num_landmarks": NUM_LANDMARKS, "num_examples": n}
    return Dataset(n, make_batch, batch_size, seed=seed, shuffle=(split == "train") if shuffle is None else shuffle,
                   drop_remainder=drop_remainder, num_devices=num_devices, host_id=host_id, num_hosts=num_hosts,
                   info=info)
