"""nms / batched_nms / soft_nms: NumPy reference greedy, torchvision parity (golden + live), properties,
padding and edge cases, jit/vmap/grad, input checks, and the 100k-box memory bound."""
import functools
import pathlib
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxvision import ops
from jaxvision.ops import suppression

GOLDEN = pathlib.Path(__file__).parent / "fixtures" / "nms_golden.npz"
ROOT = pathlib.Path(__file__).resolve().parents[2]

# The public functions compile once per (shape, max_output_size) and take the threshold as data, so tests call
# them directly with concrete thresholds (exact C++-style comparison) and share compiled programs across sizes.


@pytest.fixture(params=["tiled", "fixed_point"])
def algorithm(request, monkeypatch):
    """Runs a test with both NMS algorithms (CPU 'tiled' and accelerator 'fixed_point'), here on the CPU, so CI
    proves they agree: ``ops.nms`` / ``ops.batched_nms`` are patched to pass ``algorithm``."""
    for name in ("nms", "batched_nms"):
        monkeypatch.setattr(ops, name, functools.partial(getattr(suppression, name), algorithm=request.param))
    return request.param


# ------------------------------------------------------------------------------------ NumPy reference


def np_iou32(box, others):
    """IoU of one box against many in float32, with torchvision's CPU kernel arithmetic."""
    box, others = box.astype(np.float32), others.astype(np.float32)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    w = np.maximum(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), np.float32(0))
    h = np.maximum(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), np.float32(0))
    inter = w * h
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / (area + areas - inter)


def np_nms(boxes, scores, thr, idxs=None, score_threshold=None):
    """Greedy NMS: stable descending sort, keep unless a kept box (same class) has IoU > thr (as double)."""
    scores = np.asarray(scores, np.float32)
    valid = ~np.isnan(scores)
    if score_threshold is not None:
        valid &= scores > score_threshold
    order = [i for i in np.argsort(-np.where(valid, scores, -np.inf), kind="stable") if valid[i]]
    kept = []
    for i in order:
        same = [k for k in kept if idxs is None or idxs[k] == idxs[i]]
        if not same or not (np_iou32(boxes[i], boxes[same]).astype(np.float64) > thr).any():
            kept.append(i)
    return np.asarray(kept, np.int64)


def np_soft_nms(boxes, scores, sigma, thr, method, score_threshold):
    s = np.asarray(scores, np.float64).copy()
    remaining = ~np.isnan(s) & (s >= score_threshold)
    s[~remaining] = 0
    order = []
    while remaining.any():
        cand = np.where(remaining, s, -np.inf)
        best = int(np.argmax(cand))
        order.append(best)
        remaining[best] = False
        iou = np.nan_to_num(np_iou32(boxes[best], boxes).astype(np.float64))
        decay = np.exp(-(iou**2) / sigma) if method == "gaussian" else np.where(iou > thr, 1 - iou, 1.0)
        s = np.where(remaining, s * decay, s)
        dropped = remaining & (s < score_threshold)
        s[dropped] = 0
        remaining &= ~dropped
    return s, np.asarray(order, np.int64)


def clustered(rng, n, n_obj, n_cls=4, size=300.0):
    centre = rng.uniform(0, size, (n_obj, 2))
    wh = rng.uniform(10, 80, (n_obj, 2))
    k = rng.integers(0, n_obj, n)
    c = centre[k] + rng.normal(0, 0.1, (n, 2)) * wh[k]
    s = wh[k] * np.exp(rng.normal(0, 0.15, (n, 2)))
    boxes = np.concatenate([c - s / 2, c + s / 2], 1).astype(np.float32)
    scores = (rng.permutation(n).astype(np.float32) + 1) / n
    return boxes, scores, rng.integers(0, n_cls, n).astype(np.int32)


def unpad(indices, num_valid):
    indices, num_valid = np.asarray(indices), int(num_valid)
    assert (indices[num_valid:] == -1).all(), "padding must be -1"
    assert (indices[:num_valid] >= 0).all()
    return indices[:num_valid]


# ------------------------------------------------------------------------------------------ parity


