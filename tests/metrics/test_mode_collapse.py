"""VEEGAN/PacGAN mode-collapse statistics on hand-made sample sets."""
import numpy as np
import pytest

from jaxvision.metrics.generative.mode_collapse import mode_collapse_stats, nearest_modes

MODES = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
SIGMA = 0.5


def test_perfect_balanced_generator():
    rng = np.random.default_rng(0)
    x = MODES[np.arange(400) % 4] + rng.normal(0, SIGMA, (400, 2)) * 0.5
    s = mode_collapse_stats(x, MODES, SIGMA)
    assert s["modes_captured"] == 4 and s["high_quality"] == 1.0
    assert s["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_array_equal(s["mode_counts"], [100, 100, 100, 100])


def test_collapsed_to_one_mode_and_low_quality_points():
    x = np.concatenate([np.tile(MODES[1], (30, 1)), np.full((10, 2), 5.0)])  # 10 points far from all modes
    s = mode_collapse_stats(x, MODES, SIGMA)
    assert s["modes_captured"] == 1
    assert s["high_quality"] == pytest.approx(0.75)
    assert s["reverse_kl"] == pytest.approx(np.log(4))


def test_three_sigma_boundary_and_unbalanced_kl():
    # 1.5 = 3 sigma exactly counts, 1.5001 does not; a low-quality point does not capture its mode
    x = np.array([[1.5, 0.0], [10.0, 1.5001], [0.0, 10.0], [0.0, 10.2]])
    s = mode_collapse_stats(x, MODES, SIGMA)
    assert s["modes_captured"] == 2 and s["high_quality"] == 0.75
    p = np.array([1 / 3, 2 / 3])
    assert s["reverse_kl"] == pytest.approx(float(np.sum(p * np.log(p * 4))))


def test_non_finite_samples_are_low_quality():
    x = np.array([[np.nan, 0.0], [0.0, 0.0]])
    s = mode_collapse_stats(x, MODES, SIGMA)
    assert s["high_quality"] == 0.5 and s["modes_captured"] == 1


def test_nearest_modes_and_shape_errors():
    idx, d = nearest_modes(np.array([[9.0, 9.0], [1.0, 0.0]]), MODES)
    np.testing.assert_array_equal(idx, [3, 0])
    np.testing.assert_allclose(d, [np.sqrt(2), 1.0])
    with pytest.raises(ValueError, match="samples"):
        mode_collapse_stats(np.zeros((5, 3)), MODES, SIGMA)
    with pytest.raises(ValueError, match="sigma"):
        mode_collapse_stats(np.zeros((5, 2)), MODES, 0.0)
