"""Selective search: region features and adjacency against brute force, the grouping's merge order, proposals that
recover known objects, recall, the disk cache (in-process and in worker processes), bad inputs."""
import numpy as np
import pytest

from jaxvision.proposals import (
    box_iou,
    cached_proposals,
    compute_proposals,
    pad_proposals,
    proposal_recall,
    selective_search,
)
from jaxvision.proposals.grouping import hierarchical_grouping
from jaxvision.proposals.regions import adjacent_pairs, region_features, texture_maps, to_color_space


def _random_labels(rng, h=12, w=15, r=7):
    """A label image with every value 0..r-1 present (random blobs from nearest seeds)."""
    seeds = rng.uniform(0, [h, w], (r, 2))
    yy, xx = np.mgrid[:h, :w]
    d = (yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2
    lab = np.argmin(d, -1)
    _, inv = np.unique(lab, return_inverse=True)
    return inv.reshape(h, w)


@pytest.mark.parametrize("seed", range(3))
def test_adjacency_and_features_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    lab = _random_labels(rng)
    h, w = lab.shape
    want = set()
    for y in range(h):
        for x in range(w):
            for dy, dx in ((0, 1), (1, 0)):
                if y + dy < h and x + dx < w and lab[y, x] != lab[y + dy, x + dx]:
                    want.add(tuple(sorted((int(lab[y, x]), int(lab[y + dy, x + dx])))))
    assert sorted(map(tuple, adjacent_pairs(lab).tolist())) == sorted(want)

    img = rng.uniform(0, 1, (h, w, 3)).astype(np.float32)
    f = region_features(lab, img)
    tex = texture_maps(img)
    for r in range(lab.max() + 1):
        ys, xs = np.nonzero(lab == r)
        assert f["size"][r] == len(ys)
        np.testing.assert_array_equal(f["box"][r], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        hist = np.concatenate([np.histogram(img[ys, xs, c], 25, (0, 1))[0] for c in range(3)])
        np.testing.assert_allclose(f["color"][r], hist / hist.sum(), atol=1e-6)
        th = np.concatenate([np.histogram(np.minimum(tex[ys, xs, c], 1 - 1e-7), 10, (0, 1))[0] for c in range(24)])
        np.testing.assert_allclose(f["texture"][r], th / th.sum(), atol=1e-6)


def test_color_spaces_in_unit_range():
    img = np.random.default_rng(0).uniform(0, 1, (5, 6, 3)).astype(np.float32)
    for name, c in (("rgb", 3), ("hsv", 3), ("lab", 3), ("rgi", 3), ("h", 1), ("i", 1)):
        out = to_color_space(img, name)
        assert out.shape == (5, 6, c) and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="color_space"):
        to_color_space(img, "xyz")


def test_grouping_merges_adjacent_regions_by_size_down_to_the_whole_image():
    rng = np.random.default_rng(3)
    lab = _random_labels(rng, 16, 16, 9)
    img = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    f = region_features(lab, img)
    pairs = adjacent_pairs(lab)
    boxes, levels = hierarchical_grouping(f, pairs, lab.size, ("size",))
    r = lab.max() + 1
    assert len(boxes) == 2 * r - 1 and levels[:r].tolist() == [1] * r
    np.testing.assert_array_equal(boxes[-1], [0, 0, 16, 16])
    # size only: the first merge is the adjacent pair with the smallest total size (replay the greedy merges)
    a, b = pairs[np.argmin(f["size"][pairs[:, 0]] + f["size"][pairs[:, 1]])]
    union = [min(f["box"][a][0], f["box"][b][0]), min(f["box"][a][1], f["box"][b][1]),
             max(f["box"][a][2], f["box"][b][2]), max(f["box"][a][3], f["box"][b][3])]
    np.testing.assert_array_equal(boxes[r], union)
    with pytest.raises(ValueError, match="similarities"):
        hierarchical_grouping(f, pairs, lab.size, ("colour",))


def _two_rectangles():
    img = np.full((48, 64, 3), 0.2, np.float32)
    img[5:20, 8:30] = (0.9, 0.1, 0.1)
    img[25:45, 35:60] = (0.1, 0.3, 0.9)
    return img, np.array([[8, 5, 30, 20], [35, 25, 60, 45]], np.float32)


@pytest.mark.parametrize("ranking", ["position", "level"])
def test_selective_search_recovers_objects(ranking):
    img, gt = _two_rectangles()
    boxes = selective_search(img, "fast", ranking=ranking)
    assert boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 4
    assert len(np.unique(boxes, axis=0)) == len(boxes)
    assert box_iou(boxes, gt).max(0).min() == 1.0
    # upscaled segmentation returns input pixels; uint8 input is the same image
    up = selective_search((img * 255).round().astype(np.uint8), "fast", scale=2.0, max_proposals=50)
    assert len(up) <= 50 and up.max() <= 64 and box_iou(up, gt).max(0).min() > 0.95


def test_proposal_recall_counts_and_thresholds():
    gt = [np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.zeros((0, 4))]
    props = [np.array([[0, 0, 10, 10.]]), np.array([[20, 20, 30, 31], [0, 0, 10, 14], [0, 0, 10, 10.]]),
             np.zeros((0, 4))]
    rec = proposal_recall(props, gt, counts=(1, 2, 3), thresholds=(0.5, 0.8))
    # n=1: image0 hit, image1 box2 (iou 10/11); n=2: + box1 at iou 100/140; n=3: + box1 exact
    np.testing.assert_allclose(rec, [[2 / 3, 2 / 3], [1, 2 / 3], [1, 1]])
    with pytest.raises(ValueError, match="gt_boxes"):
        proposal_recall([np.zeros((0, 4))], [np.zeros((0, 4))])


def test_bad_inputs():
    img, _ = _two_rectangles()
    for kwargs, name in ((dict(mode="slow"), "mode"), (dict(scale=0), "scale"), (dict(ranking="x"), "ranking"),
                         (dict(max_proposals=0), "max_proposals")):
        with pytest.raises(ValueError, match=name):
            selective_search(img, **kwargs)
    with pytest.raises(ValueError, match="image"):
        selective_search(img[..., :2])
    bad = img.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="image"):
        selective_search(bad)
    with pytest.raises(ValueError, match="images"):
        compute_proposals(img, 4)


