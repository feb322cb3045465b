"""The conditional GAN step (Pix2Pix, SRGAN, StackGAN): a condition fed to G and D, weighted extra G terms.

``make_conditional_gan_step`` returns ``step(state, batch) -> (state, metrics)`` on a batch dict. It shares the
update bodies of ``make_gan_step`` (``step.py``: one D update with gradients and BatchNorm statistics averaged
over the device axis, one G update with the EMA, the non-finite guard), so the same guarantees hold: a plain
function for ``jax.jit``, or with ``axis_name='batch'`` a per-device function for ``parallel.pmap_step`` whose
N-device step equals the 1-device step on the concatenated batch (noise is drawn per global row as in
``latent_noise``; dropout, a per-device stream, is the one exception: equal in distribution only).

Calling conventions of the players (Flax ``Module.apply``, extra inputs positional):

- generator: ``G(condition, train=...)`` or, with ``latent_shape``, ``G(condition, z, train=...)``; it returns
  the image ``[B, ...]`` or a pair ``(image, aux)`` with ``aux`` a dict of float arrays (e.g. StackGAN's
  conditioning-augmentation ``mu`` / ``logvar``) that the extra terms read. A ``'dropout'`` RNG stream is given.
- discriminator: ``D(image, condition, train=...)`` (``condition_in_discriminator=True``: Pix2Pix's (input,
  output) pairs, StackGAN's (image, text)) or ``D(image, train=...)`` (SRGAN); logits of any shape (PatchGAN
  maps are averaged by the losses).

One step: G forward on the condition; D update on (target, condition) as real and (G's output, condition) as
fake -- with ``mismatch_key``, also (target, mismatched condition) as fake, StackGAN's matching-aware D:
``loss(real, fake) / 2 + loss(real, mismatch) / 2`` = real term + (fake term + mismatch term) / 2 --; then the G
update through the updated, frozen D: ``adversarial_weight * generator_loss + sum(weight_i * term_i)``.
``generator_only=True`` (SRResNet pretraining, an L1-only U-Net) skips D: G minimizes the terms alone and D's
parameters, statistics and optimizer state are carried unchanged, so the same state fine-tunes adversarially
afterwards.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from jaxvision._checks import check_choice, check_positive
from jaxvision.ops.gan_losses import LOSSES, discriminator_loss, generator_loss
from jaxvision.ops.losses import gaussian_kl
from jaxvision.train.gan.state import GANState
from jaxvision.train.gan.step import (
    _all_finite,
    _apply_train,
    _discriminator_update,
    _finish_step,
    _generator_update,
    _pmean,
    latent_noise,
)


class GeneratorTerm(NamedTuple):
    """An extra generator loss term: ``weight * fn(fake, batch, aux)``.

    Attributes:
      name: metric name (reported as ``g_<name>``).
      weight: float multiplier (lambda).
      fn: ``fn(fake [B, ...], batch dict, aux dict) -> float32 scalar`` on this device's rows (a mean, so the
        device average is the global mean).
    """

    name: str
    weight: float
    fn: Callable


def l1_term(weight: float = 100.0, target_key: str = "image") -> GeneratorTerm:
    """``weight * mean |fake - batch[target_key]|`` (Pix2Pix: lambda_L1 = 100)."""
    return GeneratorTerm("l1", float(weight), lambda fake, batch, aux: jnp.mean(jnp.abs(fake - batch[target_key])))


def mse_term(weight: float = 1.0, target_key: str = "image", channel_weights=None, name: str = "mse"
             ) -> GeneratorTerm:
    """``weight * mean (fake - batch[target_key])**2`` (SRResNet's MSE content loss).

    With ``channel_weights`` (C floats), the MSE of the error's weighted channel sum ``(fake - target) @ w``
    instead: with ``jaxvision.metrics.BT601_LUMA`` it is the MSE of the luma, what Y-channel PSNR measures (on
    images in [-1, 1] the luma error is twice the [0, 1] one, like the plain MSE's). ``name``: the metric name.
    """
    if channel_weights is None:
        return GeneratorTerm(name, float(weight),
                             lambda fake, batch, aux: jnp.mean(jnp.square(fake - batch[target_key])))
    w = jnp.asarray(channel_weights, jnp.float32)
    if w.ndim != 1:
        raise ValueError(f"channel_weights: expected C floats, got shape {w.shape}")

    def fn(fake, batch, aux):
        if fake.shape[-1] != w.shape[0]:
            raise ValueError(f"mse_term: channel_weights has {w.shape[0]} entries, the images {fake.shape[-1]} "
                             f"channels ({fake.shape})")
        return jnp.mean(jnp.square(jnp.matmul(fake - batch[target_key], w, precision=lax.Precision.HIGHEST)))

    return GeneratorTerm(name, float(weight), fn)


def feature_term(features: Callable, weight: float = 1.0, target_key: str = "image",
                 name: str = "feature") -> GeneratorTerm:
    """``weight * mean (features(fake) - features(target))**2`` (SRGAN's VGG54 content loss).

    Args:
      features: ``images -> array`` (a fixed network with its weights closed over, e.g. VGG19 up to conv5_4);
        the target's features carry no gradient.
      weight: multiplier (SRGAN scales VGG features by 1/12.75, i.e. the loss by ~0.006).
      target_key: batch key of the target images.
      name: metric name.
    """

    def fn(fake, batch, aux):
        return jnp.mean(jnp.square(features(fake) - lax.stop_gradient(features(batch[target_key]))))

    return GeneratorTerm(name, float(weight), fn)


def kl_term(weight: float = 2.0, mu_key: str = "mu", logvar_key: str = "logvar") -> GeneratorTerm:
    """``weight * mean KL(N(mu, exp(logvar)) || N(0, I))`` over all elements of G's ``aux[mu_key]`` /
    ``aux[logvar_key]`` (StackGAN's conditioning augmentation, lambda = 2 in its code)."""

    def fn(fake, batch, aux):
        for key in (mu_key, logvar_key):
            if key not in aux:
                raise ValueError(f"kl_term: expected the generator to return (image, aux) with aux[{key!r}], "
                                 f"got aux keys {sorted(aux)}")
        return jnp.mean(gaussian_kl(aux[mu_key], aux[logvar_key]))

    return GeneratorTerm("kl", float(weight), fn)


def _check_terms(terms) -> tuple[GeneratorTerm, ...]:
    terms = tuple(terms)
    names = set()
    for t in terms:
        if not isinstance(t, GeneratorTerm):
            raise ValueError(f"terms: expected GeneratorTerm entries (l1_term(), mse_term(), ...), got {t!r}")
        if t.name in names or t.name == "adv":
            raise ValueError(f"terms: expected distinct names other than 'adv', got {t.name!r} twice")
        names.add(t.name)
    return terms


def make_conditional_gan_step(
    loss: str = "non_saturating",
    *,
    terms: Sequence[GeneratorTerm] = (),
    adversarial_weight: float = 1.0,
    condition_key: str = "condition",
    target_key: str = "image",
    latent_shape: Sequence[int] | None = None,
    condition_in_discriminator: bool = True,
    mismatch_key: str | None = None,
    generator_only: bool = False,
    axis_name: str | None = None,
) -> Callable:
    """Build ``step(state, batch) -> (state, metrics)`` for a conditional GAN.

    Args:
      loss: adversarial objective, one of ``LOSSES``.
      terms: extra weighted generator terms (``l1_term``, ``mse_term``, ``feature_term``, ``kl_term`` or any
        ``GeneratorTerm``).
      adversarial_weight: multiplier of G's adversarial loss (Pix2Pix 1 with L1 at 100; SRGAN 1e-3).
      condition_key: batch key of G's input (and D's condition): Pix2Pix's input image, SRGAN's low-resolution
        image, StackGAN's text embedding.
      target_key: batch key of the real output (D's real samples, the terms' target).
      latent_shape: shape of a noise vector ``z`` passed to G after the condition (row ``i`` of the global batch
        gets ``latent_noise`` row ``i``), or None for none.
      condition_in_discriminator: D sees ``(image, condition)``; False: D sees the image alone.
      mismatch_key: batch key of mismatched conditions (e.g. the captions of other images) for a matching-aware
        D, or None.
      generator_only: train G on the terms alone (pretraining); D is not run and not updated.
      axis_name: None for one device, ``'batch'`` for a ``pmap_step`` step.

    The returned ``step`` takes the GANState and ``batch``, a dict with ``batch[condition_key]`` ``[B, ...]`` and
    ``batch[target_key]`` ``[B, ...]`` (GAN images in [-1, 1], in whatever range G outputs) and any keys the terms
    read. Metrics (float32 scalars, averaged over devices): ``g_loss`` (the weighted total), ``g_adv`` and
    ``g_<term>`` (unweighted), ``g_grad_norm``, ``finite``; unless ``generator_only`` also ``d_loss``,
    ``d_real``, ``d_fake``, ``d_grad_norm`` as ``make_gan_step``. A non-finite step keeps the state.

    Raises:
      ValueError: unknown ``loss``, bad ``terms``, a negative weight, no terms with ``generator_only``, a
        ``mismatch_key`` without ``condition_in_discriminator``; at trace time, a batch without the keys or with
        different leading sizes.
    """
    check_choice("loss", loss, LOSSES)
    terms = _check_terms(terms)
    check_positive("adversarial_weight", adversarial_weight, allow_zero=True)
    for t in terms:
        check_positive(f"terms[{t.name!r}].weight", t.weight, allow_zero=True)
    if generator_only and not terms:
        raise ValueError("terms: expected at least one term with generator_only=True (G would get no gradient)")
    if mismatch_key is not None and not condition_in_discriminator:
        raise ValueError("mismatch_key: a matching-aware D needs condition_in_discriminator=True")
    latent_shape = None if latent_shape is None else tuple(int(s) for s in latent_shape)
    needed = (condition_key, target_key) + (() if mismatch_key is None else (mismatch_key,))

    def step(state: GANState, batch):
        missing = [k for k in needed if k not in batch]
        if missing:
            raise ValueError(f"batch: expected keys {list(needed)}, missing {missing} (got {sorted(batch)})")
        cond, real = batch[condition_key], batch[target_key]
        b = real.shape[0]
        for k in needed:
            if jax.tree_util.tree_leaves(batch[k])[0].shape[0] != b:
                raise ValueError(f"batch[{k!r}]: expected leading size {b} (that of batch[{target_key!r}]), got "
                                 f"{jax.tree_util.tree_leaves(batch[k])[0].shape}")
        rng, step_key = jax.random.split(state.rng)
        g_key, noise_key = jax.random.split(step_key)
        device = 0 if axis_name is None else lax.axis_index(axis_name)
        g_inputs = (cond,)
        if latent_shape is not None:
            g_inputs += (latent_noise(noise_key, b, latent_shape, device * b),)
        rngs = {"dropout": jax.random.fold_in(g_key, device)}

        def run_g(p):
            out, bs = _apply_train(state.g_apply_fn, p, state.g_batch_stats, *g_inputs, rngs=rngs)
            fake, aux = out if isinstance(out, tuple) else (out, {})
            return (fake, aux), bs

        def run_d(p, bs, x, c):
            inputs = (x, c) if condition_in_discriminator else (x,)
            return _apply_train(state.d_apply_fn, p, bs, *inputs)

        (fake, aux), g_vjp, g_bs = jax.vjp(run_g, state.g_params, has_aux=True)
        g_bs = _pmean(g_bs, axis_name)

        finite = jnp.bool_(True)
        d_params, d_bs, d_opt = state.d_params, state.d_batch_stats, state.d_opt_state
        metrics = {}
        if not generator_only:
            fake_sg = lax.stop_gradient(fake)

            def d_loss_fn(p):
                rl, bs = run_d(p, d_bs, real, cond)
                fl, bs = run_d(p, bs, fake_sg, cond)
                d_loss = discriminator_loss(loss, rl, fl)
                if mismatch_key is not None:
                    wl, bs = run_d(p, bs, real, batch[mismatch_key])
                    d_loss = 0.5 * d_loss + 0.5 * discriminator_loss(loss, rl, wl)
                return d_loss, (bs, rl, fl)

            d_params, d_bs, d_opt, dm = _discriminator_update(state, d_params, d_opt, d_loss_fn, axis_name)
            finite = finite & dm.pop("d_finite")
            metrics.update(dm)

        # G update through the updated, frozen D (its BatchNorm statistics are not touched).
        def g_loss_fn(x_fake, g_aux):
            parts = {}
            total = jnp.zeros((), jnp.float32)
            if not generator_only:
                logits, _ = run_d(d_params, d_bs, x_fake, cond)
                parts["g_adv"] = generator_loss(loss, logits)
                total = total + adversarial_weight * parts["g_adv"]
            for t in terms:
                parts[f"g_{t.name}"] = jnp.asarray(t.fn(x_fake, batch, g_aux), jnp.float32)
                total = total + t.weight * parts[f"g_{t.name}"]
            return total, parts

        (g_loss, parts), cotangents = jax.value_and_grad(g_loss_fn, argnums=(0, 1), has_aux=True)(fake, aux)
        (g_grads,) = g_vjp(cotangents)
        g_params, g_opt, g_ema, g_grads = _generator_update(state, g_grads, axis_name)
        finite = finite & _all_finite((g_loss, g_grads))
        metrics.update(parts, g_loss=g_loss, g_grad_norm=optax.global_norm(g_grads))
        new = state.replace(step=state.step + 1, g_params=g_params, g_batch_stats=g_bs, d_params=d_params,
                            d_batch_stats=d_bs, g_opt_state=g_opt, d_opt_state=d_opt, g_ema=g_ema, rng=rng)
        return _finish_step(state, new, metrics, finite, axis_name)

    return step

