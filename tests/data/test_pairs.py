"""Paired data: pairs (shapes label maps, Canny edges), the pix2pix A|B folder format, sr_photos, div2k patches."""
import itertools

import numpy as np
import pytest
from PIL import Image

from jaxvision import data
from jaxvision.data import photos, sr_photos
from jaxvision.data.pairs import LABEL_PALETTE
from jaxvision.data.tfds import load as tfds_load


def test_shapes_pairs_label_map_matches_rendered_layout():
    b = data.load("pairs", "test", 4, kind="shapes", image_size=32, num_examples=4).batch(0)
    assert b["condition"].shape == b["image"].shape == (4, 32, 32, 3)
    assert b["image"].dtype == np.float32 and 0 <= b["image"].min() and b["image"].max() <= 1
    cond = b["condition"]
    labelled = np.any(cond > 0, -1)
    # every labelled pixel carries a palette colour, and the background is black
    colours = {tuple(c) for c in np.round(cond[labelled]).astype(int)}
    assert colours and colours <= {tuple(c) for c in LABEL_PALETTE.astype(int)}
    # the label map is deterministic by data_seed and differs between splits
    again = data.load("pairs", "test", 4, kind="shapes", image_size=32, num_examples=4).batch(0)
    np.testing.assert_array_equal(again["condition"], cond)
    train = data.load("pairs", "train", 4, kind="shapes", image_size=32, num_examples=4).batch(0)
    assert not np.array_equal(np.sort(train["condition"].ravel()), np.sort(cond.ravel()))


def test_edges_pairs_are_canny_of_the_target():
    from skimage.color import rgb2gray
    from skimage.feature import canny

    ds = data.load("pairs", "test", 2, kind="edges", image_size=32, num_examples=2, sigma=1.0)
    b = ds.batch(0)
    assert b["condition"].shape == (2, 32, 32, 1) and b["image"].shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(b["condition"][0, ..., 0], canny(rgb2gray(b["image"][0]), sigma=1.0))
    tb = data.load("pairs", "train", 2, kind="edges", image_size=32, num_examples=2).batch(0)
    assert tb["condition"].shape == (2, 32, 32, 1) and set(np.unique(tb["condition"])) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="kind"):
        data.load("pairs", "train", 2, kind="maps")


def test_paired_folder_reads_a_b_halves(tmp_path):
    (tmp_path / "val").mkdir()
    r = np.random.default_rng(0)
    a, b = r.integers(0, 256, (16, 16, 3), np.uint8), r.integers(0, 256, (16, 16, 3), np.uint8)
    Image.fromarray(np.concatenate([a, b], 1)).save(tmp_path / "val" / "1.png")
    Image.fromarray(np.concatenate([b, a], 1)).save(tmp_path / "val" / "2.png")
    ds = data.load("paired_folder", "val", 2, root=str(tmp_path), image_size=16, direction="BtoA")
    batch = ds.batch(0)
    np.testing.assert_allclose(batch["condition"][0], b / 255.0, atol=1e-6)
    np.testing.assert_allclose(batch["image"][0], a / 255.0, atol=1e-6)
    jit = data.load("paired_folder", "val", 2, root=str(tmp_path), image_size=8, jitter=True).batch(0)
    assert jit["condition"].shape == (2, 8, 8, 3)
    with pytest.raises(FileNotFoundError, match="root"):
        data.load("paired_folder", "train", 2, root=str(tmp_path))


