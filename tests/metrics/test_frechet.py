"""frechet_distance: equal to pytorch-fid (golden fixture + live when installed), robust, feature path."""
import pathlib
import warnings

import jax
import numpy as np
import pytest

from jaxvision.metrics.generative.frechet import frechet_distance, frechet_distance_from_features, trace_sqrt_product

FIX = pathlib.Path(__file__).parent / "fixtures" / "fid_frechet.npz"
CASES = ("d16", "d64", "d64_far")


def _case(name):
    with np.load(FIX) as f:
        return tuple(f[f"{name}/{k}"] for k in ("mu1", "sigma1", "mu2", "sigma2", "fid"))


@pytest.mark.parametrize("name", CASES)
def test_matches_pytorch_fid_golden_x64(name):
    mu1, s1, mu2, s2, want = _case(name)
    got = frechet_distance(mu1, s1, mu2, s2, x64=True)
    assert got.dtype == np.float64
    assert abs(float(got) - want) <= 1e-6 * abs(want)


@pytest.mark.parametrize("name", CASES)
def test_float32_accuracy_as_documented(name):
    mu1, s1, mu2, s2, want = _case(name)
    got = frechet_distance(mu1, s1, mu2, s2, x64=False)
    assert got.dtype == np.float32
    # documented: ~1e-6 x (tr S1 + tr S2) absolute at worst (measured <= 5e-7 x, d = 16 ... 2048)
    assert abs(float(got) - want) <= 1e-6 * (np.trace(s1) + np.trace(s2))


def test_float64_is_the_default():
    mu1, s1, mu2, s2, want = _case("d64")
    assert frechet_distance(mu1, s1, mu2, s2).dtype == np.float64
    f1, f2 = np.random.default_rng(0).standard_normal((2, 30, 8))
    assert frechet_distance_from_features(f1, f2).dtype == np.float64
    with jax.enable_x64(True):  # x64=False is float32 even when x64 is on globally
        assert frechet_distance(mu1, s1, mu2, s2, x64=False).dtype == np.float32
        assert frechet_distance_from_features(f1, f2, x64=False).dtype == np.float32


