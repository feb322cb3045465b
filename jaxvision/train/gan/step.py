"""One GAN train step: n_critic discriminator updates (G frozen), then one generator update (D frozen).

By default (``axis_name=None``) the step is a plain single-device function: jit it, or vmap it over seeds. Built
with ``axis_name='batch'`` (``jaxvision.train.parallel.AXIS``) it is a per-device function for
``jaxvision.train.parallel.pmap_step`` (or ``jax.pmap(..., axis_name='batch')``): gradients, losses and BatchNorm
statistics are averaged with ``lax.pmean`` over that axis, so the same code runs on 1 or on N devices.
``make_train_step`` has the same default and the same convention.

Noise is device-count invariant: sample ``j`` of a step gets ``z_j = N(0, I)`` drawn from
``fold_in(step_key, j)`` where ``j = axis_index * local_batch + i`` is its index in the global (concatenated)
batch -- the per-device key is the step key folded with the device's axis index and the local sample index. So
the N-device step on N shards equals the 1-device step on the concatenated batch, which the tests check (the
models must use synchronized BatchNorm, i.e. BatchNorm with the same ``axis_name``, for the forward pass to
match as well).

As in pytorch/examples DCGAN, the generator runs once per G step: the fake batch of the last critic update is
the one the generator update back-propagates through (with a vjp taken during that forward pass).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from jaxvision._checks import check_choice, check_positive
from jaxvision.ops.gan_losses import LOSSES, discriminator_loss, generator_loss
from jaxvision.train.gan.state import GANState


def latent_noise(key, batch: int, latent_shape: Sequence[int], offset=0):
    """Standard normal noise where row ``i`` depends only on ``key`` and ``offset + i``.

    Args:
      key: PRNG key.
      batch: number of rows B.
      latent_shape: shape of one latent vector, e.g. ``(100,)``.
      offset: int (or traced int32) index of the first row in the global batch.

    Returns:
      float32 [B, *latent_shape].
    """
    idx = offset + jnp.arange(batch)
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(idx)
    return jax.vmap(lambda k: jax.random.normal(k, tuple(latent_shape), jnp.float32))(keys)


def _pmean(tree, axis_name):
    return tree if axis_name is None else lax.pmean(tree, axis_name)


def _all_finite(tree):
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)


def _apply_train(apply_fn, params, batch_stats, *inputs, rngs=None):
    """One training-mode forward pass: ``(output, new batch_stats)`` (``{}`` for a model without BatchNorm)."""
    out, mut = apply_fn({"params": params, "batch_stats": batch_stats}, *inputs, train=True,
                        mutable=["batch_stats"], rngs=rngs)
    return out, mut.get("batch_stats", {})


def _discriminator_update(state: GANState, d_params, d_opt, loss_fn, axis_name):
    """One D update: ``loss_fn(params) -> (loss, (batch_stats, real_logits, fake_logits))`` differentiated,
    gradients and BatchNorm statistics averaged over ``axis_name``, ``state.d_tx`` applied.

    Returns ``(d_params, batch_stats, d_opt, metrics)`` with metrics ``d_loss``, ``d_real``, ``d_fake``,
    ``d_grad_norm`` and the bool ``d_finite``.
    """
    (d_loss, (bs, rl, fl)), grads = jax.value_and_grad(loss_fn, has_aux=True)(d_params)
    grads, bs = _pmean(grads, axis_name), _pmean(bs, axis_name)
    updates, d_opt = state.d_tx.update(grads, d_opt, d_params)
    d_params = optax.apply_updates(d_params, updates)
    metrics = {
        "d_loss": d_loss,
        "d_real": jnp.mean(jax.nn.sigmoid(rl)),
        "d_fake": jnp.mean(jax.nn.sigmoid(fl)),
        "d_grad_norm": optax.global_norm(grads),
        "d_finite": _all_finite((d_loss, grads)),
    }
    return d_params, bs, d_opt, metrics


def _generator_update(state: GANState, g_grads, axis_name):
    """Average G's gradients over ``axis_name``, apply ``state.g_tx`` and move the EMA.

    Returns ``(g_params, g_opt_state, g_ema, averaged g_grads)``.
    """
    g_grads = _pmean(g_grads, axis_name)
    g_updates, g_opt = state.g_tx.update(g_grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, g_updates)
    g_ema = state.g_ema
    if g_ema is not None:
        decay = state.ema_decay
        g_ema = jax.tree_util.tree_map(lambda e, p: decay * e + (1.0 - decay) * p, g_ema, g_params)
    return g_params, g_opt, g_ema, g_grads


def _finish_step(state: GANState, new: GANState, metrics: dict, finite, axis_name):
    """Average the metrics over ``axis_name``, add ``finite`` (1.0 only if every device was finite) and keep the
    old state where the step was not finite. Returns ``(state, metrics)``."""
    metrics = _pmean(metrics, axis_name)
    finite = _pmean(finite.astype(jnp.float32), axis_name) == 1.0
    metrics["finite"] = finite.astype(jnp.float32)
    # A non-finite step keeps the last good state; the caller sees finite == 0 and stops.
    new = jax.tree_util.tree_map(lambda n, o: jnp.where(finite, n, o), new, state)
    return new, metrics


def make_gan_step(
    loss: str = "non_saturating",
    *,
    latent_shape: Sequence[int] = (100,),
    n_critic: int = 1,
    axis_name: str | None = None,
) -> Callable:
    """Build ``step(state, real) -> (state, metrics)``.

    Args:
      loss: one of ``LOSSES`` ('minimax', 'non_saturating', 'least_squares', 'hinge').
      latent_shape: shape of one noise vector fed to the generator.
      n_critic: discriminator updates per generator update (>= 1). Critic update ``k`` uses the real rows
        ``real[k::n_critic]`` (a layout that keeps the N-device step equal to the 1-device step) and fresh noise.
      axis_name: None (default) for a single-device step; the pmap axis name (``'batch'``) for a data-parallel
        step, whose gradients, losses and BatchNorm statistics are averaged over that axis.

    The returned ``step`` takes:
      state: GANState (replicated per device under pmap).
      real: float [n_critic * B, ...] real samples of this device, e.g. images [n_critic*B, H, W, C] in [-1, 1]
        NHWC, or points [n_critic*B, 2]. Check them once with ``validate_real`` before training.

    and returns the new state and float32 scalar metrics (averaged over devices): ``d_loss``, ``g_loss`` (of the
    last updates), ``d_real``/``d_fake`` (mean sigmoid of D's outputs on reals/fakes in the last critic update),
    ``g_grad_norm``/``d_grad_norm`` (global L2 norm of the averaged gradients) and ``finite`` (1.0 if every loss
    and gradient was finite). A non-finite step leaves the state unchanged (``finite`` = 0): the caller stops.

    Raises:
      ValueError: unknown ``loss``, ``n_critic`` < 1.
    """
    check_choice("loss", loss, LOSSES)
    check_positive("n_critic", n_critic)
    latent_shape = tuple(int(s) for s in latent_shape)

    def step(state: GANState, real):
        if real.shape[0] % n_critic:
            raise ValueError(f"real: expected a leading dim divisible by n_critic={n_critic}, got {real.shape}")
        b = real.shape[0] // n_critic
        # [n_critic, B, ...]: critic update k sees real[k::n_critic]
        reals = jnp.swapaxes(real.reshape((b, n_critic) + real.shape[1:]), 0, 1)
        rng, step_key = jax.random.split(state.rng)
        offset = 0 if axis_name is None else lax.axis_index(axis_name) * b

        def run_g(g_params, g_bs, z):
            return _apply_train(state.g_apply_fn, g_params, g_bs, z)

        def run_d(d_params, d_bs, x):
            return _apply_train(state.d_apply_fn, d_params, d_bs, x)

        def d_update(d_params, d_bs, d_opt, x_real, fake):
            def loss_fn(p):
                real_logits, bs = run_d(p, d_bs, x_real)
                fake_logits, bs = run_d(p, bs, fake)
                return discriminator_loss(loss, real_logits, fake_logits), (bs, real_logits, fake_logits)

            return _discriminator_update(state, d_params, d_opt, loss_fn, axis_name)

        def critic_body(carry, xs):
            d_params, d_bs, d_opt, g_bs, finite = carry
            x_real, k = xs
            z = latent_noise(jax.random.fold_in(step_key, k), b, latent_shape, offset)
            fake, g_bs = run_g(state.g_params, g_bs, z)
            d_params, d_bs, d_opt, m = d_update(d_params, d_bs, d_opt, x_real, lax.stop_gradient(fake))
            return (d_params, d_bs, d_opt, _pmean(g_bs, axis_name), finite & m["d_finite"]), None

        carry = (state.d_params, state.d_batch_stats, state.d_opt_state, state.g_batch_stats, jnp.bool_(True))
        if n_critic > 1:
            carry, _ = lax.scan(critic_body, carry, (reals[:-1], jnp.arange(n_critic - 1)))
        d_params, d_bs, d_opt, g_bs, finite = carry

        # Last critic update and the generator update share one generator forward pass.
        z = latent_noise(jax.random.fold_in(step_key, n_critic - 1), b, latent_shape, offset)
        fake, g_vjp, g_bs = jax.vjp(lambda p: run_g(p, g_bs, z), state.g_params, has_aux=True)
        g_bs = _pmean(g_bs, axis_name)
        d_params, d_bs, d_opt, dm = d_update(d_params, d_bs, d_opt, reals[-1], lax.stop_gradient(fake))

        # Generator update through the updated, frozen D (its BatchNorm statistics are not touched).
        def g_loss_fn(x_fake):
            logits, _ = run_d(d_params, d_bs, x_fake)
            return generator_loss(loss, logits)

        g_loss, dfake = jax.value_and_grad(g_loss_fn)(fake)
        (g_grads,) = g_vjp(dfake)
        g_params, g_opt, g_ema, g_grads = _generator_update(state, g_grads, axis_name)

        finite = finite & dm["d_finite"] & _all_finite((g_loss, g_grads))
        metrics = {
            "d_loss": dm["d_loss"],
            "g_loss": g_loss,
            "d_real": dm["d_real"],
            "d_fake": dm["d_fake"],
            "d_grad_norm": dm["d_grad_norm"],
            "g_grad_norm": optax.global_norm(g_grads),
        }
        new = state.replace(
            step=state.step + 1,
            g_params=g_params,
            g_batch_stats=g_bs,
            d_params=d_params,
            d_batch_stats=d_bs,
            g_opt_state=g_opt,
            d_opt_state=d_opt,
            g_ema=g_ema,
            rng=rng,
        )
        return _finish_step(state, new, metrics, finite, axis_name)

    return step


def validate_real(real, *, shape: Sequence[int] | None = None, name: str = "real", low=-1.0, high=1.0) -> None:
    """Check a real batch on the host before training starts.

    Args:
      real: array [B, ...]; GAN images are float NHWC in [-1, 1].
      shape: expected per-sample shape, e.g. ``(32, 32, 1)``; None to skip the shape check.
      name: argument name quoted in errors.
      low, high: allowed value range (None to skip the range check).

    Raises:
      ValueError: wrong per-sample shape, non-float dtype, non-finite values or values outside [low, high].
    """
    arr = np.asarray(real)
    if shape is not None and tuple(arr.shape[1:]) != tuple(shape):
        raise ValueError(f"{name}: expected shape [B, {', '.join(map(str, shape))}], got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name}: expected a float array, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    if low is not None and high is not None and arr.size:
        lo, hi = float(arr.min()), float(arr.max())
        if lo < low - 1e-6 or hi > high + 1e-6:
            raise ValueError(
                f"{name}: expected values in [{low:g}, {high:g}] (GAN images: x * 2 - 1), got [{lo:.4g}, {hi:.4g}]"
            )