def test_sr_photos_low_res_is_bicubic_of_high_res():
    b = data.load("sr_photos", "val", 2, patch_size=8, scale=4, num_examples=2).batch(0)
    assert b["low_res"].shape == (2, 8, 8, 3) and b["image"].shape == (2, 32, 32, 3)
    np.testing.assert_allclose(b["low_res"][1], sr_photos.bicubic_downscale(b["image"][1], 4))
    # PIL's bicubic equals a flat image's value on a flat image
    flat = np.full((8, 8, 3), 0.25, np.float32)
    np.testing.assert_allclose(sr_photos.bicubic_downscale(flat, 4), 0.25, atol=1e-6)
    lr, hr = sr_photos.whole_images("test", scale=4, downscale=4)[0]
    assert hr.shape[0] == 4 * lr.shape[0] and hr.shape[1] == 4 * lr.shape[1]
    with pytest.raises(ValueError, match="scale"):
        sr_photos.bicubic_downscale(np.zeros((6, 8, 3), np.float32), 4)



def test_sr_photos_bicubic_round_trip_is_aligned():
    # bicubic_upscale(bicubic_downscale(hr)) lines up with hr: a 1-px shift either way is worse
    from jaxvision.metrics import psnr

    lr, hr = sr_photos.whole_images("test", scale=4, downscale=4)[0]
    up = sr_photos.bicubic_upscale(lr, 4)
    base = float(psnr(up[None], hr[None], crop_border=8)[0])
    for shift in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        assert float(psnr(np.roll(up, shift, (0, 1))[None], hr[None], crop_border=8)[0]) < base - 0.3
    assert not set(photos.TRAIN_IMAGES) & set(photos.TEST_IMAGES)


def test_div2k_patches_are_aligned():
    r = np.random.default_rng(0)
    lr = r.integers(0, 256, (10, 12, 3), np.uint8)
    hr = np.repeat(np.repeat(lr, 4, 0), 4, 1)
    ds = tfds_load("train", 2, name="div2k/bicubic_x4", patch_size=6, source=[{"lr": lr, "hr": hr}] * 2)
    b = ds.batch(0)
    assert b["low_res"].shape == (2, 6, 6, 3) and b["image"].shape == (2, 24, 24, 3)
    np.testing.assert_array_equal(b["image"][:, ::4, ::4], b["low_res"])
    val = tfds_load("val", 1, name="div2k/bicubic_x4", patch_size=6, source=[{"lr": lr, "hr": hr}])
    np.testing.assert_allclose(val.batch(0)["low_res"][0], lr[2:8, 3:9] / 255.0, rtol=1e-6)




def test_sr_photos_multiscale_pool_and_dihedral_augmentation():
    pool = sr_photos.train_pool(96, (2, 3, 4), photos.TRAIN_IMAGES)
    # every training photo at each factor, except those smaller than the HR patch (chelsea at 4: 75 x 112 px)
    sizes = [img.shape for f in (2, 3, 4) for img in photos.images("train", f)]
    assert [p.shape for p in pool] == [s for s in sizes if min(s[:2]) >= 96] and len(pool) == len(sizes) - 1
    # the default adds the left view of stereo_motorcycle (500 x 741 colour) and scikit-learn's two sample photos
    # (427 x 640 colour), area-downscaled like the others
    moto, china, flower = sr_photos.train_pool(96, (2,))[-3:]
    assert sr_photos.TRAIN_PHOTOS[-3:] == ("stereo_motorcycle", "china", "flower")
    assert moto.shape == (250, 370, 3) and china.shape == flower.shape == (213, 320, 3)
    for img in (moto, china, flower):
        assert 0.0 <= img.min() and img.max() <= 1.0 and img.std() > 0.05
    assert not np.array_equal(china, flower)
    with pytest.raises(ValueError, match="train_downscales"):
        sr_photos.train_pool(96, ())
    with pytest.raises(ValueError, match="patch_size"):
        sr_photos.train_pool(2000, (2,))
    with pytest.raises(ValueError, match="train_photos"):  # a held-out photo cannot be trained on
        sr_photos.train_pool(96, (2,), ("astronaut", "rocket"))
    with pytest.raises(ValueError, match="name"):
        photos.photo("camera")  # greyscale: not a colour photo
    with pytest.raises(ValueError, match="name: expected a skimage.data photo or one of"):
        photos.photo("no_such_photo")
    # dihedral: each output is one of the 8 orientations of its input, and all 8 occur
    x = np.arange(2 * 2 * 3, dtype=np.float32).reshape(1, 2, 2, 3)
    orients = [np.rot90(x[0], k) for k in range(4)]
    orients += [o[:, ::-1] for o in orients]
    assert len({o.tobytes() for o in orients}) == 8
    seen = set()
    rng = np.random.default_rng(0)
    for _ in range(64):
        inp = x[:, :, ::-1] if rng.random() < 0.5 else x
        out = sr_photos.augment(rng, inp, dihedral=True)[0]
        hits = [k for k, o in enumerate(orients) if np.array_equal(out, o)]
        assert len(hits) == 1
        seen.add(hits[0])
    assert seen == set(range(8))
    b = data.load("sr_photos", "train", 2, patch_size=8, scale=4, train_downscales=(3, 4), dihedral=True,
                  num_examples=2).batch(0)
    assert b["low_res"].shape == (2, 8, 8, 3) and b["image"].shape == (2, 32, 32, 3)
    np.testing.assert_allclose(b["low_res"][0], sr_photos.bicubic_downscale(b["image"][0], 4))


