"""Anchor generators: torchvision-style anchor grids, SSD default boxes and YOLO cell offsets.

Anchors depend only on static configuration (feature-map sizes, strides, sizes, ratios), never on traced
data, so they are computed once on the host with NumPy in float32 -- mirroring torchvision's float32 operation
order, hence bit-identical values -- and returned as a constant ``jnp`` array. Calling them inside ``jit`` is
free (the result is folded into the program as a constant); vmap over a batch by broadcasting the result.

All outputs are ``[A, 4]`` xyxy boxes in absolute input-image pixels, ordered level by level, then row-major
over feature-map cells (y outer, x inner), then over the anchors of one cell -- the order torchvision uses and
the order a detection head's ``[B, H, W, num_anchors * k]`` output has after a reshape to ``[B, H*W*num_anchors, k]``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from jaxvision._checks import check_positive, pair


def _as_levels(name: str, values, num_levels: int | None = None) -> list[tuple[float, ...]]:
    """Normalize ``sizes`` / ``aspect_ratios`` to one tuple per level (torchvision's shorthand rules)."""
    if isinstance(values, (int, float)):
        values = (values,)
    values = list(values)
    if not values:
        raise ValueError(f"{name}: expected a non-empty sequence, got {values!r}")
    if not isinstance(values[0], (list, tuple)):
        # torchvision: sizes=(32, 64) means one size per level; aspect_ratios=(0.5, 1, 2) is shared by all levels.
        values = [(v,) for v in values] if num_levels is None else [tuple(values)] * num_levels
    out = []
    for lv in values:
        lv = tuple(float(v) for v in lv)
        if not lv:
            raise ValueError(f"{name}: expected a non-empty tuple per level, got {values!r}")
        check_positive(name, lv)
        out.append(lv)
    return out


def _int_pair(name: str, value) -> tuple[int, int]:
    """An int or (h, w) pair of positive integers; integral floats/NumPy ints are accepted, 7.5 is not."""
    if isinstance(value, (int, float, np.integer, np.floating)):
        value = (value, value)
    try:
        value = tuple(value)
    except TypeError:
        raise ValueError(f"{name}: expected an int or a pair (h, w), got {value!r}") from None
    if len(value) != 2 or any(not isinstance(v, (int, float, np.integer, np.floating)) or v != int(v)
                              for v in value):
        raise ValueError(f"{name}: expected an int or a pair (h, w) of integers, got {value!r}")
    return pair(name, tuple(int(v) for v in value))


def _sizes_2d(name: str, values, num_levels: int) -> list[tuple[int, int]]:
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    if len(values) != num_levels:
        raise ValueError(f"{name}: expected {num_levels} entries (one per feature map), got {len(values)}")
    return [_int_pair(name, v) for v in values]


def cell_anchors(sizes: Sequence[float], aspect_ratios: Sequence[float]) -> np.ndarray:
    """Zero-centred anchors of one feature-map cell (torchvision ``AnchorGenerator.generate_anchors``).

    Aspect ratio is height / width. Anchor (i, j) has width ``size_j / sqrt(r_i)`` and height
    ``size_j * sqrt(r_i)``; coordinates are rounded to integers (round half to even, like torch.round).

    Args:
      sizes: ``[S]`` positive anchor sizes (sqrt of the area) in pixels.
      aspect_ratios: ``[R]`` positive height/width ratios.

    Returns:
      float32 NumPy array ``[R * S, 4]`` xyxy, ratio-major (all sizes of ratio 0, then ratio 1, ...).
    """
    scales = np.asarray(sizes, np.float32)
    ratios = np.asarray(aspect_ratios, np.float32)
    check_positive("sizes", tuple(scales.tolist()))
    check_positive("aspect_ratios", tuple(ratios.tolist()))
    h_ratios = np.sqrt(ratios)
    w_ratios = np.float32(1) / h_ratios
    ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)  # [R*S]
    hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
    base = np.stack([-ws, -hs, ws, hs], axis=1) / np.float32(2)
    return np.round(base).astype(np.float32)