@pytest.mark.parametrize("n", [1, 7, 64, 65, 150])
@pytest.mark.parametrize("thr", [0.0, 0.3, 0.5, 0.8])
def test_nms_matches_reference(n, thr, algorithm):
    boxes, scores, _ = clustered(np.random.default_rng(n), n, max(1, n // 10))
    idx, num = ops.nms(boxes, scores, iou_threshold=thr)
    assert idx.shape == (n,) and idx.dtype == jnp.int32 and num.dtype == jnp.int32
    np.testing.assert_array_equal(unpad(idx, num), np_nms(boxes, scores, thr))


@pytest.mark.parametrize("thr", [0.2, 0.5, 0.7])
def test_batched_nms_matches_reference(thr, algorithm):
    boxes, scores, cls = clustered(np.random.default_rng(11), 150, 12)
    idx, num = ops.batched_nms(boxes, scores, cls, iou_threshold=thr)
    want = np_nms(boxes, scores, thr, idxs=cls)
    want = want[np.argsort(-scores[want], kind="stable")]  # all classes together, by score
    np.testing.assert_array_equal(unpad(idx, num), want)


@pytest.mark.parametrize("score_threshold", [0.3, 0.9])
def test_batched_nms_score_threshold_is_nms_of_the_boxes_above_it(score_threshold, algorithm):
    boxes, scores, cls = clustered(np.random.default_rng(12), 150, 12)
    above = np.flatnonzero(scores > score_threshold)
    want = np_nms(boxes[above], scores[above], 0.5, idxs=cls[above])
    want = above[want[np.argsort(-scores[above][want], kind="stable")]]
    idx, num = ops.batched_nms(boxes, scores, cls, iou_threshold=0.5, max_output_size=60,
                               score_threshold=score_threshold)
    np.testing.assert_array_equal(unpad(idx, num), want[:60])
    with pytest.raises(ValueError, match="score_threshold: expected a scalar"):
        ops.batched_nms(boxes, scores, cls, 0.5, score_threshold=np.array([0.1, 0.2]))


@pytest.mark.parametrize("n_cls", [1, 3, 40])
def test_batched_nms_class_grouping_edge_cases(n_cls, algorithm):
    """Classes grouped in tiles (runs crossing tile edges, many tiny classes, one class), arbitrary int32
    class ids, NaN scores, tied scores and a max_output_size below the kept count (top kept by score)."""
    rng = np.random.default_rng(20 + n_cls)
    boxes, scores, _ = clustered(rng, 230, 9)
    ids = np.array([-(2**31), -7, 0, 5, 2**31 - 1] + list(range(100, 135)), np.int32)[:n_cls]
    cls = ids[rng.integers(0, n_cls, 230)]
    scores[rng.random(230) < 0.1] = np.nan
    scores[:40] = 0.5  # ties: lower index first
    want = np_nms(boxes, scores, 0.4, idxs=cls)
    want = want[np.argsort(-scores[want], kind="stable")]
    np.testing.assert_array_equal(unpad(*ops.batched_nms(boxes, scores, cls, iou_threshold=0.4)), want)
    np.testing.assert_array_equal(unpad(*ops.batched_nms(boxes, scores, cls, 0.4, max_output_size=17)), want[:17])
    # vmapped (batch-wide branch choices): this image next to one with small ids and no ties
    boxes2, scores2, cls2 = clustered(rng, 230, 9)
    f = jax.jit(jax.vmap(lambda b, s, c: ops.batched_nms(b, s, c, 0.4, max_output_size=60)))
    idx, num = f(np.stack([boxes, boxes2]), np.stack([scores, scores2]), np.stack([cls, cls2]))
    want2 = np_nms(boxes2, scores2, 0.4, idxs=cls2)
    want2 = want2[np.argsort(-scores2[want2], kind="stable")]
    np.testing.assert_array_equal(unpad(idx[0], num[0]), want[:60])
    np.testing.assert_array_equal(unpad(idx[1], num[1]), want2[:60])


def test_golden_torchvision(algorithm):
    d = np.load(GOLDEN)
    for case in d["nms_cases"]:
        boxes, scores, cls = (d[f"nms_{case}_{k}"] for k in ("boxes", "scores", "idxs"))
        for thr in d["thresholds"]:
            idx, num = ops.nms(boxes, scores, iou_threshold=float(thr))
            np.testing.assert_array_equal(np.asarray(idx), d[f"nms_{case}_keep_{thr}"], err_msg=f"{case} {thr}")
            idx, num = ops.batched_nms(boxes, scores, cls, iou_threshold=float(thr))
            np.testing.assert_array_equal(np.asarray(idx), d[f"nms_{case}_bkeep_{thr}"], err_msg=f"{case} {thr}")


def test_live_torchvision_parity(algorithm):
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision.ops")
    rng = np.random.default_rng(5)
    boxes, scores, cls = clustered(rng, 300, 20)
    ib = np.round(boxes / 4) * 4  # integer grid: many IoUs exactly on the threshold
    ib[:, 2:] = np.maximum(ib[:, 2:], ib[:, :2] + 4)
    for b in (boxes, ib.astype(np.float32)):
        for thr in (0.25, 0.5, 0.6, 0.75, 0.9):
            want = tv.nms(torch.from_numpy(b), torch.from_numpy(scores), thr).numpy()
            np.testing.assert_array_equal(unpad(*ops.nms(b, scores, iou_threshold=thr)), want)
            want = tv.batched_nms(torch.from_numpy(b), torch.from_numpy(scores), torch.from_numpy(cls).long(), thr)
            np.testing.assert_array_equal(unpad(*ops.batched_nms(b, scores, cls, iou_threshold=thr)), want.numpy())


def test_threshold_compares_like_cpp_double(algorithm):
    """IoU exactly 1/3 in float32 (0.33333334) vs threshold 1/3 as a double: 0.33333334 > 0.3333333333 keeps
    torchvision suppressing, although float32(1/3) == the float32 IoU."""
    boxes = np.array([[0, 0, 2, 1], [1, 0, 3, 1]], np.float32)  # inter 1, union 3
    idx, num = ops.nms(boxes, np.array([0.9, 0.8], np.float32), iou_threshold=1 / 3)
    assert float(np.float32(1) / np.float32(3)) > 1 / 3  # the float32 IoU is above the double threshold
    assert int(num) == 1
    idx, num = ops.nms(boxes, np.array([0.9, 0.8], np.float32), iou_threshold=0.3333334)
    assert int(num) == 2


# ---------------------------------------------------------------------------------------- properties


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(*[st.integers(0, 40)] * 4, st.floats(0, 1, width=32, allow_nan=False)), min_size=24, max_size=24
    ),
    st.sampled_from([0.1, 0.3, 0.5, 0.7]),
)
def test_nms_properties(algorithm, rows, thr):
    arr = np.asarray(rows, np.float64)
    x1, y1 = np.minimum(arr[:, 0], arr[:, 2]), np.minimum(arr[:, 1], arr[:, 3])
    boxes = np.stack([x1, y1, x1 + np.abs(arr[:, 2] - arr[:, 0]) + 1, y1 + np.abs(arr[:, 3] - arr[:, 1]) + 1], 1)
    boxes = boxes.astype(np.float32)
    scores = arr[:, 4].astype(np.float32)
    idx, num = ops.nms(boxes, scores, iou_threshold=thr)
    kept = unpad(idx, num)
    assert len(set(kept.tolist())) == len(kept)
    assert (np.diff(scores[kept]) <= 0).all()  # decreasing score order
    for a in range(len(kept)):  # no two kept boxes overlap above the threshold
        assert not (np_iou32(boxes[kept[a]], boxes[kept[a + 1 :]]) > thr).any()
    rank = {int(i): r for r, i in enumerate(np.argsort(-scores, kind="stable"))}
    for d in set(range(len(boxes))) - set(kept.tolist()):  # each dropped box has a higher-ranked kept suppressor
        sup = [k for k in kept if rank[int(k)] < rank[d]]
        assert sup and (np_iou32(boxes[d], boxes[sup]).astype(np.float64) > thr).any()


