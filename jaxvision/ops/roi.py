"""RoI pooling and RoI align on channels-last features, torchvision.ops semantics, static shapes.

Both ops follow one plan. Every output bin reads a static number of feature rows ``a`` and columns ``b``, each
with a weight (roi_align: bilinear weights of its sampling points; roi_pool: a 0/1 window mask). Row and column
lists are built per RoI and bin with separable, cheap ``[K, P, S]`` arithmetic; then a gather from the
features reshaped ``[N * H * W, C]`` (contiguous channel rows, so every gathered element is a C-vector read)
feeds a weighted sum (align) or a masked max (pool). On the CPU the gather runs over blocks of a few RoIs
(``lax.map``), so the gathered ``[k, oh, A, ow, B, C]`` block stays in cache instead of a K-sized tensor going
through memory; on accelerators (``lax.platform_dependent``) all RoIs go at once, since there every loop trip
costs kernel launches and the compiler fuses the gather into the reduction.
Gradients w.r.t. the features are the scatter-add of the same weights, i.e. torchvision's backward.

Arithmetic follows torchvision's float32 C++ step by step (same evaluation order, std::round, true IEEE
divisions, see ``_div``), so bin edges and sample positions land on the same side of every integer.

Boxes are ``[K, 4]`` xyxy in input-image pixels (continuous coordinates, no +1); ``spatial_scale`` maps them
to feature pixels (e.g. 1/16 for a stride-16 feature map). ``box_indices[k]`` picks the image of box ``k``
(values outside ``[0, N)`` are clamped: they cannot be checked at trace time).

Static-shape bounds (the only place we can differ from torchvision, documented per function):

* ``roi_align`` with adaptive ``sampling_ratio <= 0`` samples ``ceil(roi_h / oh) x ceil(roi_w / ow)`` points
  per bin, a data-dependent number. Every block of RoIs picks (``lax.switch``) the smallest static grid among
  1, 2, 3, 4, 6, 8, 12, ... points per axis that covers its boxes and masks the unused points, up to the upper
  bound ``max_sampling_ratio``; the result is exact whenever ``ceil(roi_h / oh) <= max_sampling_ratio`` (same
  for w). The default bound ``ceil(H / oh)`` (resp. ``ceil(W / ow)``) covers every box lying inside the image
  (``roi_h <= H`` in feature pixels). Larger boxes use the bound (still a mean of evenly spread samples).
* ``roi_pool`` reads a static window of ``max_bin_size`` rows / columns per bin. The default
  ``min(H, ceil((H + 1) / oh) + 1)`` covers every box inside the image; pass ``max(H, W)`` for any box.
"""
from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax

from jaxvision._checks import check_last_dim, check_rank, pair

_CHUNK = 4  # RoIs per sequential block on CPU (see _chunked); 2-4 measured best on a 2-core CPU
ACCEL_CHUNK = None  # RoIs per block on GPU/TPU; None: as many as ACCEL_BLOCK_ELEMENTS allows
ACCEL_BLOCK_ELEMENTS = 2**30  # gathered values per accelerator block (fusions index with 32-bit integers)
_GRID_LEVELS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)  # static sample grids tried by adaptive roi_align


def _check_inputs(features, boxes, box_indices, output_size):
    check_rank("features", features, 4, "[N, H, W, C]")
    check_rank("boxes", boxes, 2, "[K, 4]")
    check_last_dim("boxes", boxes, 4)
    check_rank("box_indices", box_indices, 1, "[K]")
    if box_indices.shape[0] != boxes.shape[0]:
        raise ValueError(
            f"box_indices: expected length K = {boxes.shape[0]} (boxes' first dim), got shape {box_indices.shape}"
        )
    if not jnp.issubdtype(box_indices.dtype, jnp.integer):
        raise ValueError(f"box_indices: expected an integer dtype, got {box_indices.dtype}")
    _, h, w, _ = features.shape
    if h <= 0 or w <= 0:
        raise ValueError(f"features: expected H, W > 0, got shape {features.shape}")
    return pair("output_size", output_size)


def _round_half_away(x):
    """std::round: halves away from zero (jnp.round rounds halves to even)."""
    a = jnp.abs(x)
    fa = jnp.floor(a)
    return jnp.sign(x) * (fa + (a - fa >= 0.5))


