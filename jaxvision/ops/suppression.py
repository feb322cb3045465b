"""Non-maximum suppression with fixed output shapes: ``nms``, ``batched_nms`` and ``soft_nms``.

Greedy NMS (torchvision.ops.nms semantics): visit boxes in decreasing score order; keep a box unless a box
kept before it overlaps it with IoU > ``iou_threshold``. Results are padded index arrays, so everything runs
under ``jit`` and ``vmap`` (batch over images by vmapping the call).

How it is computed (never an N x N matrix: 100,000 boxes peak at ~0.3 GB RSS, JAX included):

1. Sort once by score (descending, ties by index, as torchvision's stable sort). XLA:CPU sorts a single
   integer operand ~5x faster than a (key, index) pair, so scores become order-preserving uint32 keys, are
   sorted alone, ranked by binary search and the permutation is scattered from the ranks (or, when keys tie,
   built by sorting ``rank * N + index``).
2. Walk the sorted boxes in tiles of ``T`` (64). A tile is first checked against the boxes kept so far (a
   compacted buffer read in 64-box chunks, so the work is ~N x kept / 2 IoUs rather than N^2 / 2). Inside
   the tile a ``T x T`` mask "j precedes i and IoU > threshold" is resolved by the fixed-point iteration
   ``keep = alive & ~any(mask & keep)``: its unique fixed point is the greedy answer, reached in (longest
   suppression chain + 1) steps, usually 1-3. Kept boxes are appended to the buffer.
3. ``batched_nms`` (N <= 65536) walks the boxes in class-major order (classes ascending, score order inside
   a class; one uint32 sort of ``class_rank * N + score_rank``), so a tile is checked only against the kept
   boxes from the start of its first class (a running buffer offset per image), not all kept boxes. Pairs of
   different classes inside a tile are masked (no coordinate offsets, so bfloat16/float16 boxes stay exact).
   The kept score ranks are scattered back to score order at the end. Larger N uses the global score order
   with the same class mask.
4. Under ``vmap`` a ``custom_vmap`` rule runs the loops once for the whole batch with shared loop counters
   (JAX's generic while-loop batching would turn every slice into a gather).

IoU is computed in float32 exactly as torchvision's CPU kernel (``inter / (area_i + area_j - inter)``). A
concrete (Python number) threshold is compared the way C++ compares a float with a double, so kept sets match
torchvision at every threshold; a traced threshold is compared in float32.
"""
from __future__ import annotations

import functools
import numbers

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_batching import custom_vmap

from jaxvision._checks import check_choice, check_rank, check_same_leading

TILE = 64  # boxes per tile (T x T masks); small tiles waste less work, large ones run fewer loop steps
FP_UNROLL = 2  # fixed-point steps per loop iteration (chains are often 2-5 long in class-major tiles)
CHUNK = 64  # kept boxes compared with a tile per step (T x CHUNK masks; 64 wastes less on padding than 128)


# --------------------------------------------------------------------------------------------- checks


def _check_boxes_scores(boxes, scores):
    check_rank("boxes", boxes, 2, "[N, 4]")
    if np.shape(boxes)[-1] != 4:
        raise ValueError(f"boxes: expected shape [N, 4], got {tuple(np.shape(boxes))}")
    check_rank("scores", scores, 1, "[N]")
    check_same_leading("boxes", boxes, "scores", scores)


def _check_threshold(name, value):
    """Concrete thresholds must be finite and >= 0; traced ones are used as given."""
    if isinstance(value, jax.core.Tracer):
        return
    v = np.asarray(value)
    if v.shape != ():
        raise ValueError(f"{name}: expected a scalar, got shape {v.shape}")
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"{name}: expected a finite value >= 0, got {value!r}")


def _output_size(max_output_size, n):
    if max_output_size is None:
        return n
    if not isinstance(max_output_size, numbers.Integral) or isinstance(max_output_size, bool):
        raise ValueError(f"max_output_size: expected a static int > 0 or None, got {max_output_size!r}")
    if max_output_size <= 0:
        raise ValueError(f"max_output_size: expected an int > 0, got {max_output_size}")
    return int(max_output_size)


