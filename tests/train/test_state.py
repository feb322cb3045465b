import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxvision.train import TrainState, make_eval_step, make_train_step


def _linear_loss(params, batch_stats, batch, rng):
    pred = batch["x"] @ params["w"] + params["b"]
    loss = jnp.mean((pred - batch["y"]) ** 2)
    return loss, (batch_stats, {"mae": jnp.mean(jnp.abs(pred - batch["y"]))})


def test_step_is_sgd_update():
    params = {"w": jnp.ones((3, 1)), "b": jnp.zeros((1,))}
    state = TrainState.create(apply_fn=None, params=params, tx=optax.sgd(0.1), rng=jax.random.PRNGKey(0))
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    batch = {"x": x, "y": x @ np.array([[1.0], [-2.0], [0.5]], np.float32)}
    new, metrics = jax.jit(make_train_step(_linear_loss))(state, batch)
    grads = jax.grad(lambda p: _linear_loss(p, {}, batch, None)[0])(params)
    np.testing.assert_allclose(new.params["w"], params["w"] - 0.1 * grads["w"], rtol=1e-6)
    assert int(new.step) == 1 and set(metrics) == {"loss", "mae", "grad_norm"}
    np.testing.assert_allclose(metrics["grad_norm"], optax.global_norm(grads), rtol=1e-6)
    assert not np.array_equal(new.step_rng(), state.step_rng())


def test_training_reduces_loss_and_eval_sums():
    params = {"w": jnp.zeros((3, 1)), "b": jnp.zeros((1,))}
    state = TrainState.create(apply_fn=None, params=params, tx=optax.adam(0.1), rng=jax.random.PRNGKey(0))
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    batch = {"x": x, "y": x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.3}
    step = jax.jit(make_train_step(_linear_loss))
    first = None
    for _ in range(100):
        state, m = step(state, batch)
        first = first if first is not None else float(m["loss"])
    assert float(m["loss"]) < 1e-2 * first
    ev = make_eval_step(lambda p, s, b: {"n": jnp.float32(b["x"].shape[0])})(state, batch)
    assert float(ev["n"]) == 32