# ------------------------------------------------------------------------------------- edge cases


def test_nan_scores_never_kept_and_score_threshold(algorithm):
    boxes, scores, _ = clustered(np.random.default_rng(3), 40, 4)
    scores[[0, 5, 9]] = np.nan
    idx, num = ops.nms(boxes, scores, iou_threshold=0.5)
    kept = unpad(idx, num)
    assert not set(kept.tolist()) & {0, 5, 9}
    np.testing.assert_array_equal(kept, np_nms(boxes, scores, 0.5))
    idx, num = ops.nms(boxes, scores, iou_threshold=0.5, score_threshold=0.5)
    np.testing.assert_array_equal(unpad(idx, num), np_nms(boxes, scores, 0.5, score_threshold=0.5))
    all_nan = np.full(40, np.nan, np.float32)
    idx, num = ops.nms(boxes, all_nan, iou_threshold=0.5)
    assert int(num) == 0 and (np.asarray(idx) == -1).all()


def test_zero_boxes_and_output_sizes(algorithm):
    e, es = np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
    idx, num = ops.nms(e, es, 0.5)
    assert idx.shape == (0,) and int(num) == 0
    idx, num = ops.batched_nms(e, es, np.zeros((0,), np.int32), 0.5, max_output_size=3)
    np.testing.assert_array_equal(idx, [-1, -1, -1])
    boxes, scores, _ = clustered(np.random.default_rng(4), 50, 5)
    want = np_nms(boxes, scores, 0.5)
    idx, num = ops.nms(boxes, scores, iou_threshold=0.5, max_output_size=3)
    assert idx.shape == (3,) and int(num) == 3
    np.testing.assert_array_equal(idx, want[:3])
    idx, num = ops.nms(boxes, scores, iou_threshold=0.5, max_output_size=80)
    assert idx.shape == (80,)
    np.testing.assert_array_equal(unpad(idx, num), want)