def test_cache_written_once_reread_and_invalidated(tmp_path):
    img, _ = _two_rectangles()
    images = np.stack([img, img[::-1].copy()])
    path = str(tmp_path / "p.npz")
    first = cached_proposals(path, images, 40, workers=1, mode="single")
    assert not first["cached"] and first["proposals"].shape == (2, 40, 4) and first["cpu_seconds"] > 0
    again = cached_proposals(path, images, 40, workers=1, mode="single")
    assert again["cached"] and again["seconds"] == 0.0 and again["cpu_seconds"] == first["cpu_seconds"]
    np.testing.assert_array_equal(again["proposals"], first["proposals"])
    np.testing.assert_array_equal(again["proposal_mask"], first["proposal_mask"])
    other = cached_proposals(path, images, 40, workers=1, mode="fast")  # other options: recomputed
    assert not other["cached"]
    # worker processes give the same proposals as the in-process run (per-image seeds)
    par = compute_proposals(images, 40, workers=2, chunk_size=1, mode="single")
    np.testing.assert_array_equal(par[0], first["proposals"])
    np.testing.assert_array_equal(par[1], first["proposal_mask"])


def test_pad_proposals_handles_empty_and_overflow():
    boxes, mask = pad_proposals([np.zeros((0, 4)), np.ones((5, 4))], 3)
    assert boxes.shape == (2, 3, 4) and mask.tolist() == [[False] * 3, [True] * 3]


def test_upscaled_defaults_and_split_ranking(monkeypatch):
    """k grows with the upscaling (the mode's k x scale), sigma is 0.8 at 1x and 0.55 upscaled; ranking the
    hierarchies of ``search_hierarchies`` gives ``selective_search``'s proposals; the cache key has the version."""
    from jaxvision.proposals import cache, search

    img, _ = _two_rectangles()
    img = img[::2, ::2].copy()  # 24 x 32: cheap
    assert search.default_sigma(1.0) == 0.8 and search.default_sigma(2.0) == 0.55
    want = selective_search(img, "fast", scale=2.0, ranking="level", seed=3)
    np.testing.assert_array_equal(want, selective_search(img, "fast", scale=2.0, ks=(100, 200), sigma=0.55,
                                                         ranking="level", seed=3))
    assert not np.array_equal(want, selective_search(img, "fast", scale=2.0, ks=(50, 100), sigma=0.55,
                                                     ranking="level", seed=3))
    searched = search.search_hierarchies(img, "fast", scale=2.0)
    assert len(searched["hierarchies"]) == 8
    got = search.rank_hierarchies(searched, np.random.default_rng(3), "level")
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(search.rank_hierarchies(searched, np.random.default_rng(3), "level",
                                                          max_proposals=5), want[:5])
    key = cache.fingerprint(img[None], 8, {"mode": "fast"})
    monkeypatch.setattr(search, "VERSION", search.VERSION + 1)
    assert cache.fingerprint(img[None], 8, {"mode": "fast"}) != key
