"""roi_align / roi_pool: NumPy loop references, torchvision golden fixtures (values and feature gradients),
jit / vmap / grad, dtypes, static-shape bounds and bad inputs."""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.ops import roi, roi_align, roi_pool

FIX = pathlib.Path(__file__).parent / "fixtures"
F32 = np.float32

# One compile per static configuration (spatial_scale stays traced), to keep the suite's CPU time small.
align = jax.jit(roi_align, static_argnames=("output_size", "sampling_ratio", "aligned", "max_sampling_ratio"))
pool = jax.jit(roi_pool, static_argnames=("output_size", "max_bin_size"))


# ------------------------------------------------------------------ NumPy references (float32 scalar math, loops)


def _bilinear(plane, y, x):
    """torchvision's bilinear_interpolate on one [H, W, C] plane; returns [C]."""
    h, w = plane.shape[:2]
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return np.zeros(plane.shape[-1], F32)
    y, x = max(y, F32(0)), max(x, F32(0))
    y0, x0 = int(y), int(x)
    if y0 >= h - 1:
        y0 = y1 = h - 1
        y = F32(y0)
    else:
        y1 = y0 + 1
    if x0 >= w - 1:
        x0 = x1 = w - 1
        x = F32(x0)
    else:
        x1 = x0 + 1
    ly, lx = F32(y - y0), F32(x - x0)
    hy, hx = F32(1) - ly, F32(1) - lx
    return hy * hx * plane[y0, x0] + hy * lx * plane[y0, x1] + ly * hx * plane[y1, x0] + ly * lx * plane[y1, x1]


def ref_roi_align(features, boxes, box_indices, out_size, scale, sampling_ratio, aligned):
    oh, ow = out_size
    out = np.zeros((len(boxes), oh, ow, features.shape[-1]), np.float64)
    off = F32(0.5) if aligned else F32(0)
    for k, (box, n) in enumerate(zip(boxes, box_indices)):
        x1, y1, x2, y2 = (F32(v) * F32(scale) - off for v in box)
        rw, rh = F32(x2 - x1), F32(y2 - y1)
        if not aligned:
            rw, rh = max(rw, F32(1)), max(rh, F32(1))
        bh, bw = F32(rh / F32(oh)), F32(rw / F32(ow))
        gh = sampling_ratio if sampling_ratio > 0 else int(np.ceil(rh / F32(oh)))
        gw = sampling_ratio if sampling_ratio > 0 else int(np.ceil(rw / F32(ow)))
        count = max(gh * gw, 1)
        for p in range(oh):
            for q in range(ow):
                acc = np.zeros(features.shape[-1], np.float64)
                for iy in range(gh):
                    y = F32(y1 + F32(p) * bh) + F32(F32(F32(iy + 0.5) * bh) / F32(gh))
                    for ix in range(gw):
                        x = F32(x1 + F32(q) * bw) + F32(F32(F32(ix + 0.5) * bw) / F32(gw))
                        acc += _bilinear(features[n], y, x)
                out[k, p, q] = acc / count
    return out


def ref_roi_pool(features, boxes, box_indices, out_size, scale):
    oh, ow = out_size
    h, w = features.shape[1:3]
    out = np.zeros((len(boxes), oh, ow, features.shape[-1]), np.float32)

    def rnd(v):  # std::round, half away from zero
        return int(np.sign(v) * np.floor(abs(v) + 0.5))

    for k, (box, n) in enumerate(zip(boxes, box_indices)):
        x1, y1, x2, y2 = (rnd(F32(v) * F32(scale)) for v in box)
        bh, bw = F32(max(y2 - y1 + 1, 1)) / F32(oh), F32(max(x2 - x1 + 1, 1)) / F32(ow)
        for p in range(oh):
            hs = min(max(int(np.floor(F32(p) * bh)) + y1, 0), h)
            he = min(max(int(np.ceil(F32(p + 1) * bh)) + y1, 0), h)
            for q in range(ow):
                ws = min(max(int(np.floor(F32(q) * bw)) + x1, 0), w)
                we = min(max(int(np.ceil(F32(q + 1) * bw)) + x1, 0), w)
                if he > hs and we > ws:
                    out[k, p, q] = features[n, hs:he, ws:we].max(axis=(0, 1))
    return out