def _ill_conditioned_pair(d, seed=0):
    """The issue's covariances, cheaply, with an exact distance. S1 = A^T A, A normal with scale 1/sqrt(d)
    (eigenvalues 1e-7 ... 4: hundreds below float32's eps x max); S2 = T S1 T with T symmetric positive definite,
    so sqrt(S1^1/2 S2 S1^1/2) = S1^1/2 T S1^1/2 and tr sqrt(S1 S2) = tr(T S1) exactly. Built in float64."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((d, d)) / np.sqrt(d)
    g = rng.standard_normal((d, d))
    t = np.eye(d) + 0.5 * (g + g.T) / (2 * np.sqrt(2 * d))  # eigenvalues in ~[0.5, 1.5]
    s1 = a.T @ a
    s2 = t @ s1 @ t
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    mu1, mu2 = np.zeros(d), np.full(d, 0.1)
    exact = (mu2 - mu1) @ (mu2 - mu1) + np.trace(s1) + np.trace(s2) - 2 * np.sum(t * s1)
    return mu1, s1, mu2, s2, exact


def test_float32_exact_at_d2048_ill_conditioned():
    # Regression: float32 gave +10% here (eigenvalues of R^T S2 R below d x eps x max were dropped); the
    # float32 path (singular values of R1^T R2) must stay within 1e-4 relative (measured 1.1e-5). Rounding the
    # inputs to float32 moves the exact value by ~2e-8.
    mu1, s1, mu2, s2, exact = _ill_conditioned_pair(2048)  # ~1 s
    args32 = [x.astype(np.float32) for x in (mu1, s1, mu2, s2)]
    got = frechet_distance(*args32, x64=False)
    assert got.dtype == np.float32
    assert abs(float(got) - exact) <= 1e-4 * exact, (float(got), exact)


def test_matches_pytorch_fid_live():
    fid_score = pytest.importorskip("pytorch_fid.fid_score")
    rng = np.random.default_rng(3)
    f1, f2 = rng.standard_normal((300, 20)), rng.standard_normal((250, 20)) * 1.1 + 0.2
    stats = (f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))
    want = fid_score.calculate_frechet_distance(*stats)
    np.testing.assert_allclose(float(frechet_distance(*stats, x64=True)), want, rtol=1e-6)


def test_trace_sqrt_product_against_eigen_of_product():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((8, 8)), rng.standard_normal((8, 8))
    s1, s2 = a @ a.T, b @ b.T
    want = np.sum(np.sqrt(np.linalg.eigvals(s1 @ s2).real))
    with jax.enable_x64(True):
        np.testing.assert_allclose(float(trace_sqrt_product(s1, s2)), want, rtol=1e-10)


@pytest.mark.parametrize("n1,n2,d", [(10, 12, 64), (7, 7, 32), (200, 150, 16)])
def test_feature_path_equals_covariance_path(n1, n2, d):
    rng = np.random.default_rng(n1)
    f1, f2 = rng.standard_normal((n1, d)), rng.standard_normal((n2, d)) * 0.7 + 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fast = float(frechet_distance_from_features(f1, f2, x64=True))
    full = float(frechet_distance(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False), x64=True))
    np.testing.assert_allclose(fast, full, rtol=1e-9)


def test_rank_deficient_is_finite_and_warns():
    rng = np.random.default_rng(1)
    f1, f2 = rng.standard_normal((5, 64)), rng.standard_normal((6, 64))
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)  # rank 4 and 5 of 64
    for x64 in (False, True):
        v = frechet_distance(f1.mean(0), s1, f2.mean(0), s2, x64=x64)
        assert np.isfinite(float(v)) and not np.iscomplexobj(np.asarray(v)) and float(v) > 0
    with pytest.warns(RuntimeWarning, match="full-rank covariance needs at least 65"):
        v = frechet_distance_from_features(f1, f2)
    assert np.isfinite(float(v))
    # exactly singular: all-zero covariances still give ||mu1 - mu2||^2
    z = np.zeros((64, 64))
    np.testing.assert_allclose(float(frechet_distance(np.ones(64), z, np.zeros(64), z)), 64.0, rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float32_rank_deficient_accuracy(seed):
    # n < d: Cholesky fails in float32 and the eigh factor is used; its round-off eigenvalues (~eps max, either
    # sign) must be zeroed, or each adds ~sqrt(eps) to the trace (seed 0 gave 5e-6 x traces with a 1x band).
    rng = np.random.default_rng(seed)
    f1, f2 = rng.standard_normal((40, 256)), rng.standard_normal((50, 256)) * 1.1 + 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = float(frechet_distance_from_features(f1, f2))  # float64, no d x d matrix
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    got = frechet_distance(*[x.astype(np.float32) for x in (f1.mean(0), s1, f2.mean(0), s2)], x64=False)
    assert abs(float(got) - want) <= 1e-6 * (np.trace(s1) + np.trace(s2))  # measured <= 2.4e-7 x


def test_identical_distributions_near_zero():
    mu1, s1, _, _, _ = _case("d64")
    v = float(frechet_distance(mu1, s1, mu1, s1, x64=True))
    assert abs(v) < 1e-9 * np.trace(s1)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="mu2"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="sigma1"):
        frechet_distance(np.zeros(3), np.zeros(3), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="same feature dim"):
        frechet_distance_from_features(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance_from_features(np.zeros((1, 3)), np.zeros((5, 3)))


def test_closed_form_small_cases():
    # d = 1: (0 - 1)^2 + 4 + 1 - 2 sqrt(4 * 1) = 2 ; diagonal d = 2: 13 + 2 - 2 (2 + 3) = 5
    assert float(frechet_distance(np.zeros(1), np.eye(1) * 4, np.ones(1), np.eye(1), x64=True)) == pytest.approx(2.0)
    v = frechet_distance(np.zeros(2), np.diag([4.0, 9.0]), np.zeros(2), np.eye(2), x64=True)
    assert float(v) == pytest.approx(5.0)



def test_float64_ill_conditioned():
    # d = 512 keeps CI fast; cond(S1) = 7e6, measured 2.8e-8 (eigenvalues below d x eps x max are dropped).
    mu1, s1, mu2, s2, exact = _ill_conditioned_pair(512)
    got = frechet_distance(mu1, s1, mu2, s2)
    assert got.dtype == np.float64
    assert abs(float(got) - exact) <= 1e-6 * exact
