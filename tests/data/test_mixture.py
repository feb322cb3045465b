import numpy as np
import pytest

from jaxvision.data import load, mixture


def test_modes():
    ring = mixture.modes("ring")
    assert ring.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 1.0, atol=1e-6)
    grid = mixture.modes("grid")
    assert grid.shape == (25, 2)
    assert sorted(set(grid[:, 0].tolist())) == [-4, -2, 0, 2, 4]
    assert mixture.sigma("ring") == 0.01 and mixture.sigma("grid") == 0.05


@pytest.mark.parametrize("kind", ["ring", "grid"])
def test_samples_follow_the_mixture(kind):
    ds = load("mixture", "train", 512, seed=0, kind=kind, num_examples=4096)
    x = np.concatenate([b["x"] for b in ds])
    m = mixture.modes(kind)
    d = x[:, None] - m[None]
    nearest = np.argmin((d ** 2).sum(-1), 1)
    resid = x - m[nearest]
    np.testing.assert_allclose(resid.std(0), mixture.sigma(kind), rtol=0.1)
    counts = np.bincount(nearest, minlength=len(m))
    assert counts.min() > 0.5 * len(x) / len(m)


def test_train_resamples_per_epoch_test_fixed():
    ds = load("mixture", "train", 64, seed=0, num_examples=128)
    assert not np.array_equal(ds.batch(0, 0)["x"], ds.batch(0, 1)["x"])
    np.testing.assert_array_equal(ds.batch(1, 3)["x"], load("mixture", "train", 64, num_examples=128).batch(1, 3)["x"])
    t = load("mixture", "test", 64, num_examples=128)
    np.testing.assert_array_equal(t.batch(0, 0)["x"], t.batch(0, 5)["x"])
    assert load("mixture", "train", 64, num_devices=8).batch(0)["x"].shape == (8, 8, 2)