def _inputs(seed=0, k=12, n=2, h=7, w=9, c=3, span=40.0):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, h, w, c)).astype(np.float32)
    xy = rng.uniform(-5, span, size=(k, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(-1, span / 2, size=(k, 2))], 1).astype(np.float32)
    boxes[:3] = np.round(boxes[:3])
    return features, boxes, rng.integers(0, n, k).astype(np.int32)


# ------------------------------------------------------------------------------------------- NumPy parity


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 1, 2, 3])
def test_roi_align_matches_numpy_reference(sampling_ratio, aligned):
    f, b, i = _inputs()
    got = align(f, b, i, output_size=(2, 3), spatial_scale=0.25, sampling_ratio=sampling_ratio, aligned=aligned,
                max_sampling_ratio=16)
    want = ref_roi_align(f, b, i, (2, 3), 0.25, sampling_ratio, aligned)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scale", [1.0, 0.5, 0.25])
def test_roi_pool_matches_numpy_reference(scale):
    f, b, i = _inputs(seed=1)
    got = pool(f, b, i, output_size=(3, 2), spatial_scale=scale, max_bin_size=9)
    np.testing.assert_array_equal(np.asarray(got), ref_roi_pool(f, b, i, (3, 2), scale))


def test_roi_pool_bin_edge_needs_true_division():
    # roi height 7 in 3 bins: ceil(3 * fl(7/3)) must be 7, not 8 (XLA's reciprocal-multiply gives 7.0000005).
    f = np.arange(2 * 11 * 13 * 1, dtype=np.float32).reshape(2, 11, 13, 1)
    boxes = np.tile(np.array([[0.0, -1.0, 4.0, 5.0]], np.float32), (64, 1))  # many boxes: vectorised path
    got = pool(f, boxes, np.zeros(64, np.int32), output_size=(3, 1))
    np.testing.assert_array_equal(np.asarray(got), ref_roi_pool(f, boxes, np.zeros(64, np.int32), (3, 1), 1.0))


# ------------------------------------------------------------------------------ torchvision golden fixtures

ALIGN = np.load(FIX / "roi_align.npz")
POOL = np.load(FIX / "roi_pool.npz")


def _align_and_grads(f, b, i, g, scales, ratios):
    """torchvision-fixture configurations: the sampling ratios x aligned modes, vmapped over the scales."""
    res = {}
    for sr in ratios:
        for aligned in (False, True):

            def fn(f, scale):
                return roi_align(f, b, i, (3, 4), scale, sr, aligned, max_sampling_ratio=64)

            def out_grad(scale):
                out, vjp = jax.vjp(lambda f: fn(f, scale), f)
                return out, vjp(g)[0]

            res[(sr, aligned)] = jax.vmap(out_grad)(scales)
    return res


SCALES = (1.0, 0.5, 0.25)


def one_block_as_on_accelerators():
    """Trace with every RoI in one block, as ``roi`` runs on GPU/TPU (``lax.platform_dependent``), so the CPU
    suite checks the accelerator blocking too. Restores the CPU block size on exit (a fresh ``jax.jit`` must be
    traced inside: compiled programs keep the block size they were traced with)."""
    saved = roi._CHUNK
    roi._CHUNK = 10**9
    return saved


# Every configuration with the CPU's blocks; the accelerators' one-block form on adaptive and fixed sampling (the
# blocking is independent of the sampling arithmetic, and each configuration costs seconds of compilation).
RATIOS = {"cpu_blocks": (-1, 0, 1, 2, 3), "one_block": (-1, 2)}
_ALIGN_RESULTS = {}


def align_results(blocks):
    """Outputs and feature gradients of every fixture configuration, computed once per blocking."""
    if blocks not in _ALIGN_RESULTS:
        f, b, i, g = (jnp.asarray(ALIGN[n]) for n in ("features", "boxes", "box_indices", "grad_out"))
        saved = one_block_as_on_accelerators() if blocks == "one_block" else roi._CHUNK
        try:
            run = jax.jit(_align_and_grads, static_argnums=5)
            _ALIGN_RESULTS[blocks] = jax.device_get(run(f, b, i, g, jnp.asarray(SCALES, jnp.float32), RATIOS[blocks]))
        finally:
            roi._CHUNK = saved
    return _ALIGN_RESULTS[blocks]