def test_zero_area_and_identical_boxes(algorithm):
    boxes = np.array([[5, 5, 5, 5], [5, 5, 5, 5], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 0, 0]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5], np.float32)
    idx, num = ops.nms(boxes, scores, iou_threshold=0.5)
    np.testing.assert_array_equal(unpad(idx, num), [0, 1, 2, 4])  # zero-area boxes never suppress (IoU 0)


def test_batched_nms_bfloat16_large_coordinates_no_offset_trick(algorithm):
    """Two classes of identical large boxes: an offset trick would collide in bf16; masking by class doesn't."""
    boxes = np.array([[4000, 4000, 4096, 4096]] * 4 + [[4000, 4000, 4064, 4064]] * 2, np.float32)
    cls = np.array([0, 1, 2, 3, 0, 1], np.int32)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], np.float32)
    for dt in (jnp.bfloat16, jnp.float16):
        idx, num = ops.batched_nms(jnp.asarray(boxes, dt), jnp.asarray(scores, dt), cls, 0.3)
        np.testing.assert_array_equal(unpad(idx, num), [0, 1, 2, 3])
        idx, num = ops.batched_nms(jnp.asarray(boxes, dt), jnp.asarray(scores, dt), cls, 0.7)
        np.testing.assert_array_equal(unpad(idx, num), [0, 1, 2, 3, 4, 5])


def test_tied_scores_keep_lower_index_first(algorithm):
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [51, 50, 61, 60]], np.float32)
    scores = np.array([0.5, 0.5, 0.5, 0.5], np.float32)
    idx, num = ops.nms(boxes, scores, iou_threshold=0.5)
    np.testing.assert_array_equal(unpad(idx, num), [0, 2])


# -------------------------------------------------------------------------------------- transforms


def test_vmap_over_images_matches_loop(algorithm):
    rng = np.random.default_rng(8)
    data = [clustered(rng, 120, 10) for _ in range(3)]
    boxes, scores, cls = (np.stack(x) for x in zip(*data))
    scores[1, :100] = np.nan  # images with very different amounts of work
    f = jax.jit(jax.vmap(lambda b, s: ops.nms(b, s, 0.45, max_output_size=50)))
    idx, num = f(boxes, scores)
    g = jax.jit(jax.vmap(lambda b, s, c: ops.batched_nms(b, s, c, 0.45)))
    bidx, bnum = g(boxes, scores, cls)
    for i in range(3):
        np.testing.assert_array_equal(unpad(idx[i], num[i]), np_nms(boxes[i], scores[i], 0.45)[:50])
        want = np_nms(boxes[i], scores[i], 0.45, idxs=cls[i])
        np.testing.assert_array_equal(unpad(bidx[i], bnum[i]), want[np.argsort(-scores[i][want], kind="stable")])
    # nested vmap and a traced threshold also work (generic batching of the batched loops)
    nested = jax.jit(jax.vmap(jax.vmap(lambda b, s, t: ops.nms(b, s, t)[1], (None, None, 0)), (0, 0, None)))
    counts = nested(boxes, scores, jnp.asarray([0.3, 0.6]))
    for i in range(3):
        assert [int(c) for c in counts[i]] == [len(np_nms(boxes[i], scores[i], t)) for t in (0.3, 0.6)]