def _div(x, d):
    """``x / d`` as a correctly rounded IEEE division, like torchvision's C++ (d: int or array).

    XLA:CPU turns a division by a broadcast scalar into a multiplication by its rounded reciprocal (about half of
    ``k / 7`` come out one ulp off), which moves ``ceil((p + 1) * roi / n)`` across integers. Making the divisor a
    data-dependent array of ``x``'s shape (a ``where`` XLA cannot fold) keeps a true element-wise division.
    """
    return x / jnp.where(jnp.isnan(x), jnp.ones((), x.dtype), jnp.asarray(d, x.dtype))


def _bin_indices(features, box_indices, rows, cols):
    """Flat row indices into ``features.reshape(N * H * W, C)``: ``[K, P, A, Q, B]`` int32."""
    _, h, w, _ = features.shape
    base = box_indices.astype(jnp.int32)[:, None, None, None, None] * (h * w)  # [K, 1, 1, 1, 1]
    return base + rows[:, :, :, None, None] * w + cols[:, None, None, :, :]  # [K, P, A, Q, B]


def _blocks(fn, per_roi: int, *xs):
    """``fn(*xs)`` over blocks of RoIs sized for the platform the call is compiled for: ``_CHUNK`` RoIs per
    sequential block on the CPU (cache-sized gathers); on accelerators, where each trip of the block loop
    costs kernel launches and the compiler fuses the gather into the reduction, as many RoIs as keep a block's
    gathered values (``per_roi`` per RoI) under ``ACCEL_BLOCK_ELEMENTS`` (usually all of them)."""
    accel = accel_block_rois(xs[0].shape[0], per_roi)
    return lax.platform_dependent(
        *xs,
        cpu=lambda *a: _chunked(fn, _CHUNK, *a),
        default=lambda *a: _chunked(fn, accel, *a),
    )