def _float32_threshold(value):
    """float32 ``t`` with ``x > t  <=>  x > value`` for every float32 ``x`` (C++ float-vs-double compare)."""
    if isinstance(value, jax.core.Tracer):
        return jnp.asarray(value, jnp.float32)
    d = float(value)
    f = np.float32(d)
    if float(f) > d:
        f = np.nextafter(f, np.float32(-np.inf))
    return jnp.float32(f)


# ---------------------------------------------------------------------------------------------- sorting


def _sort(x):
    """Ascending sort of a 1-D integer array outside ``vmap``. Equal integers are indistinguishable, so an
    unstable sort gives the same result; XLA:CPU's is ~1.5x faster for one row (but slower for a batch of
    rows, so batched callers use ``jnp.sort``)."""
    return lax.sort(x, is_stable=False)


def _descending_keys(scores, valid):
    """uint32 keys whose ascending order is descending score.

    Invalid entries get distinct keys above every valid key (``2^32 - N + index``; valid keys are at most
    ``~asc(-inf) = 0xFF800000``), so they sort last and never create ties among themselves.
    """
    n = scores.shape[-1]
    bits = lax.bitcast_convert_type(scores.astype(jnp.float32), jnp.uint32)
    # -0.0 and 0.0 tie, as in a float comparison (done on bits: XLA flushes subnormals in float compares)
    bits = jnp.where(bits == jnp.uint32(0x80000000), jnp.uint32(0), bits)
    ascending = jnp.where(bits >> 31 == 1, ~bits, bits | jnp.uint32(0x80000000))
    invalid_key = jnp.uint32(2**32 - n) + lax.iota(jnp.uint32, n)
    return jnp.where(valid, ~ascending, invalid_key)


def _argsort_packed(keys, sorted_keys, sort=jnp.sort):
    """Stable argsort via dense ranks: sort ``rank * N + index`` (one more integer sort), decode the index."""
    n = keys.shape[0]
    rank = jnp.searchsorted(sorted_keys, keys, side="left", method="scan_unrolled").astype(jnp.uint32)
    return (sort(rank * jnp.uint32(n) + lax.iota(jnp.uint32, n)) % jnp.uint32(n)).astype(jnp.int32)


def _argsort_unique(keys, sorted_keys):
    """Argsort when all keys differ: each key's rank is its slot, so one scatter builds the permutation."""
    n = keys.shape[0]
    rank = jnp.searchsorted(sorted_keys, keys, side="left", method="scan_unrolled")
    return jnp.zeros((n,), jnp.int32).at[rank].set(lax.iota(jnp.int32, n), unique_indices=True)


def _stable_argsort(keys, allow_cond=True, sort=jnp.sort):
    """Stable ascending argsort of uint32 ``keys [N]`` -> int32 ``[N]``.

    XLA:CPU sorts a single integer operand ~5x faster than a (key, index) pair, so: sort the keys, rank each
    key by binary search, and either scatter (all keys distinct, the usual case) or sort ``rank * N + index``
    (ties; stable). ``allow_cond=False`` always takes the tie-safe path (under vmap a cond runs both sides).
    ``sort`` sorts the integer keys (:func:`_sort` for one image outside vmap).
    """
    n = keys.shape[0]
    if n * n > 2**32:
        return lax.sort((keys, lax.iota(jnp.int32, n)), num_keys=1, is_stable=True)[1]
    sorted_keys = sort(keys)
    packed = functools.partial(_argsort_packed, sort=sort)
    if not allow_cond:
        return packed(keys, sorted_keys)
    ties = jnp.any(sorted_keys[1:] == sorted_keys[:-1])
    return lax.cond(ties, packed, _argsort_unique, keys, sorted_keys)


# ------------------------------------------------------------------------------------ greedy, tiled


def _iou_above_one(a, b, thr):
    """``IoU(a_i, b_j) > thr`` as bool ``[Ta, Tb]`` for one image's packed boxes ``a [R, Ta]``, ``b [R, Tb]``.

    Rows 0-3 of the packed arrays are x1, y1, x2, y2. float32, same arithmetic as torchvision's CPU kernel.
    A zero union gives 0/0 = NaN, which compares False (never suppresses), so all-zero columns are inert
    padding. Written per image on 1-D rows: XLA:CPU vectorizes this form ~3x better than the same
    expression on ``[B, R, T]`` slices.
    """
    area_a = (a[2] - a[0]) * (a[3] - a[1])  # [Ta]
    area_b = (b[2] - b[0]) * (b[3] - b[1])  # [Tb]
    w = jnp.maximum(jnp.minimum(a[2][:, None], b[2][None, :]) - jnp.maximum(a[0][:, None], b[0][None, :]), 0)
    h = jnp.maximum(jnp.minimum(a[3][:, None], b[3][None, :]) - jnp.maximum(a[1][:, None], b[1][None, :]), 0)
    inter = w * h  # [Ta, Tb]
    return inter / (area_a[:, None] + area_b[None, :] - inter) > thr


