"""Anchor generators: torchvision golden fixtures, NumPy references, jit use and bad inputs."""
import importlib.util
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.ops import anchor_grid, anchor_strides, cell_anchors, ssd_default_boxes, yolo_grid
from jaxvision.ops.anchors import num_anchors_per_location, ssd_num_anchors_per_location, ssd_scales

FIX = pathlib.Path(__file__).parent / "fixtures"


def _cases():
    spec = importlib.util.spec_from_file_location("anchors_cases", FIX / "anchors_cases.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.GRID_CASES, mod.SSD_CASES


GRID_CASES, SSD_CASES = _cases()
SSD300 = dict(feature_sizes=[38, 19, 10, 5, 3, 1], image_size=300,
              aspect_ratios=[[2], [2, 3], [2, 3], [2, 3], [2], [2]],
              scales=[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05], steps=[8, 16, 32, 64, 100, 300])


# ---------------------------------------------------------------- NumPy references (float64, then rounded)

def ref_cell_anchors(sizes, ratios):
    rows = []
    for r in ratios:
        for s in sizes:
            w, h = s / math.sqrt(r), s * math.sqrt(r)
            rows.append([-w / 2, -h / 2, w / 2, h / 2])
    return np.round(np.asarray(rows))


def ref_anchor_grid(feats, strides, sizes, ratios):
    out = []
    for (fh, fw), (sh, sw), s, r in zip(feats, strides, sizes, ratios):
        base = ref_cell_anchors(s, r)
        for y in range(fh):
            for x in range(fw):
                out.append(base + np.asarray([x * sw, y * sh, x * sw, y * sh]))
    return np.concatenate(out, 0)


def ref_ssd(feats, image, ratios, scales, steps, clip):
    H, W = image
    out = []
    for k, (fh, fw) in enumerate(feats):
        s, s2 = scales[k], scales[k + 1]
        whs = [(s, s), (math.sqrt(s * s2),) * 2]
        for r in ratios[k]:
            whs += [(s * math.sqrt(r), s / math.sqrt(r)), (s / math.sqrt(r), s * math.sqrt(r))]
        xf, yf = (W / steps[k], H / steps[k]) if steps else (fw, fh)
        for i in range(fh):
            for j in range(fw):
                cx, cy = (j + 0.5) / xf, (i + 0.5) / yf
                for w, h in whs:
                    if clip:
                        w, h = min(max(w, 0), 1), min(max(h, 0), 1)
                    out.append([(cx - w / 2) * W, (cy - h / 2) * H, (cx + w / 2) * W, (cy + h / 2) * H])
    return np.asarray(out)


def _pairs(v):
    return [(f, f) if isinstance(f, int) else tuple(f) for f in v]


# ---------------------------------------------------------------- torchvision golden fixtures

@pytest.mark.parametrize("name", sorted(GRID_CASES))
def test_anchor_grid_matches_torchvision(name):
    image, feats, sizes, ratios = GRID_CASES[name]
    got = np.asarray(anchor_grid(feats, anchor_strides(image, feats), sizes, ratios))
    want = np.load(FIX / "anchors_grid.npz")[name]
    np.testing.assert_array_equal(got, want)


def test_ssd300_default_boxes_equal_torchvision_ssd300_vgg16():
    got = np.asarray(ssd_default_boxes(**SSD300))
    want = np.load(FIX / "anchors_ssd.npz")["ssd300"]
    assert got.shape == (8732, 4)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", sorted(SSD_CASES))
def test_ssd_default_boxes_match_torchvision(name):
    image, feats, kw = SSD_CASES[name]
    got = np.asarray(ssd_default_boxes(feats, image, **kw))
    np.testing.assert_array_equal(got, np.load(FIX / "anchors_ssd.npz")[name])


# ---------------------------------------------------------------- NumPy references

@pytest.mark.parametrize("name", sorted(GRID_CASES))
def test_anchor_grid_matches_numpy_reference(name):
    image, feats, sizes, ratios = GRID_CASES[name]
    strides = anchor_strides(image, feats)
    got = np.asarray(anchor_grid(feats, strides, sizes, ratios))
    want = ref_anchor_grid(_pairs(feats), strides, sizes, ratios)
    # float64 vs float32 may round an exact .5 differently; allow one pixel on those rare coordinates.
    assert np.abs(got - want).max() <= 1.0
    assert np.mean(got == want) > 0.99


def test_ssd_default_boxes_match_numpy_reference():
    image, feats, kw = SSD_CASES["rect_noclip"]
    got = np.asarray(ssd_default_boxes(feats, image, **kw))
    want = ref_ssd(_pairs(feats), image, kw["aspect_ratios"], ssd_scales(3), None, False)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    got = np.asarray(ssd_default_boxes(**SSD300))
    want = ref_ssd(_pairs(SSD300["feature_sizes"]), (300, 300), SSD300["aspect_ratios"], SSD300["scales"],
                   SSD300["steps"], True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)


def test_cell_anchors_rounding_is_half_to_even():
    # size 5, ratio 1: +-2.5 rounds to +-2 (torch.round is half-to-even), size 7: +-3.5 -> +-4.
    np.testing.assert_array_equal(cell_anchors([5, 7], [1.0]), [[-2, -2, 2, 2], [-4, -4, 4, 4]])
    # ratio 4 = height / width: width halves, height doubles.
    np.testing.assert_array_equal(cell_anchors([32], [4.0]), [[-8, -32, 8, 32]])


def test_anchor_grid_order_and_shorthands():
    a = np.asarray(anchor_grid([(2, 3)], [(10, 20)], (8,), (0.5, 1.0, 2.0)))
    assert a.shape == (2 * 3 * 3, 4)
    # cell (y=1, x=2) is the last one; its 3 anchors are shifted by (40, 10).
    np.testing.assert_array_equal(a[-3:], cell_anchors([8], [0.5, 1.0, 2.0]) + [40, 10, 40, 10])
    # flat sizes = one size per level; flat ratios shared by all levels.
    two = np.asarray(anchor_grid([4, 2], [8, 16], (16, 32), (0.5, 1.0)))
    assert two.shape == ((16 + 4) * 2, 4)
    assert num_anchors_per_location((16, 32), (0.5, 1.0)) == [2, 2]
    assert num_anchors_per_location(((16, 20, 25),), ((0.5, 1.0),)) == [6]


def test_ssd_anchor_counts_and_extra_scale():
    assert ssd_num_anchors_per_location(SSD300["aspect_ratios"]) == [4, 6, 6, 6, 4, 4]
    boxes = np.asarray(ssd_default_boxes([1], 100, [[]], scales=[0.2, 0.8], clip=False))
    # one cell, two boxes: scale 0.2 and the extra scale sqrt(0.2 * 0.8) = 0.4, centred at 50.
    np.testing.assert_allclose(boxes, [[40, 40, 60, 60], [30, 30, 70, 70]], atol=1e-4)
    assert ssd_scales(1, 0.15, 0.9) == [0.15, 0.9]
    np.testing.assert_allclose(ssd_scales(3, 0.2, 0.8), [0.2, 0.5, 0.8, 1.0])


def test_ssd_clip_applies_to_sizes_not_corners():
    kw = dict(feature_sizes=[2], image_size=10, aspect_ratios=[[4]], scales=[0.9, 1.5])
    clipped = np.asarray(ssd_default_boxes(**kw, clip=True))
    raw = np.asarray(ssd_default_boxes(**kw, clip=False))
    w_clip = clipped[:, 2] - clipped[:, 0]
    assert w_clip.max() <= 10 + 1e-5 and (raw[:, 2] - raw[:, 0]).max() > 10
    assert clipped.min() < 0  # corners may leave the image: only (w, h) are clamped


def test_integral_numpy_and_float_sizes_are_accepted():
    a = anchor_grid([np.int64(4)], [(np.int32(8), 8.0)], ((16,),), ((1.0,),))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(anchor_grid([4], [8], ((16,),), ((1.0,),))))
    assert anchor_strides((np.int64(300), 301), [(38, 38), 19]) == [(7, 7), (15, 15)]


