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
2-4 rounds. Each round is a handful of segment reductions over edges (``[E, A, T]``), no per-pair padding.

IoUs come in as float64 (pycocotools' formula, see :mod:`jaxvision.metrics.coco`) and the program runs with
64-bit types enabled, so every comparison equals pycocotools' bit for bit.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["greedy_match", "match_edges"]


def _choose(claim, edge_det, edge_gt, iou, rank, crowd, ignore, thresholds, num_det):
    """Each detection's best unclaimed candidate GT per lane. Returns ``[Nd, A, T]`` int32 GT index or -1."""
    ig = ignore[edge_gt]  # [E, A]
    blocked = ~crowd[edge_gt][:, None, None] & (claim[edge_gt] < rank[edge_det][:, None, None])  # [E, A, T]
    cand = (iou[:, None, None] >= thresholds[None, None, :]) & ~blocked  # [E, A, T]
    seg = dict(num_segments=num_det, indices_are_sorted=True)
    has_kept = jax.ops.segment_max((cand & ~ig[:, :, None]).astype(jnp.int8), edge_det, **seg) > 0  # [Nd, A, T]
    elig = cand & (ig[:, :, None] != has_kept[edge_det])  # non-ignored GT if any qualifies, else ignored GT
    best = jax.ops.segment_max(jnp.where(elig, iou[:, None, None], -1.0), edge_det, **seg)
    at_best = elig & (iou[:, None, None] == best[edge_det])
    return jax.ops.segment_max(jnp.where(at_best, edge_gt[:, None, None], -1), edge_det, **seg).astype(jnp.int32)


@jax.jit
def greedy_match(edge_det, edge_gt, iou, rank, crowd, ignore, thresholds):
    """COCOeval greedy matching over a flat edge list (all images and categories at once).

    Args:
      edge_det: ``[E]`` int32 detection index of each edge, sorted ascending (padding edges: any valid index
        with ``iou = -1``).
      edge_gt: ``[E]`` int32 GT index of each edge. GT indices must increase with the GT's position in its
        (image, category) list, so that "later GT wins ties" is "larger index wins".
      iou: ``[E]`` float IoU (float64 for exact parity).
      rank: ``[Nd]`` int32 visiting position of each detection within its (image, category).
      crowd: ``[Ng]`` bool crowd flag. ignore: ``[Ng, A]`` bool ignore flag per area range.
      thresholds: ``[T]`` float thresholds, already capped at ``1 - 1e-10``.

    Returns:
      ``[Nd, A, T]`` int32 index of the GT each detection matched, -1 for none.
    """
    num_det, num_gt = rank.shape[0], crowd.shape[0]
    lanes = (ignore.shape[1], thresholds.shape[0])
    big = jnp.iinfo(jnp.int32).max

    def claims(m):
        flat = jnp.where(m >= 0, m, num_gt)  # [Nd, A, T], dump row num_gt for "no match"
        a_idx = jnp.arange(lanes[0])[None, :, None]
        t_idx = jnp.arange(lanes[1])[None, None, :]
        r = jnp.broadcast_to(rank[:, None, None], m.shape)
        claim = jnp.full((num_gt + 1,) + lanes, big, jnp.int32).at[flat, a_idx, t_idx].min(r)
        return claim[:num_gt]

    def choose(m):
        return _choose(claims(m), edge_det, edge_gt, iou, rank, crowd, ignore, thresholds, num_det)

    def body(state):
        m, _, it = state
        new = choose(m)
        return new, jnp.any(new != m), it + 1

    m0 = jnp.full((num_det,) + lanes, -1, jnp.int32)  # round 1 (nothing claimed) runs inside the loop
    m, _, _ = lax.while_loop(lambda s: s[1] & (s[2] <= num_det + 1), body, (m0, jnp.array(True), jnp.array(0)))
    return m


def _pad_to(n: int, floor: int = 256) -> int:
    """Static size for ``n`` items: the next power of two (at least ``floor``), to limit recompilation."""
    return max(floor, 1 << int(np.ceil(np.log2(max(n, 1)))))


def match_edges(edge_det, edge_gt, iou, rank, crowd, ignore, thresholds):
    """Pad the edge list to static power-of-two sizes and run :func:`greedy_match` with float64 enabled.

    Args:
      edge_det: ``[E]`` int detection index, ascending. edge_gt: ``[E]`` int GT index. iou: ``[E]`` float64.
      rank: ``[Nd]`` int. crowd: ``[Ng]`` bool. ignore: ``[A, Ng]`` bool. thresholds: ``[T]`` float64 (capped).

    Returns:
      ``[A, T, Nd]`` int64 matched GT index or -1.
    """
    nd, ng, ne = len(rank), len(crowd), len(edge_det)
    num_a, num_t = ignore.shape[0], len(thresholds)
    if ne == 0:
        return np.full((num_a, num_t, nd), -1, np.int64)
    pd, pg, pe = _pad_to(nd + 1), _pad_to(ng + 1), _pad_to(ne)
    ed = np.full(pe, pd - 1, np.int32)  # padding edges point at a padding detection, stay sorted
    ed[:ne] = edge_det
    eg = np.full(pe, pg - 1, np.int32)
    eg[:ne] = edge_gt
    ev = np.full(pe, -1.0)
    ev[:ne] = iou
    rk = np.zeros(pd, np.int32)
    rk[:nd] = rank
    cr = np.zeros(pg, bool)
    cr[:ng] = crowd
    ig = np.zeros((pg, num_a), bool)
    ig[:ng] = ignore.T
    with jax.enable_x64(True):
        m = greedy_match(ed, eg, ev, rk, cr, ig, np.asarray(thresholds, np.float64))
        m = np.asarray(m)[:nd]  # [Nd, A, T]
    return np.moveaxis(m, 0, -1).astype(np.int64)
