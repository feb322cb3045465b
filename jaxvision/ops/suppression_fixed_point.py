"""Greedy NMS in few sequential steps: the accelerator (GPU/TPU) path of :mod:`jaxvision.ops.suppression`.

On a GPU every trip of an XLA while loop costs kernel launches plus a device-to-host read of its predicate,
so the tiled CPU walk (~N / 64 trips) is slow there. This path does the work in wide, parallel steps:

1. Sort once by score (descending, ties by lower index; one stable key/index sort).
2. Suppressor bits: ``M[j, i] = 1`` iff ``i < j`` in score order, ``j`` takes part, same class
   (``batched_nms``) and ``IoU(i, j) > threshold``. Row ``j`` lists the boxes that may suppress box ``j``,
   packed 32 per uint32 word: ``[N, ceil(N / 32)]`` words, N^2 / 8 bytes (1.25 GB at 100,000 boxes, the size
   of torchvision's CUDA mask), built by one fused elementwise-and-reduce per block of rows, in place; a
   block computes only the columns before its end (the matrix is lower-triangular).
3. Fixed point: ``keep[j] = alive[j] & ~any_i (M[j, i] & keep[i])``, iterated from ``keep = alive``: pack
   ``keep`` into words, AND it into every row, reduce each row (contiguous, so the AND fuses into the
   reduction on every backend). Box ``j`` depends only on earlier boxes, so the iteration has one fixed
   point, the greedy answer, and reaches it after (longest suppression chain + 1) steps: a box is settled
   one step after every box that decides it. ``unroll`` steps run per loop trip between convergence checks,
   so a call makes about ``(chain + 2) / unroll + 1`` sequential trips.

IoU is computed in float32 with torchvision's CPU arithmetic (``inter / (area_i + area_j - inter)``), so on
the CPU both paths return identical indices (tests run both). A GPU compiler may contract ``w * h`` and the
sum into a fused multiply-add, as nvcc does in torchvision's CUDA kernel: IoUs within one ulp of the threshold
may then resolve differently from the CPU.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxvision.ops.score_order import descending_keys

WORD = 32  # columns per packed word
BLOCK_PAIRS = 2**28  # row-block size: rows x padded columns per block stays under this (bounded temporaries)
STEP_BLOCKS = 4  # row blocks read by one fixed-point step of a large matrix (see fixed_point_keep)
STEP_BLOCK_WORDS = 2**24  # matrices of at least this many words (64 MB) are read in blocks
BIT_STEP_MAX_BOXES = 1024  # up to this many (padded) boxes a step reduces the unpacked bits in one fusion


def default_unroll(n: int) -> int:
    """Fixed-point steps per loop trip: small problems are launch bound (many cheap steps per trip: one trip
    usually converges), large ones bandwidth bound (a step reads ~N^2 / 16 bytes, so steps past convergence
    cost real time). Chosen from H200 measurements at 1k-100k clustered boxes (chains of 3-13 steps;
    docs/results/h200/)."""
    if n <= 8192:
        return 8
    return 4 if n <= 32768 else 2


def _suppressor_words(rows, cols, row_start, n_valid, thr, with_class):
    """Packed suppressor bits of a block of rows (boxes ``j``) against all columns (boxes ``i``), for a batch.

    Args:
      rows: float32 ``[B, R, 5]`` sorted boxes x1, y1, x2, y2 and the class id bit-cast to float32 (row block).
      cols: float32 ``[B, W, 32, 5]`` all sorted boxes, padded to whole words.
      row_start: int32 scalar, score rank of the block's first row.
      n_valid: int32 ``[B]``, boxes taking part (a prefix of the sorted order).
      thr: float32 ``[B]`` IoU threshold.
      with_class: static bool, only same-class pairs count.

    Returns:
      uint32 ``[B, R, W]``: bit ``b`` of word ``w`` in row ``r`` is ``M[row_start + r, 32 w + b]``.
    """
    r = rows[:, :, None, None, :]  # [B, R, 1, 1, 5]
    c = cols[:, None]  # [B, 1, W, 32, 5]
    area_r = (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])  # [B, R, 1, 1]
    area_c = (c[..., 2] - c[..., 0]) * (c[..., 3] - c[..., 1])  # [B, 1, W, 32]
    w = jnp.maximum(jnp.minimum(r[..., 2], c[..., 2]) - jnp.maximum(r[..., 0], c[..., 0]), 0)
    h = jnp.maximum(jnp.minimum(r[..., 3], c[..., 3]) - jnp.maximum(r[..., 1], c[..., 1]), 0)
    inter = w * h  # [B, R, W, 32]
    # area_i + area_j - inter, as torchvision (float addition commutes exactly); 0 / 0 = NaN compares False
    over = inter / (area_c + area_r - inter) > thr[:, None, None, None]
    n_rows, n_words = rows.shape[1], cols.shape[1]
    j = row_start + lax.iota(jnp.int32, n_rows)[:, None, None]  # [R, 1, 1]
    i = (lax.iota(jnp.int32, n_words)[:, None] * WORD + lax.iota(jnp.int32, WORD)[None, :])[None]  # [1, W, 32]
    over = over & (i < j)[None] & (j[None] < n_valid[:, None, None, None])
    if with_class:
        over = over & (lax.bitcast_convert_type(r[..., 4], jnp.int32) == lax.bitcast_convert_type(c[..., 4], jnp.int32))
    return _pack(over)


def _pack(bits):
    """bool ``[..., 32]`` -> uint32 ``[...]``, bit ``b`` from ``bits[..., b]`` (disjoint bits: sum == OR)."""
    weight = jnp.left_shift(jnp.uint32(1), lax.iota(jnp.uint32, WORD))  # [32]
    return jnp.sum(jnp.where(bits, weight, jnp.uint32(0)), axis=-1, dtype=jnp.uint32)


def padded_size(n: int, batch: int = 1) -> tuple[int, int]:
    """``(P, R)``: the padded box count of the overlap matrix and its rows per block (P a multiple of R and of
    32). One block when ``B x N x N`` fits in ``BLOCK_PAIRS``, else blocks of R rows with ``R x P <=
    BLOCK_PAIRS``, so the elementwise temporaries stay bounded whatever the compiler fuses."""
    p = -(-n // WORD) * WORD
    blocks = -(-batch * p * p // BLOCK_PAIRS)
    rows = -(-p // blocks // WORD) * WORD  # even blocks: little padding
    return -(-n // rows) * rows, rows


def suppressor_matrix(packed, n_valid, thr, with_class):
    """The packed suppressor matrix ``M`` of sorted boxes ``packed [B, P, 5]`` -> uint32 ``[B, P, P / 32]``.

    ``P`` must be :func:`padded_size`'s; padding boxes (beyond ``n_valid``) have all-zero rows and columns.
    With several row blocks, block ``b`` (rows ``[bR, (b + 1)R)``) computes only the columns before its end
    (suppressors precede their boxes), about half the pairs, and is written in place into one buffer; the
    blocks are unrolled (each has its own static width), so no loop trips either.
    """
    batch, p, fields = packed.shape
    cols = packed.reshape(batch, p // WORD, WORD, fields)
    _, rows_per_block = padded_size(p, batch)
    if rows_per_block == p:
        return _suppressor_words(packed, cols, jnp.int32(0), n_valid, thr, with_class)
    words = jnp.zeros((batch, p, p // WORD), jnp.uint32)
    for start in range(0, p, rows_per_block):
        end = start + rows_per_block
        block = _suppressor_words(packed[:, start:end], cols[:, : end // WORD], jnp.int32(start), n_valid, thr,
                                  with_class)  # [B, R, end / 32]
        words = lax.dynamic_update_slice(words, block, (0, start, 0))
    return words


def fixed_point_keep(words, alive, unroll):
    """Greedy keep mask from the suppressor matrix by the fixed-point iteration (module docstring, step 3).

    Args:
      words: uint32 ``[B, P, P / 32]`` packed suppressor matrix (:func:`suppressor_matrix`).
      alive: bool ``[B, P]`` boxes taking part, in score order.
      unroll: static steps per loop trip.

    Returns:
      ``(keep [B, P] bool, trips int32)``: the greedy answer and the number of sequential loop trips taken.
    """
    batch, p = alive.shape
    # Large matrices are read in STEP_BLOCKS row blocks, each only up to its last column (the matrix is
    # lower-triangular): ~(1 + 1 / blocks) / 2 of the bytes of a full read, for a few more kernels per step.
    blocks = STEP_BLOCKS if words.size >= STEP_BLOCK_WORDS else 1
    bounds = [-(-p * k // blocks // WORD) * WORD for k in range(blocks + 1)]

    def step(keep):
        if p <= BIT_STEP_MAX_BOXES:  # one fused reduction over the unpacked bits (saves the packing kernel)
            bits = (words[:, :, :, None] >> lax.iota(jnp.uint32, WORD)) & jnp.uint32(1)  # [B, P, W, 32]
            hit = jnp.any((bits != 0) & keep.reshape(batch, 1, p // WORD, WORD), axis=(2, 3))  # [B, P]
            return alive & ~hit
        keep_words = _pack(keep.reshape(batch, p // WORD, WORD))  # [B, W]
        hit = [
            jnp.any((words[:, lo:hi, : hi // WORD] & keep_words[:, None, : hi // WORD]) != 0, axis=-1)  # [B, rows]
            for lo, hi in zip(bounds[:-1], bounds[1:])
        ]
        return alive & ~jnp.concatenate(hit, axis=1)  # [B, P]

    def trip(state):
        keep, _, trips = state
        for _ in range(unroll - 1):
            keep = step(keep)
        new = step(keep)
        return new, jnp.any(new != keep), trips + 1

    keep, _, trips = lax.while_loop(lambda s: s[1], trip, (alive, jnp.any(alive), jnp.int32(0)))
    return keep, trips


def fixed_point_nms(boxes, scores, idxs, valid, thr, n_out, with_class, unroll=None, return_trips=False):
    """Greedy NMS for a batch of images in few sequential steps (the accelerator path).

    Args:
      boxes: float ``[B, N, 4]`` xyxy (any float dtype; IoU in float32).
      scores: float ``[B, N]``; NaN scores never take part.
      idxs: int32 ``[B, N]`` class ids (ignored unless ``with_class``).
      valid: bool ``[B, N]``, boxes that take part.
      thr: float32 ``[B]`` IoU threshold (a box is suppressed by IoU > thr).
      n_out: static output length.
      with_class: static bool, only same-class boxes suppress each other.
      unroll: static fixed-point steps per loop trip (default :func:`default_unroll`).
      return_trips: also return the number of sequential loop trips (instrumentation).

    Returns:
      ``(indices [B, n_out] int32 padded with -1, count [B] int32)`` (plus ``trips`` if asked): kept boxes in
      decreasing score order, ties by lower index.
    """
    batch, n = scores.shape
    valid = valid & ~jnp.isnan(scores)
    keys = descending_keys(scores, valid)  # [B, N] uint32, invalid boxes last
    iota = jnp.broadcast_to(lax.iota(jnp.int32, n), (batch, n))
    order = lax.sort((keys, iota), dimension=1, num_keys=1, is_stable=True)[1]  # [B, N] box per score rank
    n_valid = jnp.sum(valid, axis=1, dtype=jnp.int32)
    fields = [boxes.astype(jnp.float32), lax.bitcast_convert_type(idxs.astype(jnp.int32), jnp.float32)[..., None]]
    packed = jnp.take_along_axis(jnp.concatenate(fields, axis=-1), order[:, :, None], axis=1)  # [B, N, 5]
    p, _ = padded_size(n, batch)
    packed = jnp.pad(packed, ((0, 0), (0, p - n), (0, 0)))  # [B, P, 5]
    words = suppressor_matrix(packed, n_valid, thr, with_class)  # [B, P, P / 32]
    alive = lax.iota(jnp.int32, p)[None, :] < n_valid[:, None]  # [B, P]
    keep, trips = fixed_point_keep(words, alive, unroll or default_unroll(n))
    keep = keep[:, :n]
    count = jnp.minimum(jnp.sum(keep, axis=1, dtype=jnp.int32), n_out)
    pos = jnp.where(keep, jnp.cumsum(keep, axis=1, dtype=jnp.int32) - 1, n_out)  # out of range -> dropped
    out = jax.vmap(lambda p, o: jnp.full((n_out,), -1, jnp.int32).at[p].set(o, mode="drop"))(pos, order)
    return (out, count, trips) if return_trips else (out, count)
