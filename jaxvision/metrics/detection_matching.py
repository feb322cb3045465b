"""Greedy detection-to-ground-truth matching (COCOeval semantics) as a jit-compiled array program.

The per-(image, category) problem of ``pycocotools.cocoeval.COCOeval.evaluateImg`` is:

* detections are visited in descending score order (stable), already truncated to ``maxDets[-1]``;
* each detection takes the still-unmatched ground truth (GT) with the highest IoU >= ``min(t, 1 - 1e-10)``;
  among equal IoUs the later GT wins (pycocotools keeps the last ``>=`` hit);
* GT flagged *ignore* (crowd, or area outside the area range) is only considered when no non-ignored GT
  qualifies (pycocotools sorts ignored GT last and stops at the first ignored GT once it holds a match);
* crowd GT can be matched any number of times.

Here that loop is one ``lax.scan`` over detections whose carry is the "GT taken" mask; the function for one
(pair, area range, IoU threshold) is vmapped over thresholds, area ranges and pairs. Pairs are padded to a
fixed ``[D, G]`` and batched into buckets of a few static shapes so that a whole data set compiles a handful of
programs. IoUs come in as float64 (computed with pycocotools' exact formula in :mod:`jaxvision.metrics.coco`),
and the program runs with 64-bit types enabled, so every comparison equals pycocotools' bit for bit.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["greedy_match", "match_buckets", "bucket_size"]


def _last_argmax(values, mask):
    """Index of the maximum of ``values[mask]`` (ties -> the last index), or -1 if ``mask`` is empty. [G] -> []."""
    g = values.shape[-1]
    key = jnp.where(mask, values, -jnp.inf)
    hit = mask & (key == jnp.max(key))
    idx = g - 1 - jnp.argmax(hit[::-1])
    return jnp.where(jnp.any(mask), idx, -1).astype(jnp.int32)


def _match_one(iou, det_valid, gt_valid, gt_crowd, gt_ignore, threshold):
    """Greedy matching of one (pair, area range, threshold).

    Args:
      iou: ``[D, G]`` float IoU, detections in visiting order (score-descending).
      det_valid: ``[D]`` bool, False for padding.
      gt_valid: ``[G]`` bool, False for padding.
      gt_crowd: ``[G]`` bool, crowd GT (matchable repeatedly).
      gt_ignore: ``[G]`` bool, ignored GT for this area range.
      threshold: scalar IoU threshold (already capped at ``1 - 1e-10``).

    Returns:
      ``[D]`` int32: index of the matched GT, -1 for none.
    """

    def step(taken, x):
        iou_d, valid_d = x  # [G], []
        cand = (iou_d >= threshold) & gt_valid & (~taken | gt_crowd) & valid_d  # [G]
        first = _last_argmax(iou_d, cand & ~gt_ignore)
        second = _last_argmax(iou_d, cand & gt_ignore)
        m = jnp.where(first >= 0, first, second)
        taken = taken | (jnp.arange(iou_d.shape[0]) == m)
        return taken, m

    _, matches = lax.scan(step, jnp.zeros(iou.shape[1], bool), (iou, det_valid))
    return matches


# over thresholds [T] -> [T, D]; over area ranges (gt_ignore [A, G]) -> [A, T, D]; over pairs -> [P, A, T, D]
_match_t = jax.vmap(_match_one, in_axes=(None, None, None, None, None, 0))
_match_at = jax.vmap(_match_t, in_axes=(None, None, None, None, 0, None))
_match_pat = jax.vmap(_match_at, in_axes=(0, 0, 0, 0, 0, None))


@jax.jit
def greedy_match(iou, det_valid, gt_valid, gt_crowd, gt_ignore, thresholds):
    """COCOeval greedy matching for a batch of padded (image, category) pairs.

    Args:
      iou: ``[P, D, G]`` float IoU (float64 for exact parity), rows in score-descending detection order.
      det_valid: ``[P, D]`` bool.
      gt_valid: ``[P, G]`` bool.
      gt_crowd: ``[P, G]`` bool.
      gt_ignore: ``[P, A, G]`` bool, per area range (crowd GT is always ignored).
      thresholds: ``[T]`` float IoU thresholds (use ``min(t, 1 - 1e-10)`` like pycocotools).

    Returns:
      ``[P, A, T, D]`` int32 index (into the G axis) of the GT each detection matched, -1 for none.
    """
    return _match_pat(iou, det_valid, gt_valid, gt_crowd, gt_ignore, thresholds)


def bucket_size(n: np.ndarray) -> np.ndarray:
    """Static padded size for a pair with ``n`` detections/GT: the next power of two, at least 2."""
    n = np.maximum(np.asarray(n, np.int64), 2)
    return (1 << np.ceil(np.log2(n)).astype(np.int64)).astype(np.int64)


def _chunk_pairs(size: int, num: int, num_at: int) -> int:
    """Pairs per kernel call for square bucket ``size``: a power of two with ~4M carried elements at most."""
    cap = max(8, (1 << 22) // (size * size * num_at))
    cap = 1 << int(np.floor(np.log2(cap)))
    want = 1 << int(np.ceil(np.log2(max(num, 8))))
    return min(cap, want)


def match_buckets(pair_of_det, det_slot, pair_of_gt, gt_slot, iou_rows, iou_cols, iou_vals,
                  pair_size, gt_crowd, gt_ignore, thresholds):
    """Run :func:`greedy_match` over sparse pairs grouped into square power-of-two buckets.

    Every array describes *compressed* pairs (only detections and GT that can match at all):

    Args:
      pair_of_det, det_slot: ``[Nd]`` int, pair index and position (visiting order) of each detection.
      pair_of_gt, gt_slot: ``[Ng]`` int, pair index and position (original order) of each GT.
      iou_rows, iou_cols, iou_vals: ``[Nc]`` detection index, GT index and float64 IoU of each combination.
      pair_size: ``[P]`` int, bucket size (from :func:`bucket_size`) of every pair.
      gt_crowd: ``[Ng]`` bool. gt_ignore: ``[A, Ng]`` bool.
      thresholds: ``[T]`` float64.

    Returns:
      ``[A, T, Nd]`` int64: index (into the ``Ng`` axis) of the matched GT per detection, -1 for none.
    """
    num_a, num_t, num_d = gt_ignore.shape[0], len(thresholds), len(pair_of_det)
    out = np.full((num_a, num_t, num_d), -1, np.int64)
    if num_d == 0 or len(pair_of_gt) == 0:
        return out
    thresholds = np.asarray(thresholds, np.float64)
    for size in np.unique(pair_size[pair_of_det]):
        size = int(size)
        pairs = np.flatnonzero(pair_size == size)
        local = np.full(len(pair_size), -1, np.int64)
        local[pairs] = np.arange(len(pairs))
        chunk = _chunk_pairs(size, len(pairs), num_a * num_t)
        n_pad = -(-len(pairs) // chunk) * chunk
        iou = np.zeros((n_pad, size, size), np.float64)
        det_valid = np.zeros((n_pad, size), bool)
        gt_valid = np.zeros((n_pad, size), bool)
        crowd = np.zeros((n_pad, size), bool)
        ignore = np.zeros((n_pad, num_a, size), bool)
        d_sel = np.flatnonzero(local[pair_of_det] >= 0)
        g_sel = np.flatnonzero(local[pair_of_gt] >= 0)
        c_sel = np.flatnonzero(local[pair_of_det[iou_rows]] >= 0)
        det_valid[local[pair_of_det[d_sel]], det_slot[d_sel]] = True
        gp, gs = local[pair_of_gt[g_sel]], gt_slot[g_sel]
        gt_valid[gp, gs] = True
        crowd[gp, gs] = gt_crowd[g_sel]
        ignore[gp, :, gs] = gt_ignore[:, g_sel].T
        r, c = iou_rows[c_sel], iou_cols[c_sel]
        iou[local[pair_of_det[r]], det_slot[r], gt_slot[c]] = iou_vals[c_sel]
        # global GT index of every (local pair, slot), to map matches back
        gt_index = np.full((n_pad, size), -1, np.int64)
        gt_index[gp, gs] = g_sel
        with jax.enable_x64(True):
            results = []
            for s in range(0, n_pad, chunk):
                sl = slice(s, s + chunk)
                results.append(greedy_match(iou[sl], det_valid[sl], gt_valid[sl], crowd[sl], ignore[sl],
                                            thresholds))
            m = np.concatenate([np.asarray(x) for x in results])  # [n_pad, A, T, size]
        lp, ls = local[pair_of_det[d_sel]], det_slot[d_sel]
        mm = m[lp, :, :, ls]  # [nd_sel, A, T] local GT slot
        glob = np.where(mm >= 0, gt_index[lp[:, None, None], np.maximum(mm, 0)], -1)
        out[:, :, d_sel] = np.moveaxis(glob, 0, -1)
    return out