def test_yolo_grid():
    g = np.asarray(yolo_grid(3))
    assert g.shape == (3, 3, 2)
    np.testing.assert_array_equal(g[1, 2], [2, 1])  # row 1, column 2 -> (x=2, y=1)
    r = np.asarray(yolo_grid((2, 4)))
    assert r.shape == (2, 4, 2)
    np.testing.assert_array_equal(r[..., 0], np.tile(np.arange(4), (2, 1)))
    np.testing.assert_array_equal(r[..., 1], np.repeat(np.arange(2)[:, None], 4, 1))


def test_usable_inside_jit_and_dtype():
    @jax.jit
    def f(deltas):
        anchors = anchor_grid([4], [8], (16,), (1.0,))
        return anchors + deltas + yolo_grid(4).reshape(-1, 2).repeat(2, 1)

    out = f(jnp.zeros((16, 4)))
    assert out.shape == (16, 4)
    assert ssd_default_boxes([2], 16, [[2]], dtype=jnp.bfloat16).dtype == jnp.bfloat16
    assert anchor_grid([2], [4], (8,), (1.0,), dtype=jnp.float16).dtype == jnp.float16


# ---------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("call, match", [
    (lambda: anchor_grid([4, 2], [8], ((16,), (32,)), ((1.0,),) * 2), "strides: expected 2 entries"),
    (lambda: anchor_grid([4], [8], ((16,), (32,)), ((1.0,),) * 2), "feature_sizes: expected 2 entries"),
    (lambda: anchor_grid([4], [8], ((16,),), ((1.0,),) * 2), "aspect_ratios: expected 1 levels"),
    (lambda: anchor_grid([4], [8], ((-16,),), ((1.0,),)), "sizes: expected values > 0"),
    (lambda: anchor_grid([4], [8], ((16,),), ((0.0,),)), "aspect_ratios: expected values > 0"),
    (lambda: anchor_grid([4], [0], ((16,),), ((1.0,),)), "strides: expected values > 0"),
    (lambda: anchor_grid([(4, 4, 4)], [8], ((16,),), ((1.0,),)), "feature_sizes: expected an int or a pair"),
    (lambda: anchor_grid([4], [8], ((),), ((1.0,),)), "sizes: expected a non-empty tuple"),
    (lambda: ssd_default_boxes([4, 2], 32, [[2]]), "feature_sizes: expected 1 entries"),
    (lambda: ssd_default_boxes([4], 32, [[2]], steps=[8, 16]), "steps: expected 1 entries"),
    (lambda: ssd_default_boxes([4], 32, [[2]], scales=[0.1]), "scales: expected 2 entries"),
    (lambda: ssd_default_boxes([4], 32, [[2]], scales=[0.1, -1]), "scales: expected values > 0"),
    (lambda: ssd_default_boxes([4], 32, [[-2]]), "aspect_ratios: expected values > 0"),
    (lambda: ssd_default_boxes([4], (0, 32), [[2]]), "image_size: expected values > 0"),
    (lambda: ssd_default_boxes([4], 32, [[2]], min_ratio=0.9, max_ratio=0.2), "min_ratio, max_ratio"),
    (lambda: ssd_default_boxes([], 32, []), "aspect_ratios: expected at least one level"),
    (lambda: yolo_grid(0), "size: expected values > 0"),
    (lambda: anchor_strides(0, [4]), "image_size: expected values > 0"),
    (lambda: anchor_grid([4], [7.5], ((16,),), ((1.0,),)), r"strides: expected an int or a pair \(h, w\) of integers"),
    (lambda: anchor_grid(["a"], [8], ((16,),), ((1.0,),)), "feature_sizes: expected an int or a pair"),
    (lambda: anchor_grid([None], [8], ((16,),), ((1.0,),)), "feature_sizes: expected an int or a pair"),
    (lambda: ssd_default_boxes([4], 32, [2, 3]), "aspect_ratios: expected one list of ratios per level"),
    (lambda: ssd_default_boxes([4], 32.5, [[2]]), "image_size: expected an int or a pair"),
    (lambda: yolo_grid((2, 3, 4)), "size: expected an int or a pair"),
    (lambda: anchor_grid([(0, 4)], [8], ((16,),), ((1.0,),)), "feature_sizes: expected values > 0"),
    (lambda: ssd_default_boxes([(3, 0)], 32, [[2]]), "feature_sizes: expected values > 0"),
])
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_random_configs_against_live_torchvision():
    """Random anchor / default-box configurations against torchvision itself (skipped where torch is absent)."""
    torch = pytest.importorskip("torch")
    from torchvision.models.detection.anchor_utils import AnchorGenerator, DefaultBoxGenerator
    from torchvision.models.detection.image_list import ImageList

    rng = np.random.default_rng(0)
    for _ in range(20):
        levels = int(rng.integers(1, 4))
        image = (int(rng.integers(20, 90)), int(rng.integers(20, 90)))
        feats = [(int(rng.integers(1, 9)), int(rng.integers(1, 9))) for _ in range(levels)]
        sizes = tuple(tuple(float(v) for v in np.round(rng.uniform(3, 60, rng.integers(1, 4)), 1))
                      for _ in range(levels))
        ratios = tuple(tuple(float(v) for v in np.round(rng.uniform(0.2, 4, rng.integers(1, 4)), 2))
                       for _ in range(levels))
        images = ImageList(torch.zeros(1, 3, *image), [image])
        fmaps = [torch.zeros(1, 1, *f) for f in feats]
        want = AnchorGenerator(sizes, ratios)(images, fmaps)[0].numpy()
        got = np.asarray(anchor_grid(feats, anchor_strides(image, feats), sizes, ratios))
        np.testing.assert_array_equal(got, want, err_msg=str((image, feats, sizes, ratios)))

        ssd_ratios = [[int(v) for v in rng.integers(2, 4, rng.integers(0, 3))] for _ in range(levels)]
        steps = [int(v) for v in rng.integers(4, 20, levels)] if rng.uniform() < 0.5 else None
        kw = dict(aspect_ratios=ssd_ratios, steps=steps, clip=bool(rng.uniform() < 0.5),
                  min_ratio=float(rng.uniform(0.1, 0.3)), max_ratio=float(rng.uniform(0.5, 1.2)))
        want = DefaultBoxGenerator(**kw)(images, fmaps)[0].numpy()
        got = np.asarray(ssd_default_boxes(feats, image, **kw))
        np.testing.assert_array_equal(got, want, err_msg=str((image, feats, kw)))