@pytest.mark.parametrize(
    "blocks,sampling_ratio,aligned",
    [(blocks, sr, aligned) for blocks, ratios in RATIOS.items() for sr in ratios for aligned in (False, True)],
)
def test_roi_align_golden_values_and_grads(blocks, sampling_ratio, aligned):
    outs, grads = align_results(blocks)[(sampling_ratio, aligned)]
    for s, scale in enumerate(SCALES):
        key = f"s{scale}_r{sampling_ratio}_a{int(aligned)}"
        np.testing.assert_allclose(outs[s], ALIGN[f"out_{key}"], rtol=1e-5, atol=2e-6, err_msg=key)
        np.testing.assert_allclose(grads[s], ALIGN[f"grad_{key}"], rtol=1e-5, atol=2e-5, err_msg=key)


@pytest.mark.parametrize("blocks", ["cpu_blocks", "one_block"])
def test_roi_pool_golden_values_and_grads(blocks, monkeypatch):
    f, b, i, g = (jnp.asarray(POOL[n]) for n in ("features", "boxes", "box_indices", "grad_out"))
    if blocks == "one_block":
        monkeypatch.setattr(roi, "_CHUNK", 10**9)

    @jax.jit
    def out_grad(scale):
        out, vjp = jax.vjp(lambda f: roi_pool(f, b, i, (3, 4), scale, max_bin_size=11), f)
        return out, vjp(g)[0]

    for scale in SCALES:
        out, grad = out_grad(scale)
        np.testing.assert_array_equal(np.asarray(out), POOL[f"out_s{scale}"])
        np.testing.assert_allclose(np.asarray(grad), POOL[f"grad_s{scale}"], rtol=1e-6, atol=1e-5)


def test_accelerator_block_size_bounds_the_gathered_values():
    """Accelerators take all RoIs at once unless the block's gathered values would pass 2^30 (fused kernels
    index with 32-bit integers): 4,096 RoIs at 7x7, 2x2 samples, 256 channels fit; the adaptive bound of a
    100 px map (16 samples per axis) does not."""
    per_roi = lambda g: 7 * 2 * g * 7 * 2 * g * 256  # noqa: E731
    assert roi.accel_block_rois(4096, per_roi(2)) == 4096
    assert roi.accel_block_rois(4096, per_roi(16)) == 2**30 // per_roi(16) == 83
    assert roi.accel_block_rois(0, per_roi(2)) == 1 and roi.accel_block_rois(5, 2**31) == 1


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="checks the CPU's choice")
def test_accelerator_blocking_is_chosen_by_platform():
    """On the CPU the compiled program loops over blocks of RoIs; compiled for the same shapes with one block
    (the accelerator choice) it has no loop."""
    f, b, i, _ = (jnp.asarray(ALIGN[n]) for n in ("features", "boxes", "box_indices", "grad_out"))
    cpu = jax.jit(lambda f: roi_align(f, b, i, 2, 0.25, 2)).lower(f).compile().as_text()
    saved = one_block_as_on_accelerators()
    try:
        one = jax.jit(lambda f: roi_align(f, b, i, 2, 0.25, 2)).lower(f).compile().as_text()
    finally:
        roi._CHUNK = saved
    assert " while(" in cpu and " while(" not in one


def test_default_bounds_exact_for_boxes_inside_image():
    f, b, i = (ALIGN[n] for n in ("features", "boxes", "box_indices"))
    h, w = f.shape[1:3]
    for scale in (0.25,):  # the fixture's 44 x 36 px image
        img = np.array([w, h, w, h], np.float32) / scale
        inside = np.all((b >= 0) & (b <= img), axis=1) & (b[:, 2] >= b[:, 0]) & (b[:, 3] >= b[:, 1])
        assert inside.sum() >= 5
        for aligned in (False, True):
            got = align(f, b, i, output_size=(3, 4), spatial_scale=scale, aligned=aligned)
            want = ALIGN[f"out_s{scale}_r-1_a{int(aligned)}"]
            np.testing.assert_allclose(np.asarray(got)[inside], want[inside], rtol=1e-5, atol=2e-6)
        pooled = np.asarray(pool(f, b, i, output_size=(3, 4), spatial_scale=scale))
        np.testing.assert_array_equal(pooled[inside], POOL[f"out_s{scale}"][inside])


