"""fit: metrics.jsonl, eval cadence, checkpoints, resume, non-finite stop, data parallel."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision.data import load
from jaxvision.train import (
    CheckpointError,
    NonFiniteLossError,
    TrainState,
    fit,
    make_train_step,
    parallel,
    read_metrics,
)


def _problem(lr=0.05, axis_name=None):
    params = {"w": jnp.zeros((2, 25)), "b": jnp.zeros(25)}
    state = TrainState.create(apply_fn=None, params=params, tx=optax.sgd(lr), rng=jax.random.PRNGKey(0))

    def loss_fn(params, batch_stats, batch, rng):
        logits = batch["x"] @ params["w"] + params["b"]
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["mode"]).mean()
        return loss, (batch_stats, {"acc": jnp.mean(jnp.argmax(logits, -1) == batch["mode"])})

    return state, make_train_step(loss_fn, axis_name)


def test_fit_logs_evaluates_checkpoints_and_resumes(tmp_path):
    ds = load("mixture", "train", 32, kind="grid", num_examples=128)
    state, step = _problem()
    calls = []

    def eval_fn(s):
        calls.append(int(s.step))
        return {"w_norm": float(jnp.linalg.norm(s.params["w"]))}

    out, summary = fit(state, step, ds, num_steps=6, workdir=str(tmp_path), experiment="t", eval_fn=eval_fn,
                       config={"num_steps": 6}, eval_every=4, checkpoint_every=4, log_every=2, progress=False)
    assert int(out.step) == 6 and calls == [4, 6]
    recs = read_metrics(tmp_path)
    assert [(r["step"], r["split"]) for r in recs] == [(2, "train"), (4, "train"), (4, "eval"), (6, "train"),
                                                      (6, "eval")]
    assert {"loss", "acc", "steps_per_sec", "time"} <= set(recs[0])
    assert "eval_w_norm" in summary and "loss" in summary
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [4, 6]
    # resume: continues from step 6 to 8 and only adds records after 6; a changed config is reported
    with pytest.warns(UserWarning, match="num_steps: 6 -> 8"):
        out2, _ = fit(state, step, ds, num_steps=8, workdir=str(tmp_path), experiment="t", checkpoint_every=4,
                      log_every=2, progress=False, config={"num_steps": 8})
    assert int(out2.step) == 8
    assert [r["step"] for r in read_metrics(tmp_path) if r["split"] == "train"] == [2, 4, 6, 8]
    # resume=False on a workdir with checkpoints is refused rather than overwriting them
    with pytest.raises(CheckpointError, match="resume=False"):
        fit(state, step, ds, num_steps=4, workdir=str(tmp_path), experiment="t", resume=False, progress=False)


def test_non_finite_loss_stops_and_keeps_checkpoint(tmp_path):
    ds = load("mixture", "train", 32, kind="grid", num_examples=128)
    state, _ = _problem()

    def loss_fn(params, batch_stats, batch, rng):
        loss = jnp.mean(params["b"] ** 2) + 1.0
        return loss, (batch_stats, {})

    def step_fn(st, batch):
        new, m = make_train_step(loss_fn)(st, batch)
        m["loss"] = jnp.where(st.step >= 4, jnp.nan, m["loss"])  # step 5 (1-based) is the first bad one
        return new, m

    with pytest.raises(NonFiniteLossError, match="step 5") as e:
        fit(state, step_fn, ds, num_steps=10, workdir=str(tmp_path), experiment="t", checkpoint_every=2,
            log_every=3, progress=False)
    assert e.value.last_checkpoint == 4 and "step 4" in str(e.value)
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [2, 4]
    assert read_metrics(tmp_path)[-1]["split"] == "non_finite"


def test_data_parallel_fit_matches_single_device(tmp_path):
    ds = load("mixture", "train", 32, kind="grid", num_examples=128)
    s1, step1 = _problem()
    out1, _ = fit(s1, step1, ds, num_steps=3, workdir=str(tmp_path / "a"), experiment="t", progress=False)
    s8, step8 = _problem(axis_name=parallel.AXIS)
    out8, _ = fit(s8, step8, ds, num_steps=3, workdir=str(tmp_path / "b"), experiment="t", progress=False,
                  data_parallel=True)
    np.testing.assert_allclose(out8.params["w"], out1.params["w"], rtol=1e-5, atol=1e-6)
    assert int(out8.step) == 3


def test_tensorboard_is_optional(tmp_path):
    import importlib.util

    from jaxvision.train import MetricsWriter

    if importlib.util.find_spec("tensorboardX") is not None:
        w = MetricsWriter(str(tmp_path), tensorboard=True)
        w.write(1, "train", {"loss": 1.0})
        w.close()
        assert (tmp_path / "tensorboard").is_dir()
    else:
        with pytest.raises(ImportError, match="tensorboardX"):
            MetricsWriter(str(tmp_path), tensorboard=True)


def test_metrics_writer_only_process_0_writes(tmp_path):
    """A non-primary process (enabled=False) neither creates, rewrites nor appends to metrics.jsonl."""
    from jaxvision.train import MetricsWriter

    primary = MetricsWriter(str(tmp_path))  # this single process is process 0
    assert primary.enabled
    for s in (1, 2, 3):
        primary.write(s, "train", {"loss": float(s)})
    other = MetricsWriter(str(tmp_path), resume_step=1, enabled=False)
    assert other.write(4, "train", {"loss": 4.0})["step"] == 4
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3]
    MetricsWriter(str(tmp_path), resume_step=2)  # the primary's resume rewrite drops step 3
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]
    MetricsWriter(str(tmp_path / "fresh"), enabled=False)
    assert not (tmp_path / "fresh").exists()
