"""GAN step semantics: D first with G frozen, then G through frozen D; n_critic; EMA; multi-device equality."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision.models.gan.mlp_gan import MLPDiscriminator, MLPGenerator
from jaxvision.ops.gan_losses import discriminator_loss, generator_loss
from jaxvision.train import parallel
from jaxvision.train.gan import GANState, latent_noise, make_gan_step, validate_real

LATENT = (3,)


def _state(batch_norm=False, axis=None, ema=None, lr=0.05, tx=None, seed=0):
    g = MLPGenerator(hidden=(8, 8), batch_norm=batch_norm, bn_axis_name=axis)
    d = MLPDiscriminator(hidden=(8, 8), batch_norm=batch_norm, bn_axis_name=axis)
    kg, kd, kr = jax.random.split(jax.random.PRNGKey(seed), 3)
    gv = g.init(kg, jnp.zeros((4,) + LATENT), train=False)
    dv = d.init(kd, jnp.zeros((4, 2)), train=False)
    return GANState.create(
        g_apply_fn=g.apply, g_variables=gv, d_apply_fn=d.apply, d_variables=dv,
        g_tx=tx or optax.sgd(lr), d_tx=tx or optax.sgd(lr), rng=kr, ema_decay=ema,
    )


def _real(n, seed=1):
    return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, (n, 2)), jnp.float32)


@pytest.mark.parametrize("loss", ["minimax", "non_saturating", "least_squares", "hinge"])
def test_step_matches_hand_written_reference(loss):
    lr = 0.05
    state = _state(lr=lr)
    real = _real(6)
    new, m = make_gan_step(loss, latent_shape=LATENT, axis_name=None)(state, real)  # eager: no compile

    # reference: D update on (real, stop_gradient(G(z))), then G update through the updated D
    _, step_key = jax.random.split(state.rng)
    z = latent_noise(jax.random.fold_in(step_key, 0), 6, LATENT)
    g = lambda p: state.g_apply_fn({"params": p}, z)
    d = lambda p, x: state.d_apply_fn({"params": p}, x)
    fake = g(state.g_params)
    d_grads = jax.grad(lambda p: discriminator_loss(loss, d(p, real), d(p, fake)))(state.d_params)
    d_new = jax.tree_util.tree_map(lambda p, gr: p - lr * gr, state.d_params, d_grads)
    g_grads = jax.grad(lambda p: generator_loss(loss, d(d_new, g(p))))(state.g_params)
    g_new = jax.tree_util.tree_map(lambda p, gr: p - lr * gr, state.g_params, g_grads)

    for a, b in zip(jax.tree_util.tree_leaves((new.d_params, new.g_params)), jax.tree_util.tree_leaves((d_new, g_new))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m["g_grad_norm"], optax.global_norm(g_grads), rtol=1e-5)
    assert int(new.step) == 1 and float(m["finite"]) == 1.0
    assert not np.array_equal(new.rng, state.rng)


def test_n_critic_uses_strided_real_rows_and_fresh_noise():
    lr = 0.05
    state = _state(lr=lr)
    real = _real(6)  # n_critic=3 -> B=2; critic k sees real[k::3]
    new, _ = make_gan_step("hinge", latent_shape=LATENT, n_critic=3, axis_name=None)(state, real)
    _, step_key = jax.random.split(state.rng)
    g = lambda p, k: state.g_apply_fn({"params": p}, latent_noise(jax.random.fold_in(step_key, k), 2, LATENT))
    d = lambda p, x: state.d_apply_fn({"params": p}, x)
    dp = state.d_params
    for k in range(3):
        fake = g(state.g_params, k)
        grads = jax.grad(lambda p: discriminator_loss("hinge", d(p, real[k::3]), d(p, fake)))(dp)
        dp = jax.tree_util.tree_map(lambda p, gr: p - lr * gr, dp, grads)
    g_grads = jax.grad(lambda p: generator_loss("hinge", d(dp, g(p, 2))))(state.g_params)
    g_new = jax.tree_util.tree_map(lambda p, gr: p - lr * gr, state.g_params, g_grads)
    for a, b in zip(jax.tree_util.tree_leaves((new.d_params, new.g_params)), jax.tree_util.tree_leaves((dp, g_new))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_ema_tracks_generator():
    state = _state(ema=0.9)
    new, _ = make_gan_step("non_saturating", latent_shape=LATENT, axis_name=None)(state, _real(4))
    for e, p0, p1 in zip(*(jax.tree_util.tree_leaves(t) for t in (new.g_ema, state.g_params, new.g_params))):
        np.testing.assert_allclose(e, 0.9 * p0 + 0.1 * p1, rtol=1e-5, atol=1e-7)


def test_non_finite_step_keeps_last_good_state():
    state = _state()
    real = _real(4).at[0, 0].set(jnp.nan)
    new, m = make_gan_step("minimax", latent_shape=LATENT, axis_name=None)(state, real)
    assert float(m["finite"]) == 0.0
    for a, b in zip(jax.tree_util.tree_leaves(new), jax.tree_util.tree_leaves(state)):
        np.testing.assert_array_equal(a, b)


def test_multi_device_step_equals_single_device_on_concatenated_batch():
    n_dev = 8
    if jax.local_device_count() < n_dev:
        pytest.skip(f"needs {n_dev} devices (tests/conftest.py simulates 8 CPU devices)")
    tx = optax.adam(1e-2, b1=0.5)
    state = _state(batch_norm=True, axis="batch", ema=0.99, tx=tx)
    step = make_gan_step("non_saturating", latent_shape=LATENT, n_critic=2, axis_name="batch")
    real = _real(n_dev * 2 * 4, seed=3)  # per device: n_critic=2 x B=4

    def run(devices, batch, steps=2):
        p = jax.pmap(step, axis_name=parallel.AXIS, devices=devices)  # parallel.pmap_step on a device subset
        s = parallel.replicate(state, devices)
        x = parallel.shard({"x": batch}, len(devices))["x"]
        for _ in range(steps):
            s, m = p(s, x)
        return jax.tree_util.tree_map(lambda a: np.asarray(a[0]), (s, m))

    s1, m1 = run(jax.local_devices()[:1], real)
    sn, mn = run(jax.local_devices()[:n_dev], real)
    for a, b in zip(jax.tree_util.tree_leaves((s1, m1)), jax.tree_util.tree_leaves((sn, mn))):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
    assert s1.g_batch_stats  # BatchNorm statistics exist and were compared


def test_validate_real():
    validate_real(np.zeros((2, 4, 4, 1), np.float32), shape=(4, 4, 1))
    with pytest.raises(ValueError, match=r"real: expected values in \[-1, 1\]"):
        validate_real(np.full((2, 4, 4, 1), 255.0, np.float32))
    with pytest.raises(ValueError, match="real: expected shape"):
        validate_real(np.zeros((2, 4, 4, 3), np.float32), shape=(4, 4, 1))
    with pytest.raises(ValueError, match="float"):
        validate_real(np.zeros((2, 4, 4, 1), np.uint8))
    with pytest.raises(ValueError, match="finite"):
        validate_real(np.full((2, 2), np.nan, np.float32))


def test_dcgan_eight_devices_equal_one_with_synchronized_batchnorm():
    """DCGAN (custom-gradient Conv / ConvTranspose, BatchNorm synchronized over ``bn_axis_name``) pmapped on 8
    devices x 2 images equals the same step on one device with all 16 images (no axis: plain BatchNorm over the
    whole batch); per-device batch statistics would differ without the synchronization."""
    from jaxvision.models.gan.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_optimizer

    n_dev = 8
    if jax.local_device_count() < n_dev:
        pytest.skip(f"needs {n_dev} devices (tests/conftest.py simulates 8 CPU devices)")

    kg, kd, kr = jax.random.split(jax.random.PRNGKey(0), 3)
    gv = jax.jit(lambda k: DCGANGenerator(size=16, nz=8, ngf=4, channels=1).init(k, jnp.zeros((1, 8))))(kg)
    dv = jax.jit(lambda k: DCGANDiscriminator(size=16, ndf=4, channels=1).init(k, jnp.zeros((1, 16, 16, 1))))(kd)

    def make(axis):  # the same variables; BatchNorm statistics synchronized over `axis` (None: not)
        return GANState.create(
            g_apply_fn=DCGANGenerator(size=16, nz=8, ngf=4, channels=1, bn_axis_name=axis).apply, g_variables=gv,
            d_apply_fn=DCGANDiscriminator(size=16, ndf=4, channels=1, bn_axis_name=axis).apply, d_variables=dv,
            g_tx=dcgan_optimizer(1e-2), d_tx=dcgan_optimizer(1e-2), rng=kr, ema_decay=0.9)

    real = jnp.asarray(np.random.default_rng(4).uniform(-1, 1, (16, 16, 16, 1)), jnp.float32)
    ref, _ = jax.jit(make_gan_step("non_saturating", latent_shape=(8,), axis_name=None))(make(None), real)

    p = jax.pmap(make_gan_step("non_saturating", latent_shape=(8,), axis_name=parallel.AXIS),
                 axis_name=parallel.AXIS, devices=jax.local_devices()[:n_dev])
    out, _ = p(parallel.replicate(make(parallel.AXIS), jax.local_devices()[:n_dev]),
               parallel.shard({"x": real}, n_dev)["x"])
    out = jax.tree_util.tree_map(lambda a: np.asarray(a[0]), out)
    assert ref.g_batch_stats and ref.d_batch_stats
    for a, b in zip(jax.tree_util.tree_leaves(ref), jax.tree_util.tree_leaves(out)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    init = make(None)
    moved = [np.abs(a - b).max() for a, b in zip(jax.tree_util.tree_leaves(ref.g_params),
                                                  jax.tree_util.tree_leaves(init.g_params))]
    assert min(moved) > 1e-4  # every generator weight was trained