def test_sr_photos_channel_shuffle_and_contrast_keep_the_pair_exact():
    kw = dict(patch_size=8, scale=4, train_downscales=(3, 4), dihedral=True, num_examples=16)
    plain = data.load("sr_photos", "train", 16, **kw).batch(0)
    shuffled = data.load("sr_photos", "train", 16, channel_shuffle=True, **kw).batch(0)
    perms = [tuple(p) for p in itertools.permutations(range(3))]
    seen = set()
    for x, y, lr in zip(plain["image"], shuffled["image"], shuffled["low_res"]):  # same crops, channels reordered
        hits = [p for p in perms if np.array_equal(x[..., p], y)]
        assert hits
        seen.add(hits[0])
        np.testing.assert_allclose(lr, sr_photos.bicubic_downscale(y, 4))
    assert len(seen) > 2  # several orders occur in 16 patches
    # contrast: x s + u (1 - s) per patch, s in [1 - c, 1]: same crops, a per-patch affine map, LR still exact
    jittered = data.load("sr_photos", "train", 16, channel_shuffle=True, contrast=0.5, **kw).batch(0)
    gains = []
    for x, y, lr in zip(shuffled["image"], jittered["image"], jittered["low_res"]):
        s, level_part = np.polyfit(x.ravel(), y.ravel(), 1)
        np.testing.assert_allclose(y, x * s + level_part, atol=1e-5)
        assert 0.5 - 1e-4 <= s <= 1 + 1e-4 and 0 <= level_part <= 1 - s + 1e-4
        np.testing.assert_allclose(lr, sr_photos.bicubic_downscale(y, 4), atol=1e-6)
        gains.append(s)
    assert np.ptp(gains) > 0.1
    # one Generator per row for crop and augmentations (a second rngs[j] would replay the crop's draws)
    class CountingRngs:
        def __init__(self, n):
            self.n, self.calls = n, []

        def __len__(self):
            return self.n

        def __getitem__(self, j):
            self.calls.append(j)
            return np.random.default_rng(j)

    counting = CountingRngs(4)
    data.load("sr_photos", "train", 4, patch_size=8, num_examples=4, dihedral=True, channel_shuffle=True,
              contrast=0.5)._make_batch(np.arange(4), counting)
    assert sorted(counting.calls) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="contrast: expected a fraction in"):
        data.load("sr_photos", "train", 2, patch_size=8, contrast=1.5)
    val = data.load("sr_photos", "val", 4, patch_size=8, num_examples=4, channel_shuffle=True).batch(0)
    np.testing.assert_array_equal(val["image"], data.load("sr_photos", "val", 4, patch_size=8, num_examples=4)
                                  .batch(0)["image"])  # held-out patches untouched