def _iou_above(a, b, thr):
    """Batched :func:`_iou_above_one`: ``a [B, R, Ta]``, ``b [B, R, Tb]``, ``thr [B]`` -> bool ``[B, Ta, Tb]``.

    Callers reduce over axis 1 (not the minor axis): XLA:CPU vectorizes that ~10x better.
    """
    return jax.vmap(_iou_above_one)(a, b, thr)


def _pair_mask(a, b, thr, with_class):
    """Suppression mask ``[B, Ta, Tb]`` between packed columns ``a [B, R, Ta]`` and ``b [B, R, Tb]``."""
    m = _iou_above(a, b, thr)
    if with_class:  # only same-class pairs suppress each other (class ids are bit-cast into row 5)
        ca = lax.bitcast_convert_type(a[:, 5], jnp.int32)
        cb = lax.bitcast_convert_type(b[:, 5], jnp.int32)
        m = m & (ca[:, :, None] == cb[:, None, :])
    return m


def _greedy_sorted(packed, n_valid, thr, max_keep, tile, with_class, class_sorted=False):
    """Greedy NMS over a batch of packed boxes already sorted by priority.

    All images step through the same tile/chunk loops (shared counters, so slices stay static-offset
    ``dynamic_slice`` and never become gathers); an image with nothing left to do simply keeps nothing.

    Args:
      packed: float32 ``[B, R, P]``; columns = boxes in priority order, P a multiple of ``tile``. Rows 0-3 are
        x1, y1, x2, y2; row 4 the original index and row 5 (if ``with_class``) the class id, both int32
        bit-cast to float32. Columns >= ``n_valid`` are ignored.
      n_valid: int32 ``[B]``, number of leading columns that take part.
      thr: float32 ``[B]`` IoU threshold.
      max_keep: static int; the loop ends once every image has kept at least this many boxes.
      tile: static tile size T.
      with_class: static bool, mask pairs of different classes.
      class_sorted: static bool (needs ``with_class``): columns are grouped by class, so a tile is only
        checked against the kept boxes from the start of its first column's class (a running buffer offset
        per image) instead of all kept boxes. ``max_keep`` is then ignored (kept boxes are not in score
        order, so every tile is processed).

    Returns:
      ``(kept, count)``: float32 ``[B, R, P]`` the kept columns compacted to the front in priority order
      (zeros after), and int32 ``[B]`` numbers of kept columns.
    """
    batch, rows, p = packed.shape
    iota_t = lax.iota(jnp.int32, tile)
    earlier = iota_t[:, None] < iota_t[None, :]  # [T, T]: row j precedes column i
    inclusive = iota_t[:, None] <= iota_t[None, :]  # [T, T] prefix-count mask: j <= i
    n_tiles = (jnp.max(n_valid) + tile - 1) // tile
    cls_row = lax.bitcast_convert_type(packed[:, 5], jnp.int32) if class_sorted else None  # [B, P]

    def append(kept, pos, tb):  # one image: kept [R, P], pos [T], tb [R, T]
        return kept.at[:, pos].set(tb, mode="drop")

    def tile_body(state):
        t, count, cstart, kept = state
        start = t * tile
        tb = lax.dynamic_slice(packed, (0, 0, start), (batch, rows, tile))  # [B, R, T]
        alive = (start + iota_t)[None, :] < n_valid[:, None]  # [B, T]

        # 1) against every box kept in earlier tiles (class-sorted: of the tile's classes), chunk by chunk
        # (unused buffer columns are zero boxes; a slice clamped at the buffer end re-reads kept boxes, which
        # is harmless: every kept box precedes the tile)
        n_chunks = (jnp.max(count - cstart) + chunk - 1) // chunk

        def chunk_cond(c_alive):
            c, alive = c_alive
            return (c < n_chunks) & jnp.any(alive)

        def chunk_body(c_alive):
            c, alive = c_alive
            if class_sorted:
                kb = jax.vmap(lambda k, o: lax.dynamic_slice(k, (0, o), (rows, chunk)))(kept, cstart + c * chunk)
            else:
                kb = lax.dynamic_slice(kept, (0, 0, c * chunk), (batch, rows, chunk))
            return c + 1, alive & ~jnp.any(_pair_mask(kb, tb, thr, with_class), axis=1)

        _, alive = lax.while_loop(chunk_cond, chunk_body, (jnp.int32(0), alive))

        # 2) inside the tile: fixed point of keep[i] = alive[i] & ~any_j<i(mask[j, i] & keep[j])
        m = _pair_mask(tb, tb, thr, with_class) & earlier & alive[:, :, None]  # [B, T (suppressor), T]

        def fp_body(state):
            keep, _ = state
            for _ in range(FP_UNROLL - 1):  # extra steps past the fixed point are no-ops
                keep = alive & ~jnp.any(m & keep[:, :, None], axis=1)
            new = alive & ~jnp.any(m & keep[:, :, None], axis=1)
            return new, jnp.any(new != keep)

        keep, _ = lax.while_loop(lambda s: s[1], fp_body, (alive, jnp.any(m)))

        # 3) append the tile's kept columns to the compacted buffer
        # inclusive cumsum of keep as a fused masked reduction: a dot would go to Eigen's thread pool, and
        # cross-thread hand-offs for a 64-element product cost more than the product on a busy machine
        prefix = jnp.sum(keep[:, :, None] & inclusive[None], axis=1, dtype=jnp.int32)  # [B, T]
        pos = jnp.where(keep, count[:, None] + prefix - 1, p_kept)  # out of range -> dropped
        kept = jax.vmap(append)(kept, pos, tb)
        new_count = count + prefix[:, -1]
        if class_sorted:
            # invariant: cstart = buffer offset of the first kept box of the class of the tile's first column.
            # The next tile's first class either fills this whole tile (offset unchanged) or starts in it or
            # right after it, behind this tile's kept boxes of lower classes.
            cls_t = lax.dynamic_slice(cls_row, (0, start), (batch, tile))  # [B, T]
            c_next = lax.dynamic_slice(cls_row, (0, jnp.minimum(start + tile, p - 1)), (batch, 1))  # [B, 1]
            other = jnp.sum(keep & (cls_t != c_next), axis=1, dtype=jnp.int32)
            cstart = jnp.where(jnp.all(cls_t == c_next, axis=1), cstart, count + other)
        return t + 1, new_count, cstart, kept

    def tile_cond(state):
        t, count = state[0], state[1]
        if class_sorted:
            return t < n_tiles
        return (t < n_tiles) & jnp.any(count < max_keep)

    chunk = min(CHUNK, p)
    p_kept = -(-p // chunk) * chunk  # the buffer holds whole chunks
    zeros = jnp.zeros((batch,), jnp.int32)
    init = (jnp.int32(0), zeros, zeros, jnp.zeros((batch, rows, p_kept), jnp.float32))
    _, count, _, kept = lax.while_loop(tile_cond, tile_body, init)
    return kept, count


def _tile_and_pad(n):
    tile = TILE if n >= TILE else max(8, -(-n // 8) * 8)
    return tile, -(-n // tile) * tile


def _class_major(order, idxs, valid):
    """Score ranks in class-major order (classes ascending, score order inside a class), for a batch.

    ``order [B, N]`` is the score order (box index per rank). Returns int32 ``[B, N]``: the score rank of
    each box in class-major order, invalid boxes last. The composite key ``class_rank * N + score_rank`` is
    unique, so one single-operand integer sort gives the order and ``key % N`` decodes the rank (needs
    N^2 <= 2^32). The class rank is ``class - min_class`` when every image's valid classes span fewer than N
    values (the usual 0..C-1 ids; a batch-wide cond, so no sort), else the rank by sort + binary search.
    """
    n = order.shape[-1]
    iota = lax.iota(jnp.uint32, n)
    rank = jax.vmap(lambda o: jnp.zeros((n,), jnp.uint32).at[o].set(iota, unique_indices=True))(order)
    cu = lax.bitcast_convert_type(idxs, jnp.uint32) ^ jnp.uint32(0x80000000)  # order-preserving
    lo = jnp.min(jnp.where(valid, cu, jnp.uint32(2**32 - 1)), axis=1, keepdims=True)
    hi = jnp.max(jnp.where(valid, cu, jnp.uint32(0)), axis=1, keepdims=True)
    compact = jnp.all(hi - lo < n)  # (no valid box: hi - lo wraps to 1; every box gets rank N - 1 below)

    def by_search(cu, lo):
        srt = jnp.sort(cu, axis=1)
        return jax.vmap(lambda a, v: jnp.searchsorted(a, v, side="left", method="scan_unrolled"))(srt, cu)

    crank = lax.cond(compact, lambda cu, lo: cu - lo, lambda cu, lo: by_search(cu, lo).astype(jnp.uint32), cu, lo)
    # invalid boxes have the largest score ranks, so class rank N - 1 puts them after every valid box
    crank = jnp.where(valid, crank, jnp.uint32(n - 1))
    return (jnp.sort(crank * jnp.uint32(n) + rank, axis=1) % jnp.uint32(n)).astype(jnp.int32)


def _score_order_output(order, kept_rank, count, n_out):
    """One image: kept score ranks ``kept_rank [P]`` (first ``count`` valid, any order) -> the kept box
    indices in score order, padded with -1 to ``[n_out]``, and their number."""
    n = order.shape[0]
    r = jnp.where(lax.iota(jnp.int32, kept_rank.shape[0]) < count, kept_rank, n)
    flag = jnp.zeros((n,), bool).at[r].set(True, mode="drop")
    pos = jnp.where(flag, jnp.cumsum(flag, dtype=jnp.int32) - 1, n_out)
    out = jnp.full((n_out,), -1, jnp.int32).at[pos].set(order, mode="drop")
    return out, jnp.minimum(count, n_out)


def _nms_images(boxes, scores, idxs, valid, thr, n_out, with_class):
    """NMS for a batch of images: boxes ``[B, N, 4]``, scores/idxs/valid ``[B, N]``, thr ``[B]``."""
    batch, n = scores.shape
    valid = valid & ~jnp.isnan(scores)
    keys = _descending_keys(scores, valid)
    if batch == 1:
        order = _stable_argsort(keys[0], sort=_sort)[None]  # [1, N] box index per priority rank
    elif n * n > 2**32:
        order = jax.vmap(_stable_argsort)(keys)  # [B, N]
    else:  # one batch-wide cond (a cond inside vmap would run both sides)
        sorted_keys = jnp.sort(keys, axis=1)
        ties = jnp.any(sorted_keys[:, 1:] == sorted_keys[:, :-1])
        order = lax.cond(ties, jax.vmap(_argsort_packed), jax.vmap(_argsort_unique), keys, sorted_keys)
    n_valid = jnp.sum(valid, axis=1, dtype=jnp.int32)
    tile, p = _tile_and_pad(n)
    class_sorted = with_class and n * n <= 2**32
    if class_sorted:
        # class-major order: a tile meets only the kept boxes of its own classes, not all kept boxes
        tag = _class_major(order, idxs.astype(jnp.int32), valid)  # [B, N] score rank per slot
        perm = jnp.take_along_axis(order, tag, axis=1)  # [B, N] box index per slot
    else:
        tag = perm = order
    sorted_boxes = jnp.take_along_axis(boxes.astype(jnp.float32), perm[:, :, None], axis=1)  # [B, N, 4]
    cols = [jnp.swapaxes(sorted_boxes, 1, 2), lax.bitcast_convert_type(tag, jnp.float32)[:, None]]
    if with_class:
        sorted_cls = jnp.take_along_axis(idxs.astype(jnp.int32), perm, axis=1)
        cols.append(lax.bitcast_convert_type(sorted_cls, jnp.float32)[:, None])
    packed = jnp.pad(jnp.concatenate(cols, axis=1), ((0, 0), (0, 0), (0, p - n)))  # [B, R, P]
    # In score order (nms, or batched_nms for huge N with same-class masking) boxes are kept in score order,
    # so stopping at n_out kept boxes is exact.
    kept, count = _greedy_sorted(packed, n_valid, thr, n_out, tile, with_class, class_sorted)
    tags = lax.bitcast_convert_type(kept[:, 4], jnp.int32)  # [B, P]
    if class_sorted:
        return jax.vmap(functools.partial(_score_order_output, n_out=n_out))(order, tags, count)
    count = jnp.minimum(count, n_out)
    idx = jnp.pad(tags, ((0, 0), (0, max(0, n_out - tags.shape[1]))))[:, :n_out]
    return jnp.where(lax.iota(jnp.int32, n_out)[None] < count[:, None], idx, -1), count


@functools.lru_cache(maxsize=None)
def _single_image_fn(n_out, with_class):
    """Jitted one-image NMS whose ``vmap`` runs the natively batched loops (shared loop counters) instead of
    JAX's generic while-loop batching (which turns every slice into a gather). Cached per static config, so
    eager calls compile once per input shape; the threshold is a traced float32 argument."""

    @custom_vmap
    def single(boxes, scores, idxs, valid, thr):
        out = _nms_images(boxes[None], scores[None], idxs[None], valid[None], thr[None], n_out, with_class)
        return jax.tree.map(lambda x: x[0], out)

    @single.def_vmap
    def rule(axis_size, in_batched, boxes, scores, idxs, valid, thr):
        args = [
            x if b else jnp.broadcast_to(x, (axis_size,) + x.shape)
            for x, b in zip((boxes, scores, idxs, valid, thr), in_batched)
        ]
        return _nms_images(*args, n_out, with_class), (True, True)

    return jax.jit(single)


def _run(boxes, scores, idxs, iou_threshold, max_output_size, valid):
    n = boxes.shape[0]
    n_out = _output_size(max_output_size, n)
    if n == 0:
        return jnp.full((n_out,), -1, jnp.int32), jnp.int32(0)
    with_class = idxs is not None
    idxs = jnp.zeros((n,), jnp.int32) if idxs is None else idxs.astype(jnp.int32)
    thr = _float32_threshold(iou_threshold)
    boxes, scores = lax.stop_gradient(boxes), lax.stop_gradient(scores)  # integer outputs: no gradient
    return _single_image_fn(n_out, with_class)(boxes, scores, idxs, valid, thr)


# ----------------------------------------------------------------------------------------------- public


def nms(boxes, scores, iou_threshold, max_output_size=None, score_threshold=None):
    """Greedy non-maximum suppression (torchvision.ops.nms) with a fixed-size result.

    Args:
      boxes: ``[N, 4]`` xyxy boxes, absolute pixels, float32/bfloat16/float16 (IoU is computed in float32).
      scores: ``[N]`` float scores. NaN scores are never kept.
      iou_threshold: float >= 0; a box is dropped if it overlaps a higher-scoring kept box with IoU > this.
        A Python number is compared exactly as torchvision does (float32 IoU vs a double); a traced value
        is compared in float32. Either way the compiled program is shared across thresholds.
      max_output_size: static int > 0, length of the result (default N); at most this many boxes are kept.
      score_threshold: optional float; only boxes with ``score > score_threshold`` take part.

    Returns:
      ``(indices, num_valid)``: int32 ``[max_output_size]`` indices into ``boxes`` of the kept boxes in
      decreasing score order (ties: lower index first), padded with -1; and int32 scalar count of kept boxes.
    """
    _check_boxes_scores(boxes, scores)
    _check_threshold("iou_threshold", iou_threshold)
    boxes, scores = jnp.asarray(boxes), jnp.asarray(scores)
    valid = jnp.ones(scores.shape, bool)
    if score_threshold is not None:
        if not isinstance(score_threshold, jax.core.Tracer) and np.shape(score_threshold) != ():
            raise ValueError(f"score_threshold: expected a scalar, got shape {np.shape(score_threshold)}")
        valid = scores > score_threshold
    return _run(boxes, scores, None, iou_threshold, max_output_size, valid)


def batched_nms(boxes, scores, idxs, iou_threshold, max_output_size=None):
    """Class-aware NMS (torchvision.ops.batched_nms): boxes only suppress boxes with the same ``idxs``.

    Unlike torchvision's coordinate-offset trick, pairs of different classes are masked out of the IoU test,
    so low-precision (bfloat16/float16) boxes and huge coordinates stay exact.

    Args:
      boxes: ``[N, 4]`` xyxy boxes, absolute pixels, float32/bfloat16/float16.
      scores: ``[N]`` float scores. NaN scores are never kept.
      idxs: ``[N]`` int class (or image) id per box.
      iou_threshold: float >= 0.
      max_output_size: static int > 0, length of the result (default N).

    Returns:
      ``(indices, num_valid)`` as :func:`nms`: kept boxes of all classes together, decreasing score order.
    """
    _check_boxes_scores(boxes, scores)
    check_rank("idxs", idxs, 1, "[N]")
    check_same_leading("boxes", boxes, "idxs", idxs)
    _check_threshold("iou_threshold", iou_threshold)
    boxes, scores, idxs = jnp.asarray(boxes), jnp.asarray(scores), jnp.asarray(idxs)
    if not jnp.issubdtype(idxs.dtype, jnp.integer):
        raise ValueError(f"idxs: expected an integer array, got dtype {idxs.dtype}")
    return _run(boxes, scores, idxs, iou_threshold, max_output_size, jnp.ones(scores.shape, bool))


def soft_nms(boxes, scores, sigma=0.5, iou_threshold=0.3, method="gaussian", score_threshold=0.001):
    """Soft-NMS (Bodla et al. 2017): decay the scores of overlapping boxes instead of dropping them.

    Repeatedly select the remaining box with the highest current score (ties: lower index), then multiply
    the score of every other remaining box by ``exp(-IoU^2 / sigma)`` ('gaussian') or by ``1 - IoU`` when
    ``IoU > iou_threshold`` ('linear'). A box whose score falls below ``score_threshold`` is discarded.

    Args:
      boxes: ``[N, 4]`` xyxy boxes, absolute pixels, float32/bfloat16 (IoU in float32).
      scores: ``[N]`` float scores (NaN scores are discarded).
      sigma: float > 0, Gaussian width.
      iou_threshold: float >= 0, overlap above which the linear method decays (unused by 'gaussian').
      method: 'gaussian' or 'linear'.
      score_threshold: float; boxes whose (decayed) score is below it are discarded.

    Returns:
      ``(updated_scores, order)``: float32 ``[N]`` decayed scores (0 for discarded boxes) and int32 ``[N]``
      indices of the selected boxes in selection order (non-increasing updated score), padded with -1.
    """
    _check_boxes_scores(boxes, scores)
    check_choice("method", method, ("gaussian", "linear"))
    _check_threshold("iou_threshold", iou_threshold)
    if not isinstance(sigma, jax.core.Tracer) and not (np.ndim(sigma) == 0 and sigma > 0):
        raise ValueError(f"sigma: expected a scalar > 0, got {sigma!r}")
    n = np.shape(scores)[0]
    if n == 0:
        return jnp.zeros((0,), jnp.float32), jnp.zeros((0,), jnp.int32)
    b = jnp.asarray(boxes).astype(jnp.float32)
    s = jnp.asarray(scores).astype(jnp.float32)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    remaining = ~jnp.isnan(s) & (s >= score_threshold)
    s = jnp.where(remaining, s, 0)

    def cond(state):
        i, _, remaining, _ = state
        return (i < n) & jnp.any(remaining)

    def body(state):
        i, s, remaining, order = state
        best = jnp.argmax(jnp.where(remaining, s, -jnp.inf))
        remaining = remaining.at[best].set(False)
        w = jnp.maximum(jnp.minimum(b[best, 2], b[:, 2]) - jnp.maximum(b[best, 0], b[:, 0]), 0)
        h = jnp.maximum(jnp.minimum(b[best, 3], b[:, 3]) - jnp.maximum(b[best, 1], b[:, 1]), 0)
        inter = w * h
        union = area[best] + area - inter
        iou = jnp.where(union > 0, inter / jnp.where(union > 0, union, 1), 0)  # [N]
        if method == "gaussian":
            decay = jnp.exp(-(iou * iou) / sigma)
        else:
            decay = jnp.where(iou > iou_threshold, 1 - iou, 1)
        s_new = jnp.where(remaining, s * decay, s)
        dropped = remaining & (s_new < score_threshold)
        return i + 1, jnp.where(dropped, 0, s_new), remaining & ~dropped, order.at[i].set(best.astype(jnp.int32))

    init = (jnp.int32(0), s, remaining, jnp.full((n,), -1, jnp.int32))
    _, s, _, order = lax.while_loop(cond, body, init)
    return s, order
