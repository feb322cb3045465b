"""Greedy detection-to-ground-truth matching (COCOeval semantics) as one jit-compiled array program.

The per-(image, category) problem of ``pycocotools.cocoeval.COCOeval.evaluateImg`` is:

* detections are visited in descending score order (stable), already truncated to ``maxDets[-1]``;
* each detection takes the still-unmatched ground truth (GT) with the highest IoU >= ``min(t, 1 - 1e-10)``;
  among equal IoUs the later GT wins (pycocotools keeps the last ``>=`` hit);
* GT flagged *ignore* (crowd, or area outside the area range) is only considered when no non-ignored GT
  qualifies (pycocotools sorts ignored GT last and stops at the first ignored GT once it holds a match);
* crowd GT can be matched any number of times.

Formulation. Only (detection, GT) *edges* with IoU >= the lowest threshold can ever match, so the problem is a
sparse bipartite graph: all pairs of all images and categories are solved at once over a flat edge list, with one
lane per (area range, IoU threshold). The sequential greedy loop becomes a fixed-point iteration: given the
current choice ``m`` of every detection, a GT is *claimed before* detection ``d`` if some detection of lower rank
(earlier in visiting order) currently chooses it; every detection then re-chooses its best unclaimed candidate.
After ``k`` rounds every detection of rank < ``k`` holds its greedy choice (induction on rank), and the fixed point
is unique, so the loop (``lax.while_loop`` until nothing changes) returns exactly the greedy matching, usually in
2-4 rounds. Each round is one scatter-min (claims) and one segment max over edges (``[E, A, T]``): every edge
carries an int64 key ``(not ignored, exact IoU rank, GT index)`` whose maximum is pycocotools' choice. No
per-pair padding; the edge, detection and GT axes are padded to powers of two (one compile per size class).

IoUs come in as float64 (pycocotools' formula, see :mod:`jaxvision.metrics.detection.coco`) and the program runs with
64-bit types enabled, so every comparison equals pycocotools' bit for bit.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["greedy_match", "match_edges"]


def _choose(claim, edge_det, edge_gt, edge_key, edge_iou, edge_rank, edge_crowd, thresholds, num_det, gt_mask):
    """Each detection's best unclaimed candidate GT per lane. Returns ``[Nd, A, T]`` GT index or -1.

    ``edge_key`` orders the candidates of one detection exactly like pycocotools' loop: a non-ignored GT beats
    an ignored one, then the higher IoU wins, then the later GT; so one segment max picks the choice.
    """
    blocked = ~edge_crowd[:, None, None] & (claim[edge_gt] < edge_rank[:, None, None])  # [E, A, T]
    cand = (edge_iou[:, None, None] >= thresholds[None, None, :]) & ~blocked  # [E, A, T]
    key = jnp.where(cand, edge_key[:, :, None], -1)  # [E, A, T]
    best = jax.ops.segment_max(key, edge_det, num_segments=num_det, indices_are_sorted=True)  # [Nd, A, T]
    return jnp.where(best >= 0, best & gt_mask, -1)


@partial(jax.jit, static_argnames=("num_gt",))
def greedy_match(edge_det, edge_gt, edge_key, edge_iou, rank, edge_crowd, thresholds, gt_mask, num_gt: int):
    """COCOeval greedy matching over a flat edge list (all images and categories at once).

    Args:
      edge_det: ``[E]`` int detection index of each edge, sorted ascending.
      edge_gt: ``[E]`` int GT index of each edge, in ``[0, num_gt)``.
      edge_key: ``[E, A]`` int64 choice key per area range:
        ``(not ignored) << s2 | iou_rank << s1 | gt_index`` with ``iou_rank`` the exact dense rank of the IoU
        (so ties stay ties); -1 for padding edges.
      edge_iou: ``[E]`` float IoU (float64 for exact parity), compared with the thresholds.
      rank: ``[Nd]`` int32 visiting position of each detection within its (image, category).
      edge_crowd: ``[E]`` bool, the edge's GT is crowd (never blocked).
      thresholds: ``[T]`` float thresholds, already capped at ``1 - 1e-10``.
      gt_mask: int64 scalar ``2**s1 - 1`` that extracts the GT index from a key.
      num_gt: static number of GT slots.

    Returns:
      ``[Nd, A, T]`` int64 index of the GT each detection matched, -1 for none.
    """
    num_det = rank.shape[0]
    lanes = (edge_key.shape[1], thresholds.shape[0])
    edge_rank = rank[edge_det]
    big = jnp.iinfo(rank.dtype).max
    a_idx = jnp.arange(lanes[0])[None, :, None]
    t_idx = jnp.arange(lanes[1])[None, None, :]

    def claims(m):  # [Ng + 1, A, T]: lowest rank of a detection currently choosing each GT
        flat = jnp.where(m >= 0, m, num_gt)  # row num_gt collects "no match"
        r = jnp.broadcast_to(rank[:, None, None], m.shape)
        return jnp.full((num_gt + 1,) + lanes, big, rank.dtype).at[flat, a_idx, t_idx].min(r)

    def body(state):
        m, _, it = state
        new = _choose(claims(m), edge_det, edge_gt, edge_key, edge_iou, edge_rank, edge_crowd, thresholds, num_det,
                      gt_mask)
        return new, jnp.any(new != m), it + 1

    m0 = jnp.full((num_det,) + lanes, -1, edge_key.dtype)  # round 1 (nothing claimed) runs inside the loop
    m, _, _ = lax.while_loop(lambda s: s[1] & (s[2] <= num_det + 1), body, (m0, jnp.array(True), jnp.array(0)))
    return m


def _pad_to(n: int, floor: int = 256) -> int:
    """Static size for ``n`` items: the next power of two (at least ``floor``), to limit recompilation."""
    return max(floor, 1 << int(np.ceil(np.log2(max(n, 1)))))


def match_edges(edge_det, edge_gt, iou, rank, crowd, ignore, thresholds):
    """Build the choice keys, pad to static power-of-two sizes and run :func:`greedy_match` in float64.

    Args:
      edge_det: ``[E]`` int detection index, ascending. edge_gt: ``[E]`` int GT index (GT indices increase with
        the GT's position in its (image, category) list). iou: ``[E]`` float64.
      rank: ``[Nd]`` int. crowd: ``[Ng]`` bool. ignore: ``[A, Ng]`` bool. thresholds: ``[T]`` float64 (capped).

    Returns:
      ``[A, T, Nd]`` int64 matched GT index or -1.
    """
    nd, ng, ne = len(rank), len(crowd), len(edge_det)
    num_a, num_t = ignore.shape[0], len(thresholds)
    if ne == 0:
        return np.full((num_a, num_t, nd), -1, np.int64)
    pd, pg, pe = _pad_to(nd), _pad_to(ng), _pad_to(ne)
    _, iou_rank = np.unique(iou, return_inverse=True)  # exact order of the float64 IoUs, ties kept equal
    s1 = max(pg - 1, 1).bit_length()
    s2 = s1 + max(int(iou_rank.max()), 1).bit_length()
    if s2 >= 62:
        raise ValueError(f"evaluate_coco: problem too large for 64-bit matching keys ({ne} edges, {ng} GT)")
    base = (iou_rank.astype(np.int64) << s1) | np.asarray(edge_gt, np.int64)
    key = np.full((pe, num_a), -1, np.int64)
    key[:ne] = base[:, None] | ((~ignore[:, edge_gt]).T.astype(np.int64) << s2)
    ed = np.full(pe, pd - 1, np.int32)  # padding edges sit on the last (padding) detection, keep the order
    ed[:ne] = edge_det
    eg = np.zeros(pe, np.int32)
    eg[:ne] = edge_gt
    ev = np.full(pe, -1.0)
    ev[:ne] = iou
    ec = np.zeros(pe, bool)
    ec[:ne] = crowd[edge_gt]
    rk = np.zeros(pd, np.int32)
    rk[:nd] = rank
    with jax.enable_x64(True):
        m = greedy_match(ed, eg, key, ev, rk, ec, np.asarray(thresholds, np.float64), np.int64((1 << s1) - 1),
                         num_gt=pg)
        m = np.asarray(m)[:nd]  # [Nd, A, T]
    return np.moveaxis(m, 0, -1).astype(np.int64)
