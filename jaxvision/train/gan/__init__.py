"""GAN training core: state, step and losses (one import for users).

    from jaxvision.train.gan import GANState, make_gan_step
    state = GANState.create(g_apply_fn=G.apply, g_variables=G.init(...), d_apply_fn=D.apply,
                            d_variables=D.init(...), g_tx=optax.adam(2e-4, b1=0.5),
                            d_tx=optax.adam(2e-4, b1=0.5), rng=key, ema_decay=0.999)
    step = jax.jit(make_gan_step("non_saturating", latent_shape=(100,), n_critic=1))   # one device
    # data parallel: make_gan_step(..., axis_name="batch") under jaxvision.train.parallel.pmap_step
    # conditional (Pix2Pix, SRGAN, StackGAN): make_conditional_gan_step(loss, terms=[l1_term(100.0)])

See state.py, step.py and conditional.py here; the losses are ``jaxvision.ops.gan_losses`` (re-exported here).
"""
from jaxvision.ops.gan_losses import (
    LOSSES,
    bce_discriminator_loss,
    discriminator_loss,
    generator_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    least_squares_discriminator_loss,
    least_squares_generator_loss,
    minimax_generator_loss,
    non_saturating_generator_loss,
)
from jaxvision.train.gan.conditional import (
    GeneratorTerm,
    feature_term,
    kl_term,
    l1_term,
    make_conditional_gan_step,
    mse_term,
)
from jaxvision.train.gan.state import GANState
from jaxvision.train.gan.step import latent_noise, make_gan_step, validate_real

__all__ = [
    "LOSSES",
    "GANState",
    "make_gan_step",
    "make_conditional_gan_step",
    "GeneratorTerm",
    "l1_term",
    "mse_term",
    "feature_term",
    "kl_term",
    "latent_noise",
    "validate_real",
    "discriminator_loss",
    "generator_loss",
    "bce_discriminator_loss",
    "minimax_generator_loss",
    "non_saturating_generator_loss",
    "least_squares_discriminator_loss",
    "least_squares_generator_loss",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
]