def test_grad_through_selection_is_defined(algorithm):
    boxes, scores, _ = clustered(np.random.default_rng(9), 30, 3)

    def loss(b, s):
        idx, num = ops.nms(b, s, 0.5, max_output_size=10)
        w = (jnp.arange(10) < num).astype(b.dtype)
        return jnp.sum(s[idx] * w) + jnp.sum(b[idx] * w[:, None])

    gb, gs = jax.jit(jax.grad(loss, argnums=(0, 1)))(boxes, scores)
    assert np.isfinite(np.asarray(gb)).all() and np.isfinite(np.asarray(gs)).all()
    assert float(jnp.abs(gs).sum()) > 0


# ---------------------------------------------------------------------------------------- soft-NMS


@pytest.mark.parametrize("method", ["gaussian", "linear"])
def test_soft_nms_matches_reference(method):
    boxes, scores, _ = clustered(np.random.default_rng(12), 60, 6)
    order, num, s = jax.jit(ops.soft_nms, static_argnames=("method",))(boxes, scores, 0.5, 0.3, method, 0.05)
    want_s, want_order = np_soft_nms(boxes, scores, 0.5, 0.3, method, 0.05)
    n = len(want_order)
    assert num.dtype == jnp.int32 and int(num) == n
    np.testing.assert_array_equal(unpad(order, num), want_order)
    np.testing.assert_allclose(s, want_s, rtol=1e-5, atol=1e-7)
    kept_scores = np.asarray(s)[want_order]
    assert (np.diff(kept_scores) <= 1e-7).all()  # selection order is non-increasing in updated score


def test_soft_nms_linear_below_threshold_is_untouched_and_empty_input():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]], np.float32)
    order, num, s = ops.soft_nms(boxes, np.array([0.9, 0.8, 0.7], np.float32), iou_threshold=0.4, method="linear")
    np.testing.assert_allclose(s, [0.9, 0.8, 0.7])  # IoU 1/3 <= 0.4: no decay
    np.testing.assert_array_equal(order, [0, 1, 2])
    order, num, s = ops.soft_nms(boxes, np.array([0.9, 0.8, 0.7], np.float32), iou_threshold=0.3, method="linear")
    np.testing.assert_allclose(s, [0.9, 0.8 * (1 - 1 / 3), 0.7], rtol=1e-6)
    order, num, s = ops.soft_nms(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))
    assert s.shape == (0,) and order.shape == (0,) and int(num) == 0


# -------------------------------------------------------------------------------------- bad inputs


def test_bad_inputs(algorithm):
    b, s = np.zeros((5, 4), np.float32), np.zeros((5,), np.float32)
    cases = [
        (lambda: ops.nms(np.zeros((5,)), s, 0.5), r"boxes: expected \[N, 4\], got shape \(5,\)"),
        (lambda: ops.nms(np.zeros((5, 5)), s, 0.5), r"boxes: expected shape \[N, 4\], got \(5, 5\)"),
        (lambda: ops.nms(np.zeros((2, 5, 4)), s, 0.5), r"boxes: expected \[N, 4\]"),
        (lambda: ops.nms(b, np.zeros((4,)), 0.5), r"boxes and scores: expected matching leading dims"),
        (lambda: ops.nms(b, np.zeros((5, 1)), 0.5), r"scores: expected \[N\]"),
        (lambda: ops.nms(b, s, -0.1), r"iou_threshold: expected a finite value >= 0, got -0.1"),
        (lambda: ops.nms(b, s, float("nan")), r"iou_threshold: expected a finite value >= 0"),
        (lambda: ops.nms(b, s, 0.5, max_output_size=0), r"max_output_size: expected an int > 0, got 0"),
        (lambda: ops.nms(b, s, 0.5, max_output_size=2.5), r"max_output_size: expected a static int > 0"),
        (lambda: ops.batched_nms(b, s, np.zeros((4,), np.int32), 0.5), r"boxes and idxs: expected matching"),
        (lambda: ops.batched_nms(b, s, np.zeros((5,), np.float32), 0.5), r"idxs: expected an integer array"),
        (lambda: ops.soft_nms(b, s, method="hard"), r"method: expected one of \('gaussian', 'linear'\)"),
        (lambda: ops.soft_nms(b, s, sigma=0.0), r"sigma: expected a scalar > 0"),
        (lambda: suppression.nms(b, s, 0.5, algorithm="cuda"), r"algorithm: expected one of"),
    ]
    for call, msg in cases:
        with pytest.raises(ValueError, match=msg):
            call()


