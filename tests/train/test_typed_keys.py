"""Typed PRNG keys (jax.random.key) work wherever raw uint32 keys do: TrainState and GANState, jit and pmap steps,
fit with checkpoints and resume; both step builders default to a single-device step (axis_name=None)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision.data import load
from jaxvision.models.gan.mlp_gan import MLPDiscriminator, MLPGenerator
from jaxvision.train import CheckpointManager, TrainState, fit, make_train_step, parallel
from jaxvision.train.gan import GANState, make_gan_step


def _loss(params, batch_stats, batch, rng):
    noise = 1e-3 * jax.random.normal(rng, batch["x"].shape)
    logits = (batch["x"] + noise) @ params["w"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch["mode"]).mean(), (batch_stats, {})


@pytest.mark.parametrize("key", [jax.random.key, jax.random.PRNGKey], ids=["typed", "raw"])
def test_train_state_fit_jit_pmap_and_resume(key, tmp_path):
    state = TrainState.create(apply_fn=None, params={"w": jnp.zeros((2, 25))}, tx=optax.sgd(0.1), rng=key(0))
    ds = load("mixture", "train", 16, kind="grid", num_examples=64)
    a, _ = fit(state, make_train_step(_loss), ds, num_steps=2, workdir=str(tmp_path / "a"), experiment="t",
               checkpoint_every=1, progress=False)
    # resume the same run data-parallel over the 8 test devices: the key is checkpointed, replicated and restored
    b, _ = fit(state, make_train_step(_loss, axis_name=parallel.AXIS), ds, num_steps=4, workdir=str(tmp_path / "a"),
               experiment="t", checkpoint_every=1, data_parallel=True, progress=False)
    assert int(b.step) == 4 and b.rng.dtype == state.rng.dtype
    with CheckpointManager(str(tmp_path / "a"), "t") as ckpt:
        restored = ckpt.restore(state)
    assert restored.rng.dtype == state.rng.dtype
    np.testing.assert_array_equal(restored.params["w"], b.params["w"])


def test_a_non_key_is_a_clear_error():
    with pytest.raises(ValueError, match=r"rng: expected a PRNG key .* got float32 \(3,\)"):
        TrainState.create(apply_fn=None, params={}, tx=optax.sgd(0.1), rng=np.zeros(3, np.float32))


def _gan_state(key):
    g, d = MLPGenerator(hidden=(8,)), MLPDiscriminator(hidden=(8,))
    kg, kd, kr = jax.random.split(key, 3)
    return GANState.create(g_apply_fn=g.apply, g_variables=g.init(kg, jnp.zeros((1, 2))), d_apply_fn=d.apply,
                           d_variables=d.init(kd, jnp.zeros((1, 2))), g_tx=optax.adam(1e-3), d_tx=optax.adam(1e-3),
                           rng=kr)


def test_gan_step_defaults_to_one_device_and_accepts_typed_keys(tmp_path):
    real = jnp.asarray(np.random.default_rng(0).normal(size=(16, 2)), jnp.float32)
    typed, raw = _gan_state(jax.random.key(0)), _gan_state(jax.random.PRNGKey(0))
    step = jax.jit(make_gan_step("non_saturating", latent_shape=(2,)))  # plain jit: no unbound axis name
    (t1, mt), (r1, mr) = step(typed, real), step(raw, real)
    assert jax.random.key_data(t1.rng).tolist() == r1.rng.tolist()  # same stream, same numbers
    np.testing.assert_allclose(float(mt["g_loss"]), float(mr["g_loss"]), rtol=1e-6)
    # data parallel: the README's pmap_step(make_gan_step(..., axis_name='batch'))
    pstep = parallel.pmap_step(make_gan_step("non_saturating", latent_shape=(2,), axis_name=parallel.AXIS),
                               donate_state=False)
    p1, pm = pstep(parallel.replicate(typed), parallel.shard({"x": real})["x"])
    np.testing.assert_allclose(float(pm["g_loss"][0]), float(mt["g_loss"]), rtol=1e-5)
    with CheckpointManager(str(tmp_path), "gan") as ckpt:
        ckpt.save(parallel.unreplicate(p1), force=True)
        back = ckpt.restore(typed)
    assert back.rng.dtype == typed.rng.dtype and int(back.step) == 1
