"""The 8-device data-parallel step equals the 1-device step on the concatenated batch."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision.train import TrainState, make_eval_step, make_train_step, parallel


class MLP(nn.Module):
    """Dense-BatchNorm-ReLU-Dense; BatchNorm statistics synchronised over ``bn_axis_name``."""

    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x, train=False):
        x = nn.Dense(16)(x.reshape(x.shape[0], -1))
        x = nn.relu(nn.BatchNorm(use_running_average=not train, axis_name=self.bn_axis_name if train else None)(x))
        return x, nn.Dense(10)(x)


def _setup(axis_name):
    model = MLP(bn_axis_name=axis_name)
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 1)))
    # SGD: Adam would amplify float noise in ~0 gradients
    state = TrainState.create(apply_fn=model.apply, params=variables["params"], tx=optax.sgd(0.1, momentum=0.9),
                              rng=jax.random.PRNGKey(1), batch_stats=variables["batch_stats"])

    def loss_fn(params, batch_stats, batch, rng):
        (_, logits), upd = model.apply({"params": params, "batch_stats": batch_stats}, batch["image"], train=True,
                                       mutable=["batch_stats"])
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
        return loss, (upd["batch_stats"], {})

    return state, loss_fn


def test_eight_devices_equal_one():
    n = jax.local_device_count()
    if n < 8:
        pytest.skip(f"needs 8 (simulated) devices, got {n}; tests/conftest.py sets XLA_FLAGS")
    from jaxvision.data import load

    ds = load("digits", "train", 32, seed=0)
    state1, loss1 = _setup(None)
    step1 = jax.jit(make_train_step(loss1))
    state8, loss8 = _setup(parallel.AXIS)
    step8 = parallel.data_parallel_train_step(loss8)
    rep = parallel.replicate(state8)
    for i in range(3):
        batch = ds.batch(i)
        state1, m1 = step1(state1, batch)
        rep, m8 = step8(rep, parallel.shard(batch, 8))
    out = parallel.unreplicate(rep)
    np.testing.assert_allclose(m8["loss"][0], m1["loss"], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(out.params), jax.tree.leaves(state1.params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(jax.tree.leaves(out.batch_stats), jax.tree.leaves(state1.batch_stats)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # every device holds the same replica
    for leaf in jax.tree.leaves(rep.params):
        np.testing.assert_array_equal(np.asarray(leaf)[0], np.asarray(leaf)[7])


def test_shard_and_replicate_shapes():
    batch = {"x": np.zeros((16, 3))}
    assert parallel.shard(batch, 4)["x"].shape == (4, 4, 3)
    with pytest.raises(ValueError, match="divisible"):
        parallel.shard({"x": np.zeros((6, 3))}, 4)
    rep = parallel.replicate({"a": np.ones(2)})
    assert rep["a"].shape == (jax.local_device_count(), 2)
    assert parallel.unreplicate(rep)["a"].shape == (2,)


def test_initialize_distributed_needs_all_settings(monkeypatch):
    monkeypatch.setenv("JAXVISION_COORDINATOR", "localhost:1234")
    monkeypatch.delenv("JAXVISION_NUM_PROCESSES", raising=False)
    monkeypatch.delenv("JAXVISION_PROCESS_ID", raising=False)
    with pytest.raises(ValueError, match="all"):
        parallel.initialize_distributed()


def test_data_parallel_eval_step_sums_over_devices():
    """The psum path: sums of the 8 shards equal the sums over the whole batch, on every device."""
    n = jax.local_device_count()
    if n < 8:
        pytest.skip(f"needs 8 (simulated) devices, got {n}; tests/conftest.py sets XLA_FLAGS")
    state, _ = _setup(None)
    model = MLP()

    def metrics_fn(params, batch_stats, batch):
        _, logits = model.apply({"params": params, "batch_stats": batch_stats}, batch["image"])
        return {"correct": jnp.sum(jnp.argmax(logits, -1) == batch["label"]), "n": jnp.float32(len(batch["label"])),
                "logit_sum": jnp.sum(logits)}

    rng = np.random.default_rng(0)
    batch = {"image": rng.uniform(0, 1, (32, 8, 8, 1)).astype(np.float32), "label": rng.integers(0, 10, 32)}
    whole = jax.jit(make_eval_step(metrics_fn))(state, batch)
    out = parallel.data_parallel_eval_step(metrics_fn)(parallel.replicate(state), parallel.shard(batch, 8))
    assert int(whole["correct"]) > 0
    for k in whole:
        assert out[k].shape == (8,)
        np.testing.assert_allclose(np.asarray(out[k]), np.full(8, whole[k]), rtol=1e-5)
