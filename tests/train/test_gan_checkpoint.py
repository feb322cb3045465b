"""One Orbax checkpoint holds the whole GANState (both optimizers, EMA, RNG, BN stats) and resume is exact."""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxvision.models.gan.mlp_gan import MLPDiscriminator, MLPGenerator
from jaxvision.train import CheckpointManager
from jaxvision.train.gan import GANState, make_gan_step


def _state():
    g = MLPGenerator(hidden=(8, 8), batch_norm=True)
    d = MLPDiscriminator(hidden=(8, 8), batch_norm=True)
    kg, kd, kr = jax.random.split(jax.random.PRNGKey(0), 3)
    return GANState.create(
        g_apply_fn=g.apply, g_variables=g.init(kg, jnp.zeros((4, 2)), train=False),
        d_apply_fn=d.apply, d_variables=d.init(kd, jnp.zeros((4, 2)), train=False),
        g_tx=optax.adam(1e-2, b1=0.5), d_tx=optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(1e-2, 0.9)),
        rng=kr, ema_decay=0.9,
    )


def test_resume_is_exact(tmp_path):
    step = jax.jit(make_gan_step("least_squares", latent_shape=(2,), axis_name=None))
    real = [jnp.asarray(np.random.default_rng(i).uniform(-1, 1, (8, 2)), jnp.float32) for i in range(4)]

    straight = _state()
    for x in real:
        straight, _ = step(straight, x)

    s = _state()
    for x in real[:2]:
        s, _ = step(s, x)
    with CheckpointManager(str(tmp_path), "gan_test", every=1) as ckpt:
        assert ckpt.save(s)
    del s
    with CheckpointManager(str(tmp_path), "gan_test") as ckpt:
        resumed = ckpt.restore(_state())
    assert int(resumed.step) == 2
    for x in real[2:]:
        resumed, _ = step(resumed, x)

    leaves_a = jax.tree_util.tree_leaves_with_path(straight)
    leaves_b = jax.tree_util.tree_leaves(resumed)
    assert len(leaves_a) == len(leaves_b)
    for (path, a), b in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=jax.tree_util.keystr(path))
    # everything that must be in the checkpoint really is a leaf of the state
    names = {jax.tree_util.keystr(p) for p, _ in leaves_a}
    for field in ("g_opt_state", "d_opt_state", "g_ema", "rng", "g_batch_stats", "d_batch_stats"):
        assert any(field in n for n in names), field
