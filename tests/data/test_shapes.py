"""Procedural shapes: batch format, geometry of targets, determinism, disjoint splits, options."""
import numpy as np
import pytest

from jaxvision.data import load, shapes


@pytest.fixture(scope="module")
def batch():
    return load("shapes", "train", 32, num_examples=64).batch(0)


def test_format(batch):
    b = batch
    assert b["image"].shape == (32, 64, 64, 3) and b["image"].dtype == np.float32
    assert 0 <= b["image"].min() and b["image"].max() <= 1
    assert b["boxes"].shape == (32, 8, 4) and b["boxes"].dtype == np.float32
    assert b["labels"].dtype == np.int32 and b["mask"].dtype == bool
    assert b["landmarks"].shape == (32, 8, shapes.NUM_LANDMARKS, 2)
    assert b["landmarks_mask"].shape == (32, 8, shapes.NUM_LANDMARKS)
    m = b["mask"]
    assert m.any(1).all() and (m.sum(1) <= 4).all() and (m.sum(1) > 1).any()
    np.testing.assert_array_equal(b["labels"] < 0, ~m)
    assert (b["labels"][m] < len(shapes.CLASS_NAMES)).all()
    assert not b["landmarks_mask"][~m].any() and (b["boxes"][~m] == 0).all()
    # all classes appear
    assert len(set(b["labels"][m].tolist())) >= 5


def test_box_and_landmark_geometry(batch):
    m = batch["mask"]
    boxes = batch["boxes"][m]
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert boxes.min() >= 0 and boxes.max() <= 64
    lm, lmm = batch["landmarks"][m], batch["landmarks_mask"][m]
    assert lmm[:, 0].all()  # centre always defined
    for box, pts, ok, label in zip(boxes, lm, lmm, batch["labels"][m]):
        p = pts[ok]
        assert (p[:, 0] >= box[0] - 1e-3).all() and (p[:, 0] <= box[2] + 1e-3).all()
        assert (p[:, 1] >= box[1] - 1e-3).all() and (p[:, 1] <= box[3] + 1e-3).all()
        expected = {"circle": 5, "square": 5, "triangle": 4, "diamond": 5, "pentagon": 6, "star": 6}
        assert ok.sum() == expected[shapes.CLASS_NAMES[label]]


@pytest.mark.parametrize("cls", range(len(shapes.CLASS_NAMES)))
def test_box_is_the_extent_of_the_drawn_pixels(cls):
    rng = np.random.default_rng(cls)
    for _ in range(5):
        r = rng.uniform(5, 20)
        cx, cy = rng.uniform(r + 1, 64 - r - 1, 2)
        outline, lm, lmm, box = shapes._shape_geometry(cls, cx, cy, r, rng)
        mask = shapes._rasterize(outline, cx, cy, r, 64)
        ys, xs = np.nonzero(mask)
        drawn = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
        # pixel-centre sampling: drawn pixels never leave the box by more than a pixel; sharp tips (diamond,
        # star) may leave up to 2 px of the geometric extent unpainted
        tol = 2.0 if shapes.CLASS_NAMES[cls] in ("diamond", "star") else 1.0
        np.testing.assert_allclose(drawn, box, atol=tol)
        assert (drawn[:2] >= np.floor(box[:2])).all() and (drawn[2:] <= np.ceil(box[2:])).all()


def test_deterministic_and_disjoint_splits():
    a = load("shapes", "train", 8, num_examples=16, shuffle=False).batch(0)
    b = shapes.generate.__wrapped__("train", 0, 16, 64, 8, 4, False, False)  # bypass the cache
    np.testing.assert_array_equal(np.round(a["image"] * 255).astype(np.uint8), b["image"][:8])
    np.testing.assert_array_equal(a["boxes"], b["boxes"][:8])
    imgs = {s: load("shapes", s, 8, num_examples=16, shuffle=False).batch(0)["image"] for s in ("train", "val", "test")}
    for s, t in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not np.any(np.all(np.abs(imgs[s][:, None] - imgs[t][None]) < 1e-6, axis=(2, 3, 4)))
    other = load("shapes", "train", 8, num_examples=16, shuffle=False, data_seed=1).batch(0)
    assert not np.array_equal(other["boxes"], a["boxes"])


def test_single_object_and_backgrounds():
    b = load("shapes", "val", 8, num_examples=8, single_object=True, backgrounds=True, image_size=32).batch(0)
    assert b["boxes"].shape == (8, 1, 4) and b["mask"].all()
    assert b["image"].shape == (8, 32, 32, 3)
    w = b["boxes"][:, 0, 2] - b["boxes"][:, 0, 0]
    assert (w > 0.2 * 32).all()


def test_options_validated():
    with pytest.raises(ValueError, match="split"):
        load("shapes", "valid", 8)
    with pytest.raises(ValueError, match="max_objects"):
        load("shapes", "train", 8, max_boxes=2, max_objects=3)
    with pytest.raises(ValueError, match="image_size"):
        load("shapes", "train", 8, image_size=8)
