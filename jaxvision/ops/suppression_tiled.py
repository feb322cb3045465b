"""Greedy NMS by a tiled walk over the score-sorted boxes: the CPU path of :mod:`jaxvision.ops.suppression`.

Never an N x N matrix: 100,000 boxes peak at ~0.3 GB RSS, JAX included.

1. Sort once by score (descending, ties by index): :mod:`jaxvision.ops.score_order`.
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

Many small loop trips (~N / 64 x inner steps): cheap on a CPU, slow where every while-loop trip costs kernel
launches and a predicate read (GPUs), which use :mod:`jaxvision.ops.suppression_fixed_point` instead.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from jaxvision.ops.score_order import argsort_packed, argsort_unique, descending_keys, sort_unstable, stable_argsort

TILE = 64  # boxes per tile (T x T masks); small tiles waste less work, large ones run fewer loop steps
FP_UNROLL = 2  # fixed-point steps per loop iteration (chains are often 2-5 long in class-major tiles)
CHUNK = 64  # kept boxes compared with a tile per step (T x CHUNK masks; 64 wastes less on padding than 128)


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


def tiled_nms(boxes, scores, idxs, valid, thr, n_out, with_class):
    """Greedy NMS for a batch of images with the tiled walk (the CPU path).

    Args:
      boxes: float ``[B, N, 4]`` xyxy. scores: float ``[B, N]``. idxs: int32 ``[B, N]`` class ids (ignored
        unless ``with_class``). valid: bool ``[B, N]``, boxes that take part. thr: float32 ``[B]``.
      n_out: static output length. with_class: static, only same-class boxes suppress each other.

    Returns:
      ``(indices [B, n_out] int32 padded with -1, count [B] int32)``, kept boxes in score order.
    """
    batch, n = scores.shape
    valid = valid & ~jnp.isnan(scores)
    keys = descending_keys(scores, valid)
    if batch == 1:
        order = stable_argsort(keys[0], sort=sort_unstable)[None]  # [1, N] box index per priority rank
    elif n * n > 2**32:
        order = jax.vmap(stable_argsort)(keys)  # [B, N]
    else:  # one batch-wide cond (a cond inside vmap would run both sides)
        sorted_keys = jnp.sort(keys, axis=1)
        ties = jnp.any(sorted_keys[:, 1:] == sorted_keys[:, :-1])
        order = lax.cond(ties, jax.vmap(argsort_packed), jax.vmap(argsort_unique), keys, sorted_keys)
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
