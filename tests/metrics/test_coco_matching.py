"""The fixed-point edge matching equals pycocotools' sequential evaluateImg loop on dense, tie-heavy problems."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxvision.metrics.detection.matching import match_edges

THR = np.minimum(np.linspace(0.5, 0.95, 10), 1 - 1e-10)


def reference(iou, crowd, ignore, thr):
    """pycocotools evaluateImg matching for one pair: iou [D, G] (dets in score order), returns [D] GT index."""
    g_order = np.argsort(ignore, kind="mergesort")  # ignored GT last
    out = np.full(iou.shape[0], -1)
    taken = np.zeros(iou.shape[1], bool)
    for d in range(iou.shape[0]):
        best, m = min(thr, 1 - 1e-10), -1
        for g in g_order:
            if taken[g] and not crowd[g]:
                continue
            if m > -1 and not ignore[m] and ignore[g]:
                break
            if iou[d, g] < best:
                continue
            best, m = iou[d, g], g
        if m > -1:
            taken[m] = True
            out[d] = m
    return out


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.integers(0, 10_000))
def test_edge_matching_equals_sequential_loop(seed):
    rng = np.random.default_rng(seed)
    n_pairs = int(rng.integers(1, 6))
    edges_d, edges_g, vals, ranks, crowds, ignores, refs = [], [], [], [], [], [], []
    nd = ng = 0
    for _ in range(n_pairs):
        d, g = int(rng.integers(1, 9)), int(rng.integers(1, 7))
        iou = rng.choice([0.0, 0.45, 0.5, 0.6000000000000001, 0.6, 0.7, 0.75, 0.9, 0.95, 1.0], size=(d, g))
        crowd = rng.random(g) < 0.25
        ignore = crowd[None] | (rng.random((4, g)) < 0.3)  # [A, G]
        for a in range(4):
            refs.append([(nd, a, t, reference(iou, crowd, ignore[a], thr)) for t, thr in enumerate(THR)])
        rows, cols = np.nonzero(iou >= 0.5)
        edges_d.append(rows + nd)
        edges_g.append(cols + ng)
        vals.append(iou[rows, cols])
        ranks.append(np.arange(d))
        crowds.append(crowd)
        ignores.append(ignore)
        nd, ng = nd + d, ng + g
    edges_d, edges_g, vals = map(np.concatenate, (edges_d, edges_g, vals))
    m = match_edges(edges_d, edges_g, vals, np.concatenate(ranks), np.concatenate(crowds),
                    np.concatenate(ignores, axis=1), THR)  # [A, T, Nd], global GT index
    g_base = np.cumsum([0] + [len(c) for c in crowds])
    for pair, per_a in enumerate(zip(*[iter(refs)] * 4)):
        for per_t in per_a:
            for start, a, t, want in per_t:
                got = m[a, t, start:start + len(want)]
                np.testing.assert_array_equal(np.where(got >= 0, got - g_base[pair], -1), want)