# ------------------------------------------------------------------------------------ 100k boxes


def test_100k_boxes_peak_memory_under_2gb():
    """Runs in a fresh interpreter and reads its own peak RSS (~0.3 GB here, JAX included).

    Linux carries ru_maxrss across fork+exec (a child of a large pytest worker reports the worker's size), so
    the peak is read from /proc/self/status VmHWM, which belongs to the new address space; ru_maxrss elsewhere.

    ~5 s of CPU: 100,000 uniformly spread boxes keep ~58,000, i.e. ~3e9 IoU pairs through the tiled loop."""
    script = textwrap.dedent(
        """
        import resource, numpy as np, jax
        from jaxvision import ops
        rng = np.random.default_rng(0)
        n = 100_000
        xy = rng.uniform(0, 2000, (n, 2)); wh = rng.uniform(10, 60, (n, 2))
        boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        scores = rng.random(n).astype(np.float32)
        idx, num = jax.jit(lambda b, s: ops.nms(b, s, 0.5, max_output_size=n))(boxes, scores)
        num = int(num); idx = np.asarray(idx)
        kept = idx[:num]
        assert num > 1000 and (idx[num:] == -1).all() and len(np.unique(kept)) == num
        assert (np.diff(scores[kept]) <= 0).all()
        try:
            peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
        except OSError:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(num, peak)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env={"PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "PATH": ""},
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    num, peak_kb = map(int, out.stdout.split())
    assert peak_kb < 2 * 1024 * 1024, f"peak RSS {peak_kb / 1024:.0f} MB"


def test_fixed_point_100k_boxes_compiled_memory_under_2gb():
    """The accelerator path at 100,000 boxes: XLA's own memory analysis of the compiled program (arguments,
    outputs and temporaries; the packed overlap matrix is 1.25 GB) stays under 2 GB. Compiled, not run (1e10
    IoUs take minutes on 2 CPU cores)."""
    n = 100_000
    f = jax.jit(lambda b, s: ops.nms(b, s, 0.5, algorithm="fixed_point"))
    spec = (jax.ShapeDtypeStruct((n, 4), jnp.float32), jax.ShapeDtypeStruct((n,), jnp.float32))
    mem = f.lower(*spec).compile().memory_analysis()
    total = mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
    assert 1.2e9 < total < 2 * 1024**3, f"{total / 2**30:.2f} GiB"  # the matrix is there, and nothing N x N wider


def suppression_chain_depth(boxes, scores, thr):
    """Longest chain of greedy decisions: depth(j) = 1 + the depth of what decides j (the earliest-settled kept
    box suppressing it, or else the latest-settled of its earlier overlapping boxes)."""
    order = np.argsort(-scores, kind="stable")
    keep = np.zeros(len(order), bool)
    depth = np.zeros(len(order), np.int64)
    for r, j in enumerate(order):
        earlier = order[:r]
        over = earlier[np_iou32(boxes[j], boxes[earlier]) > thr] if r else earlier
        killers = over[keep[over]]
        keep[j] = not len(killers)
        depth[j] = 1 + (depth[killers].min() if len(killers) else depth[over].max(initial=0))
    return int(depth.max())


def test_fixed_point_trips_follow_the_suppression_chain():
    """The proxy for GPU time: sequential loop trips of one fixed-point nms call are <= 2 x chain depth + 2
    (in fact about (depth + 2) / unroll + 1), and the iteration stops as soon as it converges."""
    from jaxvision.ops.suppression_fixed_point import fixed_point_nms

    rng = np.random.default_rng(2)
    for n, unroll in ((300, 1), (300, 4), (700, 2)):
        boxes, scores, _ = clustered(rng, n, n // 20)
        depth = suppression_chain_depth(boxes, scores, 0.5)
        args = (boxes[None], scores[None], jnp.zeros((1, n), jnp.int32), jnp.ones((1, n), bool), jnp.full((1,), 0.5))
        idx, num, trips = fixed_point_nms(*args, n_out=n, with_class=False, unroll=unroll, return_trips=True)
        np.testing.assert_array_equal(unpad(idx[0], num[0]), np_nms(boxes, scores, 0.5))
        assert int(trips) <= 2 * depth + 2
        assert int(trips) <= -(-(depth + 2) // unroll) + 1, (n, unroll, depth, int(trips))


def test_fixed_point_row_blocks_match_one_block(monkeypatch):
    """Large problems build the suppressor matrix in lower-triangular row blocks (bounded temporaries, half the
    pairs) and read it in row blocks: same bits and same kept boxes as one block."""
    from jaxvision.ops import suppression_fixed_point as fp

    boxes, scores, cls = clustered(np.random.default_rng(6), 333, 30)
    packed = jnp.concatenate([boxes, jax.lax.bitcast_convert_type(cls, jnp.float32)[:, None]], 1)[None]
    n_valid, thr = jnp.array([300]), jnp.array([0.4], jnp.float32)
    whole = fp.suppressor_matrix(jnp.pad(packed, ((0, 0), (0, 19), (0, 0))), n_valid, thr, True)  # P = 352
    monkeypatch.setattr(fp, "BLOCK_PAIRS", 64 * 384)
    assert fp.padded_size(333) == (384, 64)  # 6 blocks of 64 rows
    blocked = fp.suppressor_matrix(jnp.pad(packed, ((0, 0), (0, 51), (0, 0))), n_valid, thr, True)
    assert whole.shape == (1, 352, 11) and blocked.shape == (1, 384, 12) and int(jnp.sum(whole != 0)) > 0
    np.testing.assert_array_equal(blocked[:, :352, :11], whole)
    assert not np.asarray(blocked[:, 352:]).any() and not np.asarray(blocked[:, :, 11:]).any()
    monkeypatch.setattr(fp, "STEP_BLOCK_WORDS", 1)  # and fixed-point steps reading the matrix in row blocks
    for n in (333, 40):  # 40 boxes: P = 64, so some of the 4 step blocks are empty
        idx, num = ops.batched_nms(boxes[:n], scores[:n], cls[:n], 0.4, algorithm="fixed_point")
        want = np_nms(boxes[:n], scores[:n], 0.4, idxs=cls[:n])
        np.testing.assert_array_equal(unpad(idx, num), want[np.argsort(-scores[want], kind="stable")])


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="checks the CPU's choice")
def test_auto_algorithm_is_the_tiled_one_on_cpu():
    """'auto' lowers only the CPU path on the CPU (no packed N x N/32 matrix in the program)."""
    n = 20_000
    spec = (jax.ShapeDtypeStruct((n, 4), jnp.float32), jax.ShapeDtypeStruct((n,), jnp.float32))
    mem = {a: jax.jit(lambda b, s, a=a: ops.nms(b, s, 0.5, algorithm=a)).lower(*spec).compile().memory_analysis()
           for a in ("auto", "tiled", "fixed_point")}
    assert mem["auto"].temp_size_in_bytes == mem["tiled"].temp_size_in_bytes
    assert mem["fixed_point"].temp_size_in_bytes > n * n / 8


@pytest.mark.parametrize("bit_step_max", [0, 10**6])
def test_fixed_point_step_forms_agree(bit_step_max, monkeypatch):
    """Small problems reduce the unpacked bits in one fusion per step, larger ones AND packed words: forcing
    either form gives the greedy answer (batched, max_output_size shorter and longer than N, NaN scores)."""
    from jaxvision.ops import suppression_fixed_point as fp

    monkeypatch.setattr(fp, "BIT_STEP_MAX_BOXES", bit_step_max)
    rng = np.random.default_rng(13)
    for n, n_out, with_class in ((1, 6, False), (37, 5, True), (300, 305, True), (300, 300, False)):
        boxes, scores, cls = clustered(rng, n, max(1, n // 10))
        scores[:2] = np.nan
        args = (boxes[None], scores[None], cls[None], jnp.ones((1, n), bool), jnp.full((1,), 0.5, jnp.float32))
        idx, num = fp.fixed_point_nms(*args, n_out=n_out, with_class=with_class)
        want = np_nms(boxes, scores, 0.5, idxs=cls if with_class else None)
        want = want[np.argsort(-scores[want], kind="stable")][:n_out]
        np.testing.assert_array_equal(unpad(idx[0], num[0]), want)
