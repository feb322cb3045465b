"""Conditional GAN step: D on (target, condition) vs (G(condition), condition), G through the frozen updated D plus
weighted terms; aux-fed KL term; matching-aware D; G-only pretraining; 8 devices == 1 device; non-finite guard."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision.metrics import BT601_LUMA
from jaxvision.metrics.image.psnr_ssim import rgb_to_y
from jaxvision.ops.gan_losses import discriminator_loss, generator_loss
from jaxvision.train import parallel
from jaxvision.train.gan import (
    GANState,
    GeneratorTerm,
    kl_term,
    l1_term,
    latent_noise,
    make_conditional_gan_step,
    mse_term,
)

LATENT = (3,)


class CondG(nn.Module):
    """condition [B, 2] (+ z [B, 3]) -> image [B, 2] (, aux {'mu', 'logvar'} [B, 2])."""
    batch_norm: bool = False
    axis: str | None = None
    aux: bool = False

    @nn.compact
    def __call__(self, cond, z=None, train=True):
        h = cond if z is None else jnp.concatenate([cond, z], -1)
        h = nn.Dense(8, use_bias=not self.batch_norm)(h)  # no zero-gradient bias for Adam
        if self.batch_norm:
            h = nn.BatchNorm(use_running_average=not train, axis_name=self.axis)(h)
        h = nn.relu(h)
        out = nn.Dense(2)(h)
        if self.aux:
            return out, {"mu": nn.Dense(2)(h), "logvar": nn.Dense(2)(h)}
        return out


class CondD(nn.Module):
    """(image [B, 2], condition [B, 2]) or image alone -> logits [B]."""
    batch_norm: bool = False
    axis: str | None = None

    @nn.compact
    def __call__(self, x, cond=None, train=True):
        h = x if cond is None else jnp.concatenate([x, cond], -1)
        h = nn.Dense(8, use_bias=not self.batch_norm)(h)  # no zero-gradient bias for Adam
        if self.batch_norm:
            h = nn.BatchNorm(use_running_average=not train, axis_name=self.axis)(h)
        return nn.Dense(1)(nn.leaky_relu(h, 0.2))[:, 0]


def _state(g=None, d=None, latent=False, cond_d=True, tx=None, lr=0.05, ema=None):
    g, d = g or CondG(), d or CondD()
    kg, kd, kr = jax.random.split(jax.random.PRNGKey(0), 3)
    c = jnp.zeros((4, 2))
    gv = g.init(kg, c, jnp.zeros((4,) + LATENT), train=False) if latent else g.init(kg, c, train=False)
    dv = d.init(kd, c, c, train=False) if cond_d else d.init(kd, c, train=False)
    return GANState.create(g_apply_fn=g.apply, g_variables=gv, d_apply_fn=d.apply, d_variables=dv,
                           g_tx=tx or optax.sgd(lr), d_tx=tx or optax.sgd(lr), rng=kr, ema_decay=ema)


def _batch(n, seed=1, mismatch=False):
    r = np.random.default_rng(seed)
    out = {"condition": r.uniform(-1, 1, (n, 2)), "image": r.uniform(-1, 1, (n, 2))}
    if mismatch:
        out["wrong"] = r.uniform(-1, 1, (n, 2))
    return {k: jnp.asarray(v, jnp.float32) for k, v in out.items()}


def _sgd(params, grads, lr):
    return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)


def _close(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss,mismatch", [("non_saturating", False), ("hinge", True)])
def test_step_matches_hand_written_reference(loss, mismatch):
    lr, lam = 0.05, 7.0
    state = _state(latent=True)
    batch = _batch(6, mismatch=mismatch)
    step = make_conditional_gan_step(loss, terms=[l1_term(lam)], adversarial_weight=0.5, latent_shape=LATENT,
                                     mismatch_key="wrong" if mismatch else None)
    new, m = step(state, batch)  # eager: no compile

    _, step_key = jax.random.split(state.rng)
    _, noise_key = jax.random.split(step_key)
    z = latent_noise(noise_key, 6, LATENT)
    c, real = batch["condition"], batch["image"]
    g = lambda p: state.g_apply_fn({"params": p}, c, z)
    d = lambda p, x, cc=c: state.d_apply_fn({"params": p}, x, cc)
    fake = g(state.g_params)

    def d_loss(p):
        out = discriminator_loss(loss, d(p, real), d(p, fake))
        if mismatch:
            out = 0.5 * out + 0.5 * discriminator_loss(loss, d(p, real), d(p, real, batch["wrong"]))
        return out

    d_new = _sgd(state.d_params, jax.grad(d_loss)(state.d_params), lr)
    g_total = lambda p: 0.5 * generator_loss(loss, d(d_new, g(p))) + lam * jnp.mean(jnp.abs(g(p) - real))
    g_grads = jax.grad(g_total)(state.g_params)
    _close((new.d_params, new.g_params), (d_new, _sgd(state.g_params, g_grads, lr)))
    np.testing.assert_allclose(m["g_l1"], jnp.mean(jnp.abs(fake - real)), rtol=1e-6)
    np.testing.assert_allclose(m["g_loss"], g_total(state.g_params), rtol=1e-5)
    np.testing.assert_allclose(m["d_loss"], d_loss(state.d_params), rtol=1e-5)
    assert float(m["finite"]) == 1.0 and int(new.step) == 1


def test_aux_kl_term_unconditional_d_and_generator_only():
    lr = 0.05
    state = _state(g=CondG(aux=True), cond_d=False)
    batch = _batch(4)
    c, real = batch["condition"], batch["image"]
    g = lambda p: state.g_apply_fn({"params": p}, c)

    def kl(p):
        _, aux = g(p)
        return jnp.mean(-0.5 * (1 + aux["logvar"] - aux["mu"] ** 2 - jnp.exp(aux["logvar"])))

    # adversarial, D sees the image alone, G gets adv + 2 * KL + MSE
    new, m = make_conditional_gan_step("least_squares", terms=[kl_term(2.0), mse_term(1.0)],
                                       condition_in_discriminator=False)(state, batch)
    d = lambda p, x: state.d_apply_fn({"params": p}, x)
    d_new = _sgd(state.d_params, jax.grad(lambda p: discriminator_loss("least_squares", d(p, real),
                                                                         d(p, g(state.g_params)[0])))(state.d_params),
                 lr)
    g_total = lambda p: (generator_loss("least_squares", d(d_new, g(p)[0])) + 2.0 * kl(p)
                         + jnp.mean((g(p)[0] - real) ** 2))
    _close((new.d_params, new.g_params), (d_new, _sgd(state.g_params, jax.grad(g_total)(state.g_params), lr)))
    np.testing.assert_allclose(m["g_kl"], kl(state.g_params), rtol=1e-5)

    # G-only pretraining: D untouched, G on the terms alone
    new, m = make_conditional_gan_step(terms=[mse_term(1.0)], generator_only=True)(state, batch)
    _close(new.d_params, state.d_params)
    mse = lambda p: jnp.mean((g(p)[0] - real) ** 2)
    _close(new.g_params, _sgd(state.g_params, jax.grad(mse)(state.g_params), lr))
    assert set(m) == {"g_mse", "g_loss", "g_grad_norm", "finite"}


def test_non_finite_step_keeps_state_and_bad_input_errors():
    state = _state()
    batch = _batch(4)
    batch["image"] = batch["image"].at[0, 0].set(jnp.nan)
    new, m = make_conditional_gan_step(terms=[l1_term()])(state, batch)
    assert float(m["finite"]) == 0.0
    for a, b in zip(jax.tree_util.tree_leaves(new), jax.tree_util.tree_leaves(state)):
        np.testing.assert_array_equal(a, b)
    step = make_conditional_gan_step()
    with pytest.raises(ValueError, match=r"batch: expected keys \['condition', 'image'\], missing \['condition'\]"):
        step(state, {"image": batch["image"]})
    with pytest.raises(ValueError, match=r"batch\['condition'\]: expected leading size 4"):
        step(state, {"image": batch["image"], "condition": batch["condition"][:3]})
    with pytest.raises(ValueError, match="generator_only"):
        make_conditional_gan_step(generator_only=True)
    with pytest.raises(ValueError, match="terms"):
        make_conditional_gan_step(terms=[l1_term(), GeneratorTerm("l1", 1.0, None)])
    with pytest.raises(ValueError, match="mismatch_key"):
        make_conditional_gan_step(mismatch_key="wrong", condition_in_discriminator=False)
    with pytest.raises(ValueError, match="loss"):
        make_conditional_gan_step("wasserstein")


def test_mse_term_with_channel_weights_is_the_luma_mse():
    rng = np.random.default_rng(0)
    fake, target = (jnp.asarray(rng.uniform(-1, 1, (2, 5, 5, 3)), jnp.float32) for _ in range(2))
    term = mse_term(3.0, channel_weights=BT601_LUMA, name="y_mse")
    assert (term.name, term.weight) == ("y_mse", 3.0)
    luma = lambda x: np.asarray(rgb_to_y((np.asarray(x) + 1) / 2))  # noqa: E731 -- the metrics' Y in [0, 1]
    want = np.mean(np.square(2 * (luma(fake) - luma(target))))  # [-1, 1] images: twice the [0, 1] luma error
    np.testing.assert_allclose(term.fn(fake, {"image": target}, {}), want, rtol=1e-5)
    chroma = jnp.asarray(np.cross(BT601_LUMA, [1.0, 0.0, 0.0]), jnp.float32)  # orthogonal to the luma weights
    assert float(term.fn(target + 0.3 * chroma, {"image": target}, {})) < 1e-10
    assert float(mse_term().fn(target + 0.3 * chroma, {"image": target}, {})) > 1e-3
    with pytest.raises(ValueError, match="channel_weights has 3 entries, the images 2 channels"):
        term.fn(fake[..., :2], {"image": target[..., :2]}, {})
    with pytest.raises(ValueError, match="channel_weights: expected C floats"):
        mse_term(channel_weights=[[1.0]])


def test_multi_device_step_equals_single_device_on_concatenated_batch():
    n_dev = 8
    if jax.local_device_count() < n_dev:
        pytest.skip(f"needs {n_dev} devices (tests/conftest.py simulates 8 CPU devices)")
    g, d = CondG(batch_norm=True, axis="batch", aux=True), CondD(batch_norm=True, axis="batch")
    state = _state(g=g, d=d, latent=True, tx=optax.adam(1e-2, b1=0.5), ema=0.99)
    step = make_conditional_gan_step("non_saturating", terms=[l1_term(3.0), kl_term(2.0)], latent_shape=LATENT,
                                     mismatch_key="wrong", axis_name="batch")
    batch = _batch(n_dev * 2, seed=3, mismatch=True)

    def run(devices, steps=2):
        p = jax.pmap(step, axis_name=parallel.AXIS, devices=devices)
        s = parallel.replicate(state, devices)
        x = parallel.shard(batch, len(devices))
        for _ in range(steps):
            s, m = p(s, x)
        return jax.tree_util.tree_map(lambda a: np.asarray(a[0]), (s, m))

    s1, m1 = run(jax.local_devices()[:1])
    sn, mn = run(jax.local_devices()[:n_dev])
    for a, b in zip(jax.tree_util.tree_leaves((s1, m1)), jax.tree_util.tree_leaves((sn, mn)), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
    assert s1.g_batch_stats and s1.d_batch_stats and float(m1["finite"]) == 1.0
