"""The four GAN objectives, written on discriminator logits.

Every function takes raw discriminator outputs (logits, any shape, float) and returns a scalar loss averaged over
all elements. With ``D(x) = sigmoid(logit)``:

=================  ============================================  ======================================
loss               discriminator minimizes                       generator minimizes
=================  ============================================  ======================================
minimax            -log D(x) - log(1 - D(G(z)))                  log(1 - D(G(z)))   (saturating)
non_saturating     -log D(x) - log(1 - D(G(z)))                  -log D(G(z))
least_squares      1/2 (D(x) - 1)^2 + 1/2 D(G(z))^2             1/2 (D(G(z)) - 1)^2  (on raw outputs)
hinge              relu(1 - D(x)) + relu(1 + D(G(z)))            -D(G(z))             (on raw outputs)
=================  ============================================  ======================================

``minimax`` is the value function of Goodfellow et al. 2014 ("Generative Adversarial Nets", eq. 1),
min_G max_D E[log D(x)] + E[log(1 - D(G(z)))]: D does binary
cross-entropy with real -> 1 and fake -> 0, and G descends the same value. When D confidently rejects fakes
(D(G(z)) -> 0) the generator's gradient vanishes ("diminished gradient"); ``non_saturating`` is Goodfellow's fix.
``least_squares`` is LSGAN (a=0, b=1, c=1, Mao et al. 2017), ``hinge`` the SN-GAN / geometric-GAN hinge loss.
The log terms use ``softplus`` so they are finite for any logit: -log sigmoid(t) = softplus(-t) and
-log(1 - sigmoid(t)) = softplus(t).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvision._checks import check_choice

LOSSES = ("minimax", "non_saturating", "least_squares", "hinge")


def _mean(x):
    return jnp.mean(jnp.asarray(x, jnp.float32))


def bce_discriminator_loss(real_logits, fake_logits):
    """Binary cross-entropy of D: real -> 1, fake -> 0 (shared by minimax and non_saturating).

    Args:
      real_logits: float [...], D's logits on real data.
      fake_logits: float [...], D's logits on generated data.

    Returns:
      float32 scalar, mean BCE on reals plus mean BCE on fakes (like PyTorch's errD_real + errD_fake).
    """
    return _mean(jax.nn.softplus(-real_logits)) + _mean(jax.nn.softplus(fake_logits))


def minimax_generator_loss(fake_logits):
    """Saturating generator loss E[log(1 - D(G(z)))] (Goodfellow et al. 2014, eq. 1); float32 scalar."""
    return -_mean(jax.nn.softplus(fake_logits))


def non_saturating_generator_loss(fake_logits):
    """Non-saturating generator loss E[-log D(G(z))]; float32 scalar."""
    return _mean(jax.nn.softplus(-fake_logits))


def least_squares_discriminator_loss(real_logits, fake_logits):
    """LSGAN discriminator loss 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2] on raw outputs; float32 scalar."""
    return 0.5 * _mean(jnp.square(real_logits - 1.0)) + 0.5 * _mean(jnp.square(fake_logits))


def least_squares_generator_loss(fake_logits):
    """LSGAN generator loss 1/2 E[(D(G(z)) - 1)^2] on raw outputs; float32 scalar."""
    return 0.5 * _mean(jnp.square(fake_logits - 1.0))


def hinge_discriminator_loss(real_logits, fake_logits):
    """Hinge discriminator loss E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]; float32 scalar."""
    return _mean(jax.nn.relu(1.0 - real_logits)) + _mean(jax.nn.relu(1.0 + fake_logits))


def hinge_generator_loss(fake_logits):
    """Hinge generator loss -E[D(G(z))]; float32 scalar."""
    return -_mean(fake_logits)


_D = {
    "minimax": bce_discriminator_loss,
    "non_saturating": bce_discriminator_loss,
    "least_squares": least_squares_discriminator_loss,
    "hinge": hinge_discriminator_loss,
}
_G = {
    "minimax": minimax_generator_loss,
    "non_saturating": non_saturating_generator_loss,
    "least_squares": least_squares_generator_loss,
    "hinge": hinge_generator_loss,
}


def discriminator_loss(loss: str, real_logits, fake_logits):
    """Discriminator loss of the named objective.

    Args:
      loss: one of ``LOSSES``.
      real_logits: float [...], D's raw outputs on real data.
      fake_logits: float [...], D's raw outputs on generated data.

    Returns:
      float32 scalar.

    Raises:
      ValueError: unknown ``loss``.
    """
    check_choice("loss", loss, LOSSES)
    return _D[loss](real_logits, fake_logits)


def generator_loss(loss: str, fake_logits):
    """Generator loss of the named objective on D's raw outputs for generated data ``fake_logits`` (float [...]).

    Returns a float32 scalar; raises ValueError for an unknown ``loss``.
    """
    check_choice("loss", loss, LOSSES)
    return _G[loss](fake_logits)
