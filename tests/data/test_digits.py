import numpy as np
import pytest

from jaxvision.data import digits, load


def test_fixed_split_disjoint_and_complete():
    idx = digits._split_indices()
    assert len(idx["train"]) == 1437 and len(idx["test"]) == 360
    assert not set(idx["train"]) & set(idx["test"])
    _, labels = digits.arrays("test")
    assert np.bincount(labels).tolist() == [36] * 10


@pytest.mark.parametrize("size", [8, 16, 32])
def test_batches(size):
    ds = load("digits", "train", 64, seed=1, size=size)
    assert len(ds) == 1437 // 64
    b = ds.batch(3, epoch=1)
    assert b["image"].shape == (64, size, size, 1) and b["image"].dtype == np.float32
    assert b["label"].shape == (64,) and b["label"].dtype == np.int32
    assert 0 <= b["image"].min() and b["image"].max() <= 1 and b["image"].max() > 0.9
    assert ds.info["num_classes"] == 10


def test_values_match_sklearn_and_split_ignores_seed():
    from sklearn.datasets import load_digits

    images, labels = digits.arrays("all")
    d = load_digits()
    np.testing.assert_allclose(images[..., 0] * 16, d.images)
    np.testing.assert_array_equal(labels, d.target)
    a = load("digits", "test", 360, seed=0).batch(0)
    b = load("digits", "test", 360, seed=5).batch(0)
    np.testing.assert_array_equal(a["label"], b["label"])  # test split: fixed, unshuffled


def test_bad_size():
    with pytest.raises(ValueError, match="size"):
        load("digits", "train", 8, size=12)
