"""The four GAN losses against their textbook formulas, and the diminished gradient of the saturating loss."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.ops import gan_losses as L

rng = np.random.default_rng(0)
REAL = rng.normal(size=(7, 3)).astype(np.float32) * 3
FAKE = rng.normal(size=(5,)).astype(np.float32) * 3


def sig(x):
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def test_bce_discriminator_matches_formula():
    want = -np.mean(np.log(sig(REAL))) - np.mean(np.log(1 - sig(FAKE)))
    np.testing.assert_allclose(L.discriminator_loss("minimax", REAL, FAKE), want, rtol=1e-5)
    np.testing.assert_allclose(L.discriminator_loss("non_saturating", REAL, FAKE), want, rtol=1e-5)


def test_generator_losses_match_formulas():
    np.testing.assert_allclose(L.generator_loss("minimax", FAKE), np.mean(np.log(1 - sig(FAKE))), rtol=1e-5)
    np.testing.assert_allclose(L.generator_loss("non_saturating", FAKE), -np.mean(np.log(sig(FAKE))), rtol=1e-5)
    np.testing.assert_allclose(L.generator_loss("least_squares", FAKE), 0.5 * np.mean((FAKE - 1) ** 2), rtol=1e-5)
    np.testing.assert_allclose(L.generator_loss("hinge", FAKE), -np.mean(FAKE), rtol=1e-5)


def test_lsgan_and_hinge_discriminator():
    want = 0.5 * np.mean((REAL - 1) ** 2) + 0.5 * np.mean(FAKE**2)
    np.testing.assert_allclose(L.discriminator_loss("least_squares", REAL, FAKE), want, rtol=1e-5)
    want = np.mean(np.maximum(0, 1 - REAL)) + np.mean(np.maximum(0, 1 + FAKE))
    np.testing.assert_allclose(L.discriminator_loss("hinge", REAL, FAKE), want, rtol=1e-5)


def test_losses_finite_for_extreme_logits():
    x = jnp.array([-1e4, 1e4, 0.0])
    for name in L.LOSSES:
        assert np.isfinite(L.discriminator_loss(name, x, x))
        assert np.isfinite(L.generator_loss(name, x))
        assert np.all(np.isfinite(jax.grad(lambda v: L.generator_loss(name, v))(x)))


def test_saturating_gradient_vanishes_when_d_is_confident():
    # D confidently rejects the fake (logit -10, D(G(z)) ~ 4.5e-5): the minimax generator gets ~no gradient,
    # the non-saturating one gets ~ -1 per sample (scaled by the mean).
    t = jnp.array([-10.0])
    g_sat = jax.grad(lambda v: L.generator_loss("minimax", v))(t)[0]
    g_ns = jax.grad(lambda v: L.generator_loss("non_saturating", v))(t)[0]
    assert abs(g_sat) < 1e-4
    assert abs(g_ns + 1.0) < 1e-4


def test_unknown_loss_raises():
    with pytest.raises(ValueError, match="loss"):
        L.generator_loss("wasserstein", FAKE)
