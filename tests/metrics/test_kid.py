"""KID vs torch-fidelity (golden fixture from its own code) and a NumPy transcription of its estimator."""
import numpy as np
import pytest

from jaxvision.metrics.generative.kid import kernel_inception_distance


def _reference_kid(f1, f2, subsets, subset_size, seed=2020):
    """torch-fidelity's procedure: RandomState(seed), choice w/o replacement per side, unbiased MMD^2."""
    rng = np.random.RandomState(seed)
    d = f1.shape[1]
    mmds = []
    for _ in range(subsets):
        x = f1[rng.choice(len(f1), subset_size, replace=False)]
        y = f2[rng.choice(len(f2), subset_size, replace=False)]
        kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        m = subset_size
        mmd = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / m**2
        mmds.append(mmd)
    return np.mean(mmds), np.std(mmds)


def test_matches_reference_x64():
    rng = np.random.default_rng(0)
    f1 = rng.standard_normal((120, 16))
    f2 = rng.standard_normal((90, 16)) * 1.2 + 0.3
    got = kernel_inception_distance(f1, f2, subsets=7, subset_size=50, x64=True)
    np.testing.assert_allclose(tuple(got), _reference_kid(f1, f2, 7, 50), rtol=1e-10)
    assert got.provenance["precision"] == "float64" and got.provenance["num_samples"] == (120, 90)


def test_float32_close_and_seeded():
    rng = np.random.default_rng(1)
    f1, f2 = rng.standard_normal((80, 32)), rng.standard_normal((80, 32)) + 0.5
    a = kernel_inception_distance(f1, f2, subsets=5, subset_size=40)
    b = kernel_inception_distance(f1, f2, subsets=5, subset_size=40)
    c = kernel_inception_distance(f1, f2, subsets=5, subset_size=40, seed=1)
    assert tuple(a) == tuple(b) and tuple(a) != tuple(c)
    np.testing.assert_allclose(tuple(a), _reference_kid(f1, f2, 5, 40), rtol=1e-4, atol=1e-6)


def test_same_distribution_near_zero_unbiased():
    rng = np.random.default_rng(2)
    f = rng.standard_normal((400, 8))
    g = rng.standard_normal((400, 8))
    mean, std = kernel_inception_distance(f, g, subsets=20, subset_size=100, x64=True)
    assert abs(mean) < 3 * std / np.sqrt(20) + 1e-3


def test_bad_input():
    with pytest.raises(ValueError, match="same feature dim"):
        kernel_inception_distance(np.zeros((10, 3)), np.zeros((10, 4)), 1, 5)
    with pytest.raises(ValueError, match="at least subset_size=1000"):
        kernel_inception_distance(np.zeros((10, 3)), np.zeros((10, 3)))


def _make_kid_module():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parent / "fixtures" / "make_kid.py"
    spec = importlib.util.spec_from_file_location("make_kid", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod, path.with_name("kid_torch_fidelity.npz")


def test_matches_torch_fidelity_golden():
    """Golden values from torch-fidelity's own ``kid_features_to_metric`` (tests/metrics/fixtures/make_kid.py):
    its subset sampling, kernel and unbiased estimator, incl. a non-default kernel and seed."""
    mod, path = _make_kid_module()
    golden = np.load(path)
    for i, (name, n1, n2, d, subsets, size, seed, degree, gamma, coef0, shift) in enumerate(mod.CASES):
        f1, f2 = mod.case_features(i, n1, n2, d, shift)
        np.testing.assert_allclose([f1.sum(), f2.sum()], golden[f"{name}/feature_sums"], rtol=1e-12)
        got = kernel_inception_distance(f1, f2, subsets=subsets, subset_size=size, seed=seed, degree=degree,
                                        gamma=gamma, coef0=coef0, x64=True)
        np.testing.assert_allclose(got.mean, golden[f"{name}/mean"], rtol=1e-10, err_msg=name)
        np.testing.assert_allclose(got.std, golden[f"{name}/std"], rtol=1e-9, err_msg=name)