def test_adaptive_bound_caps_samples_for_huge_boxes():
    # A box 4x larger than the map needs ceil(4 * 9 / 3) = 12 samples per bin; a bound of 2 averages 2 x 2.
    f = np.random.default_rng(0).normal(size=(1, 9, 9, 2)).astype(np.float32)
    b = np.array([[-13.5, -13.5, 22.5, 22.5]], np.float32)
    i = np.zeros(1, np.int32)
    capped = align(f, b, i, output_size=3, sampling_ratio=-1, aligned=True, max_sampling_ratio=2)
    fixed = align(f, b, i, output_size=3, sampling_ratio=2, aligned=True)
    np.testing.assert_allclose(np.asarray(capped), np.asarray(fixed))


# ------------------------------------------------------------------------------- transformations, dtypes


def test_jit_vmap_and_box_gradients():
    f, b, i = _inputs(seed=2, k=6)
    fb = np.stack([f, f[::-1]])  # [B, N, H, W, C]
    bb = np.stack([b, b + 1.5])

    @jax.jit
    def run(fb, bb):
        aligned = jax.vmap(lambda f, b: roi_align(f, b, i, 2, 0.25, 2, True))(fb, bb)
        pooled = jax.vmap(lambda f, b: roi_pool(f, b, i, 2, 0.25))(fb, bb)
        box_sum = lambda b: roi_align(f, b, i, 2, 0.25, 2, True).sum()  # noqa: E731
        eps = jnp.zeros_like(b).at[0, 0].set(1e-2)
        fd = (box_sum(b + eps) - box_sum(b - eps)) / 2e-2
        return aligned, pooled, jax.grad(box_sum)(b), fd

    aligned, pooled, g, fd = run(fb, bb)
    want = ref_roi_align(f[::-1], b + 1.5, i, (2, 2), 0.25, 2, True)
    np.testing.assert_allclose(aligned[1], want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(pooled[0], ref_roi_pool(f, b, i, (2, 2), 0.25))
    # boxes are differentiable (torchvision gives no box gradient): finite and matching finite differences
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g[0, 0], fd, rtol=2e-2, atol=1e-3)


def test_bfloat16_and_many_rois_chunked():
    f, b, i = _inputs(seed=3, k=37)  # not a multiple of the chunk size
    out = align(jnp.asarray(f, jnp.bfloat16), b, i, output_size=2, spatial_scale=0.25, sampling_ratio=2)
    assert out.dtype == jnp.bfloat16
    want = ref_roi_align(f, b, i, (2, 2), 0.25, 2, False)
    np.testing.assert_allclose(np.asarray(out, np.float32), want, rtol=2e-2, atol=2e-2)
    assert pool(jnp.asarray(f, jnp.bfloat16), b, i, output_size=2, spatial_scale=0.25).dtype == jnp.bfloat16


def test_zero_boxes():
    f, _, _ = _inputs()
    assert align(f, np.zeros((0, 4), np.float32), np.zeros(0, np.int32), output_size=2).shape == (0, 2, 2, 3)
    assert pool(f, np.zeros((0, 4), np.float32), np.zeros(0, np.int32), output_size=2).shape == (0, 2, 2, 3)


# -------------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("op", [roi_align, roi_pool])
@pytest.mark.parametrize(
    "features_shape, boxes_shape, idx_shape, idx_dtype, out_size, match",
    [
        ((7, 9, 3), (4, 4), (4,), np.int32, 2, "features"),
        ((2, 7, 9, 3), (4, 5), (4,), np.int32, 2, "boxes"),
        ((2, 7, 9, 3), (4,), (4,), np.int32, 2, "boxes"),
        ((2, 7, 9, 3), (4, 4), (3,), np.int32, 2, "box_indices"),
        ((2, 7, 9, 3), (4, 4), (4,), np.float32, 2, "box_indices"),
        ((2, 7, 9, 3), (4, 4), (4,), np.int32, 0, "output_size"),
        ((2, 7, 9, 3), (4, 4), (4,), np.int32, (2, -1), "output_size"),
    ],
)
def test_bad_inputs(op, features_shape, boxes_shape, idx_shape, idx_dtype, out_size, match):
    with pytest.raises(ValueError, match=match):
        features, boxes = np.zeros(features_shape, np.float32), np.zeros(boxes_shape, np.float32)
        op(features, boxes, np.zeros(idx_shape, idx_dtype), out_size)


def test_bad_bounds():
    f, b, i = _inputs()
    with pytest.raises(ValueError, match="max_sampling_ratio"):
        roi_align(f, b, i, 2, max_sampling_ratio=0)
    with pytest.raises(ValueError, match="max_bin_size"):
        roi_pool(f, b, i, 2, max_bin_size=(0, 2))