def anchor_strides(image_size, feature_sizes) -> list[tuple[int, int]]:
    """Per-level strides as torchvision's AnchorGenerator derives them: ``image_size // feature_size``.

    Args:
      image_size: int or (H, W) of the (padded) input batch.
      feature_sizes: one int or (h, w) per feature map.

    Returns:
      list of (stride_h, stride_w) ints.
    """
    h, w = _int_pair("image_size", image_size)
    levels = [_int_pair("feature_sizes", f) for f in (feature_sizes if isinstance(feature_sizes, (list, tuple)) else
                                                      [feature_sizes])]
    return [(h // fh, w // fw) for fh, fw in levels]


def num_anchors_per_location(sizes, aspect_ratios) -> list[int]:
    """Anchors per feature-map cell for each level of :func:`anchor_grid`: ``len(sizes[l]) * len(ratios[l])``."""
    sizes_l = _as_levels("sizes", sizes)
    ratios_l = _as_levels("aspect_ratios", aspect_ratios, len(sizes_l))
    return [len(s) * len(r) for s, r in zip(sizes_l, ratios_l)]


def anchor_grid(feature_sizes, strides, sizes, aspect_ratios, dtype=jnp.float32):
    """Anchors over all feature maps, as torchvision's ``AnchorGenerator`` (Faster R-CNN RPN, RetinaNet).

    Every cell (y, x) of level l gets the cell anchors of :func:`cell_anchors` shifted by
    ``(x * stride_w, y * stride_h)`` (cell top-left corner, no half-cell offset, as in torchvision).

    Args:
      feature_sizes: one entry per level, int or (h, w) feature-map size.
      strides: one entry per level, int or (stride_h, stride_w) in input pixels. torchvision uses
        ``image_size // feature_size``; :func:`anchor_strides` computes that.
      sizes: per level, a tuple of anchor sizes in pixels, e.g. ``((32,), (64,), (128,))``. A flat tuple
        ``(32, 64, 128)`` means one size per level (torchvision's shorthand).
      aspect_ratios: per level, a tuple of height/width ratios; a flat tuple is shared by every level.
      dtype: output dtype.

    Returns:
      ``[A, 4]`` xyxy anchors in absolute pixels, ``A = sum_l h_l * w_l * len(sizes[l]) * len(ratios[l])``.
    """
    sizes_l = _as_levels("sizes", sizes)
    ratios_l = _as_levels("aspect_ratios", aspect_ratios, len(sizes_l))
    if len(ratios_l) != len(sizes_l):
        raise ValueError(f"aspect_ratios: expected {len(sizes_l)} levels (as many as sizes), got {len(ratios_l)}")
    n = len(sizes_l)
    feats = _sizes_2d("feature_sizes", feature_sizes, n)
    strides_2d = _sizes_2d("strides", strides, n)
    out = []
    for (fh, fw), (sh, sw), s, r in zip(feats, strides_2d, sizes_l, ratios_l):
        base = cell_anchors(s, r)  # [K, 4]
        shift_y, shift_x = np.meshgrid(np.arange(fh) * sh, np.arange(fw) * sw, indexing="ij")
        shifts = np.stack([shift_x, shift_y, shift_x, shift_y], -1).reshape(-1, 1, 4).astype(np.float32)
        out.append((shifts + base[None]).reshape(-1, 4))  # [h*w*K, 4]
    return jnp.asarray(np.concatenate(out, 0), dtype)


def ssd_scales(num_levels: int, min_ratio: float = 0.15, max_ratio: float = 0.9) -> list[float]:
    """Default SSD scales (torchvision DefaultBoxGenerator): linear in [min_ratio, max_ratio] plus 1.0.

    Returns ``num_levels + 1`` floats (the last one only feeds the extra scale ``sqrt(s_k * s_{k+1})``).
    """
    if num_levels > 1:
        span = max_ratio - min_ratio
        return [min_ratio + span * k / (num_levels - 1.0) for k in range(num_levels)] + [1.0]
    return [min_ratio, max_ratio]


def ssd_wh_pairs(aspect_ratios, scales) -> list[np.ndarray]:
    """Per level, the relative (w, h) of the default boxes of one cell, float32 ``[2 + 2 * len(ratios), 2]``.

    Order: (s_k, s_k), (s'_k, s'_k) with ``s'_k = sqrt(s_k * s_{k+1})``, then (s_k sqrt(r), s_k / sqrt(r)) and
    its transpose for every ratio r (torchvision ``DefaultBoxGenerator._generate_wh_pairs``).
    """
    pairs = []
    for k, ratios in enumerate(aspect_ratios):
        s_k = scales[k]
        s_prime = math.sqrt(scales[k] * scales[k + 1])
        wh = [[s_k, s_k], [s_prime, s_prime]]
        for ar in ratios:
            sq = math.sqrt(ar)
            w, h = s_k * sq, s_k / sq
            wh += [[w, h], [h, w]]
        pairs.append(np.asarray(wh, np.float32))
    return pairs


def ssd_default_boxes(feature_sizes, image_size, aspect_ratios, min_ratio: float = 0.15, max_ratio: float = 0.9,
                      scales=None, steps=None, clip: bool = True, dtype=jnp.float32):
    """SSD default boxes with torchvision ``DefaultBoxGenerator`` semantics, in xyxy pixels.

    Per level k, each cell (i, j) gets ``2 + 2 * len(aspect_ratios[k])`` boxes centred at
    ``((j + 0.5) / x_f, (i + 0.5) / y_f)`` (relative coordinates) with ``x_f = W / steps[k]``,
    ``y_f = H / steps[k]`` when ``steps`` is given, else the feature-map size. Box sizes come from
    :func:`ssd_wh_pairs` (scale, extra scale ``sqrt(s_k s_{k+1})``, and each ratio both ways). With ``clip``
    the relative (w, h) -- not the corners -- are clamped to [0, 1], as torchvision does. The relative
    cx, cy, w, h are then converted to corners and multiplied by (W, H).

    Example: torchvision's ssd300_vgg16 is ``ssd_default_boxes([38, 19, 10, 5, 3, 1], 300,
    [[2], [2, 3], [2, 3], [2, 3], [2], [2]], scales=[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05],
    steps=[8, 16, 32, 64, 100, 300])`` (8732 boxes).

    Args:
      feature_sizes: one int or (h, w) per level.
      image_size: int or (H, W) of the input image.
      aspect_ratios: per level, a list of ratios (>= 1 by convention; each adds 2 boxes).
      min_ratio, max_ratio: scale range used when ``scales`` is None (see :func:`ssd_scales`).
      scales: optional ``num_levels + 1`` scales relative to the image size.
      steps: optional per-level steps in pixels.
      clip: clamp relative widths/heights to [0, 1].
      dtype: output dtype.

    Returns:
      ``[A, 4]`` xyxy default boxes in absolute pixels, ``A = sum_k h_k w_k (2 + 2 len(ratios_k))``.
    """
    if not isinstance(aspect_ratios, (list, tuple)) or any(not isinstance(rs, (list, tuple)) for rs in aspect_ratios):
        raise ValueError(f"aspect_ratios: expected one list of ratios per level, e.g. [[2], [2, 3]], "
                         f"got {aspect_ratios!r}")
    aspect_ratios = [tuple(float(r) for r in rs) for rs in aspect_ratios]
    for rs in aspect_ratios:
        check_positive("aspect_ratios", rs)
    n = len(aspect_ratios)
    if n == 0:
        raise ValueError("aspect_ratios: expected at least one level, got []")
    feats = _sizes_2d("feature_sizes", feature_sizes, n)
    h, w = _int_pair("image_size", image_size)
    if steps is not None:
        steps = list(steps)
        if len(steps) != n:
            raise ValueError(f"steps: expected {n} entries (one per level of aspect_ratios), got {len(steps)}")
        check_positive("steps", steps)
    if scales is None:
        if not 0 < min_ratio <= max_ratio:
            raise ValueError(f"min_ratio, max_ratio: expected 0 < min_ratio <= max_ratio, got {min_ratio}, {max_ratio}")
        scales = ssd_scales(n, min_ratio, max_ratio)
    else:
        scales = [float(s) for s in scales]
        if len(scales) != n + 1:
            raise ValueError(f"scales: expected {n + 1} entries (levels + 1), got {len(scales)}")
        check_positive("scales", scales)
    wh_levels = ssd_wh_pairs(aspect_ratios, scales)
    out = []
    for k, (fh, fw) in enumerate(feats):
        if steps is not None:
            x_f, y_f = np.float32(w / steps[k]), np.float32(h / steps[k])
        else:
            x_f, y_f = np.float32(fw), np.float32(fh)
        cx = (np.arange(fw, dtype=np.float32) + np.float32(0.5)) / x_f
        cy = (np.arange(fh, dtype=np.float32) + np.float32(0.5)) / y_f
        cy, cx = np.meshgrid(cy, cx, indexing="ij")
        wh = np.clip(wh_levels[k], 0, 1) if clip else wh_levels[k]  # [K, 2]
        centres = np.stack([cx, cy], -1).reshape(-1, 1, 2)  # [h*w, 1, 2]
        half = np.float32(0.5) * np.broadcast_to(wh[None], (fh * fw,) + wh.shape)  # [h*w, K, 2]
        scale = np.asarray([w, h], np.float32)
        boxes = np.concatenate([(centres - half) * scale, (centres + half) * scale], -1)  # [h*w, K, 4]
        out.append(boxes.reshape(-1, 4))
    return jnp.asarray(np.concatenate(out, 0), dtype)


def ssd_num_anchors_per_location(aspect_ratios) -> list[int]:
    """Default boxes per cell for each SSD level: ``2 + 2 * len(aspect_ratios[k])``."""
    return [2 + 2 * len(r) for r in aspect_ratios]


def yolo_grid(size, dtype=jnp.float32):
    """YOLO cell offsets: ``grid[i, j] = (j, i)``, the (x, y) index of the cell in row i, column j.

    A YOLO head predicts a box centre as ``((grid + sigmoid(t_xy)) / S) * image_size``; this is the ``grid``.

    Args:
      size: S (int) for an S x S grid, or (S_h, S_w).
      dtype: output dtype.

    Returns:
      ``[S_h, S_w, 2]`` array of (x, y) cell offsets.
    """
    sh, sw = _int_pair("size", size)
    ys, xs = jnp.meshgrid(jnp.arange(sh, dtype=dtype), jnp.arange(sw, dtype=dtype), indexing="ij")
    return jnp.stack([xs, ys], axis=-1)