def accel_block_rois(k: int, per_roi: int) -> int:
    """RoIs per block on accelerators: ``ACCEL_CHUNK`` if set, else all ``k`` unless their gathered values
    (``per_roi`` each) exceed ``ACCEL_BLOCK_ELEMENTS``."""
    return ACCEL_CHUNK or max(1, min(k, ACCEL_BLOCK_ELEMENTS // max(per_roi, 1)))


def _chunked(fn, chunk: int, *xs):
    """``fn(*xs)`` on blocks of ``chunk`` along axis 0 (sequential ``lax.map``), concatenated.

    Each block's gathered ``[chunk, P, A, Q, B, C]`` values then stay in cache instead of a K-sized tensor
    making a round trip through memory (measured 5-7x faster than one K-sized gather on CPU for 1000 RoIs x 256
    channels).
    """
    k = xs[0].shape[0]
    if k <= chunk:
        return fn(*xs)
    blocks = -(-k // chunk)
    pad = blocks * chunk - k
    xs = [jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)).reshape(blocks, chunk, *x.shape[1:]) for x in xs]
    out = lax.map(lambda args: fn(*args), xs)  # [blocks, chunk, ...]
    return out.reshape(blocks * chunk, *out.shape[2:])[:k]


# ----------------------------------------------------------------------------------------------- roi_align


def _align_axis(start, bin_size, grid, max_grid: int, pooled: int, size: int):
    """Sample rows (or columns) of roi_align along one axis, torchvision's ``bilinear_interpolate``.

    Args:
      start, bin_size: ``[K]`` float32 RoI start and bin size in feature pixels.
      grid: ``[K]`` int32 samples per bin along this axis (``<= max_grid`` used, the rest masked).
      max_grid: static samples per bin.
      pooled: output bins along this axis.
      size: feature size along this axis.

    Returns:
      ``idx [K, pooled, 2 * max_grid]`` int32 (low, high neighbour of every sample) and
      ``wt [K, pooled, 2 * max_grid]`` float32 interpolation weights (0 for masked / out-of-range samples).
    """
    p = jnp.arange(pooled, dtype=jnp.float32)[None, :, None]  # [1, P, 1]
    i = jnp.arange(max_grid, dtype=jnp.float32)[None, None, :]  # [1, 1, G]
    s, b = start[:, None, None], bin_size[:, None, None]
    g = grid[:, None, None]
    gf = jnp.maximum(g, 1).astype(jnp.float32)  # g == 0 (inverted aligned box): every sample is masked anyway
    y = s + p * b + _div((i + 0.5) * b, gf)  # [K, P, G], torchvision's evaluation order
    valid = (y >= -1.0) & (y <= size) & (i < g)  # sample exists and is not out of range
    y = jnp.maximum(y, 0.0)
    low = jnp.floor(y).astype(jnp.int32)
    at_end = low >= size - 1
    low = jnp.where(at_end, size - 1, low)
    high = jnp.where(at_end, size - 1, low + 1)
    y = jnp.where(at_end, low.astype(y.dtype), y)
    ly = y - low
    hy = 1.0 - ly
    valid = valid.astype(jnp.float32)
    k = low.shape[0]
    idx = jnp.stack([low, high], axis=-1).reshape(k, pooled, 2 * max_grid)  # [K, P, 2G]
    wt = jnp.stack([hy * valid, ly * valid], axis=-1).reshape(k, pooled, 2 * max_grid)  # [K, P, 2G]
    return idx, wt


def roi_align(
    features,
    boxes,
    box_indices,
    output_size,
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
    *,
    max_sampling_ratio: int | tuple[int, int] | None = None,
):
    """RoI Align (Mask R-CNN), same values and feature gradients as ``torchvision.ops.roi_align``.

    Each output bin averages ``gh x gw`` bilinearly interpolated samples on a regular grid inside the bin
    (``gh = sampling_ratio`` or, if ``sampling_ratio <= 0``, ``ceil(roi_h / oh)``). Samples more than one pixel
    outside the feature map contribute 0 (and still count in the mean), as in torchvision.

    Args:
      features: ``[N, H, W, C]`` float32 / bfloat16 feature maps.
      boxes: ``[K, 4]`` float xyxy boxes in input-image pixels.
      box_indices: ``[K]`` int, image index in ``[0, N)`` of every box.
      output_size: int or ``(oh, ow)``, > 0.
      spatial_scale: feature pixels per image pixel (e.g. 1/16); a Python float or a traced scalar.
      sampling_ratio: samples per bin along each axis; ``<= 0`` for torchvision's adaptive ``ceil(roi / out)``.
      aligned: if True, shift boxes by -0.5 pixel (pixel-centre model, Detectron2); if False, the legacy
        behaviour that also clamps RoI sizes to >= 1 feature pixel.
      max_sampling_ratio: adaptive mode only: static upper bound on samples per bin per axis, int or
        ``(gh_max, gw_max)``. Default ``(ceil(H / oh), ceil(W / ow))``: exact for every box inside the image.
        Boxes needing more samples are evaluated with the bound. Each block of RoIs runs the smallest grid
        in (1, 2, 3, 4, 6, 8, 12, ...) covering its boxes (``lax.switch``), so small boxes stay cheap; under
        ``vmap`` the switch evaluates every level.

    Returns:
      ``[K, oh, ow, C]`` array, dtype of ``features`` (accumulated in float32).

    Raises:
      ValueError: wrong ranks / last dims, box_indices length != K, non-integer box_indices, non-positive
        output_size or max_sampling_ratio.
    """
    features, boxes, box_indices = jnp.asarray(features), jnp.asarray(boxes), jnp.asarray(box_indices)
    oh, ow = _check_inputs(features, boxes, box_indices, output_size)
    _, h, w, _ = features.shape
    k = boxes.shape[0]
    rois = boxes.astype(jnp.float32) * jnp.asarray(spatial_scale, jnp.float32)  # [K, 4] feature pixels
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (rois[:, i] - offset for i in range(4))
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = jnp.maximum(roi_w, 1.0), jnp.maximum(roi_h, 1.0)
    bin_h, bin_w = _div(roi_h, oh), _div(roi_w, ow)  # [K]
    if sampling_ratio > 0:
        gmax_h = gmax_w = int(sampling_ratio)
        grid_h = grid_w = jnp.full((k,), sampling_ratio, jnp.int32)
    else:
        if max_sampling_ratio is None:
            gmax_h, gmax_w = max(1, math.ceil(h / oh)), max(1, math.ceil(w / ow))
        else:
            gmax_h, gmax_w = pair("max_sampling_ratio", max_sampling_ratio)
        # ceil(roi / pooled) may be <= 0 for inverted aligned boxes: no samples, output 0 (torchvision too).
        grid_h = jnp.clip(jnp.ceil(bin_h), 0, gmax_h).astype(jnp.int32)
        grid_w = jnp.clip(jnp.ceil(bin_w), 0, gmax_w).astype(jnp.int32)
    flat = features.reshape(-1, features.shape[-1])  # [N*H*W, C]

    def block_for(gh: int, gw: int):
        """Output of a block of RoIs with a static ``gh x gw`` sample grid (exact when grid <= (gh, gw))."""

        def block(n_idx, y1, x1, bin_h, bin_w, grid_h, grid_w):
            rows, wy = _align_axis(y1, bin_h, grid_h, gh, oh, h)  # [k, oh, 2gh]
            cols, wx = _align_axis(x1, bin_w, grid_w, gw, ow, w)  # [k, ow, 2gw]
            count = jnp.maximum(grid_h * grid_w, 1).astype(jnp.float32)  # [k]
            wy = wy / count[:, None, None]
            idx = _bin_indices(features, n_idx, rows, cols)  # [k, oh, 2gh, ow, 2gw]
            weights = wy[:, :, :, None, None] * wx[:, None, None, :, :]  # [k, oh, 2gh, ow, 2gw]
            vals = jnp.take(flat, idx, axis=0, mode="clip").astype(jnp.float32)  # [k, oh, 2gh, ow, 2gw, C]
            return jnp.sum(vals * weights[..., None], axis=(2, 4))  # [k, oh, ow, C]

        return block

    if sampling_ratio > 0:
        body = block_for(gmax_h, gmax_w)
    else:
        # Adaptive: a block runs the smallest static grid level covering its RoIs' sample counts, so the cost
        # follows the boxes' actual sizes (like torchvision's loops) rather than the worst-case bound.
        levels = [lv for lv in _GRID_LEVELS if lv < max(gmax_h, gmax_w)] + [max(gmax_h, gmax_w)]
        branches = [block_for(min(lv, gmax_h), min(lv, gmax_w)) for lv in levels]
        bounds = jnp.asarray(levels, jnp.int32)

        def body(*args):
            need = jnp.maximum(jnp.max(args[5], initial=0), jnp.max(args[6], initial=0))
            level = jnp.sum(bounds < need)  # first level >= need
            return lax.switch(level, branches, *args)

    per_roi = (box_indices.astype(jnp.int32), y1, x1, bin_h, bin_w, grid_h, grid_w)
    per_roi_values = oh * 2 * gmax_h * ow * 2 * gmax_w * features.shape[-1]  # gathered per RoI at the largest grid
    if sampling_ratio > 0 or k <= _CHUNK:
        out = _blocks(body, per_roi_values, *per_roi)
    else:
        # Blocks of similar sample counts: sort RoIs by need, run, and put the outputs back in order.
        order = jnp.argsort(jnp.maximum(grid_h, grid_w))  # [K]
        out = _blocks(body, per_roi_values, *(a[order] for a in per_roi))
        out = jnp.zeros_like(out).at[order].set(out, unique_indices=True)
    return out.astype(features.dtype)


# ------------------------------------------------------------------------------------------------ roi_pool


def _pool_bounds(start, end, pooled: int, size: int):
    """Bin bounds ``[lo, hi)`` of roi_pool along one axis, clipped to ``[0, size]``: two ``[K, P]`` int32."""
    length = jnp.maximum(end - start + 1, 1).astype(jnp.float32)  # [K]
    bin_size = _div(length, pooled)
    p = jnp.arange(pooled, dtype=jnp.float32)[None, :]  # [1, P]
    lo = jnp.floor(p * bin_size[:, None]).astype(jnp.int32) + start[:, None]  # [K, P]
    hi = jnp.ceil((p + 1) * bin_size[:, None]).astype(jnp.int32) + start[:, None]
    return jnp.clip(lo, 0, size), jnp.clip(hi, 0, size)


def _range_max_table(features, levels: int):
    """Sparse table along W: ``T[j, n, h, w] = max(features[n, h, w : w + 2**j])`` -> ``[levels, N, H, W, C]``.

    Entries whose range runs past the border are never read (queries satisfy ``w + 2**j <= W``).
    """
    tables = [features]
    neg = jnp.array(-jnp.inf, features.dtype)
    for j in range(1, levels):
        prev, step = tables[-1], 1 << (j - 1)
        shifted = lax.pad(prev, neg, ((0, 0, 0), (0, 0, 0), (-step, step, 0), (0, 0, 0)))  # prev[:, :, w + step]
        tables.append(jnp.maximum(prev, shifted))
    return jnp.stack(tables)


def roi_pool(features, boxes, box_indices, output_size, spatial_scale: float = 1.0, *, max_bin_size=None):
    """RoI max pooling (Fast R-CNN), same values as ``torchvision.ops.roi_pool``.

    Box corners are scaled and rounded (half away from zero) to feature pixels; the RoI spans
    ``end - start + 1`` pixels (>= 1), split into ``oh x ow`` bins ``[floor(i * bin), ceil((i + 1) * bin))``
    clipped to the map; each output is the max over its bin, or 0 for an empty bin.

    Args:
      features: ``[N, H, W, C]`` float32 / bfloat16 feature maps.
      boxes: ``[K, 4]`` float xyxy boxes in input-image pixels.
      box_indices: ``[K]`` int, image index in ``[0, N)`` of every box.
      output_size: int or ``(oh, ow)``, > 0.
      spatial_scale: feature pixels per image pixel; a Python float or a traced scalar.
      max_bin_size: static bound on bin height / width in feature pixels, int or pair. Default
        ``(min(H, ceil((H + 1) / oh) + 1), min(W, ceil((W + 1) / ow) + 1))``: exact for every box inside the
        image; ``max(H, W)`` is exact for any box. Cost grows linearly with the height bound and only
        logarithmically with the width bound (a range-max sparse table along W).

    Returns:
      ``[K, oh, ow, C]`` array, dtype of ``features``. Gradients flow to the maxima (ties share them).

    Raises:
      ValueError: wrong ranks / last dims, box_indices length != K, non-integer box_indices, non-positive
        output_size or max_bin_size.
    """
    features, boxes, box_indices = jnp.asarray(features), jnp.asarray(boxes), jnp.asarray(box_indices)
    oh, ow = _check_inputs(features, boxes, box_indices, output_size)
    _, h, w, _ = features.shape
    if max_bin_size is None:
        bh, bw = min(h, math.ceil((h + 1) / oh) + 1), min(w, math.ceil((w + 1) / ow) + 1)
    else:
        bh, bw = pair("max_bin_size", max_bin_size)
        bh, bw = min(bh, h), min(bw, w)
    r = _round_half_away(boxes.astype(jnp.float32) * jnp.asarray(spatial_scale, jnp.float32)).astype(jnp.int32)
    hs, he = _pool_bounds(r[:, 1], r[:, 3], oh, h)  # [K, oh]
    ws, we = _pool_bounds(r[:, 0], r[:, 2], ow, w)  # [K, ow]
    # Rows: a static window of bh rows per bin, masked. Columns: the range max over [ws, we) is the max of two
    # overlapping power-of-two ranges read from a sparse table, so each (row, bin) costs 2 reads, not bw.
    levels = bw.bit_length()  # ranges up to 2**levels - 1 >= bw
    table = _range_max_table(features, levels).reshape(-1, features.shape[-1])  # [L*N*H*W, C]
    rows = hs[..., None] + jnp.arange(bh, dtype=jnp.int32)  # [K, oh, bh]
    mrow = rows < he[..., None]
    rows = jnp.minimum(rows, h - 1)
    length = jnp.maximum(we - ws, 1)  # [K, ow]
    level = sum((length >= (1 << t)).astype(jnp.int32) for t in range(1, levels))  # floor(log2(length))
    cols = jnp.stack([ws, we - (1 << level)], axis=-1)  # [K, ow, 2] (the two ranges' starts)
    cols = jnp.clip(cols, 0, w - 1)
    n = features.shape[0]
    base = (level[:, None, None, :] * n + box_indices.astype(jnp.int32)[:, None, None, None]) * h  # [K, 1, 1, ow]
    idx = ((base + rows[..., None]) * w)[..., None] + cols[:, None, None, :, :]  # [K, oh, bh, ow, 2]
    neg = jnp.array(-jnp.inf, features.dtype)

    def block(idx, mrow):
        vals = jnp.take(table, idx, axis=0, mode="clip")  # [k, oh, bh, ow, 2, C]
        vals = jnp.max(vals, axis=4)  # [k, oh, bh, ow, C]: max over the row's column range
        return jnp.max(jnp.where(mrow[:, :, :, None, None], vals, neg), axis=2)  # [k, oh, ow, C]

    out = _blocks(block, oh * bh * ow * 2 * features.shape[-1], idx, mrow)  # [K, oh, ow, C]
    empty = (he <= hs)[:, :, None] | (we <= ws)[:, None, :]  # [K, oh, ow]
    return jnp.where(empty[..., None], jnp.zeros((), features.dtype), out)
