import numpy as np

from jaxvision.data import load, photos


def test_split_by_image():
    assert not set(photos.TRAIN_IMAGES) & set(photos.TEST_IMAGES)
    tr = load("photos", "train", 16, patch_size=32, num_examples=64)
    te = load("photos", "test", 16, patch_size=32, num_examples=64)
    for ds in (tr, te):
        b = ds.batch(0)
        assert b["image"].shape == (16, 32, 32, 3) and b["image"].dtype == np.float32
        assert 0 <= b["image"].min() and b["image"].max() <= 1


def test_crops_come_from_the_photos():
    b = load("photos", "test", 4, patch_size=16, downscale=4, num_examples=4).batch(0)["image"]
    pool = photos.images("test", 4)
    for crop in b:
        found = False
        for img in pool:
            # exhaustive search of the crop's position
            win = np.lib.stride_tricks.sliding_window_view(img, (16, 16, 3))[:, :, 0]
            if np.any(np.all(np.abs(win - crop).reshape(*win.shape[:2], -1) < 1e-6, -1)):
                found = True
        assert found


def test_deterministic():
    a = load("photos", "train", 8, seed=2, num_examples=32).batch(1, epoch=1)["image"]
    b = load("photos", "train", 8, seed=2, num_examples=32).batch(1, epoch=1)["image"]
    np.testing.assert_array_equal(a, b)
