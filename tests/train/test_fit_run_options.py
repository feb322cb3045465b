"""fit's run options: TensorBoard event files (scalars, learning rate, grad norm, images), asynchronous Orbax
checkpoints (exact resume, nothing in flight after fit), keep-best by an eval metric, a profiler trace of a step
range, and their argument checks."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision.data import load
from jaxvision.train import (
    CheckpointManager,
    NonFiniteLossError,
    RunOptionError,
    TrainState,
    fit,
    make_train_step,
    read_metrics,
)
from jaxvision.train.checkpoint import BEST_DIR
from jaxvision.train.log_writer import read_tensorboard


@pytest.fixture(scope="module")
def ds():
    return load("mixture", "train", 32, kind="grid", num_examples=128)


def _problem(lr=0.05):
    params = {"w": jnp.zeros((2, 25)), "b": jnp.zeros(25)}
    state = TrainState.create(apply_fn=None, params=params, tx=optax.sgd(lr), rng=jax.random.PRNGKey(0))

    def loss_fn(params, batch_stats, batch, rng):
        logits = batch["x"] @ params["w"] + params["b"]
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["mode"]).mean()
        return loss, (batch_stats, {})

    return state, make_train_step(loss_fn)


def _ckpt_dirs(path):
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def test_tensorboard_scalars_learning_rate_grad_norm_and_images(tmp_path, ds):
    schedule = optax.linear_schedule(0.1, 0.0, 10)
    params = {"w": jnp.zeros((2, 25)), "b": jnp.zeros(25)}
    state = TrainState.create(apply_fn=None, params=params, tx=optax.sgd(schedule), rng=jax.random.PRNGKey(0))
    step = _problem()[1]
    grid = np.zeros((6, 8, 3), np.uint8)
    grid[:, :4] = 255

    def hook(s, _state):
        return {"samples": grid} if s % 2 == 0 else None

    fit(state, step, ds, num_steps=4, workdir=str(tmp_path), experiment="t", log_every=2, checkpoint_every=4,
        progress=False, tensorboard=True, learning_rate=schedule, hooks=[hook],
        eval_fn=lambda s: {"w_norm": float(jnp.linalg.norm(s.params["w"]))})
    tb = read_tensorboard(str(tmp_path))
    recs = [r for r in read_metrics(tmp_path) if r["split"] == "train"]
    # every train scalar of metrics.jsonl (it stays) is in the event file with the same value
    for key in ("loss", "grad_norm", "learning_rate", "steps_per_sec"):
        got = tb["scalars"][f"train/{key}"]
        assert [s for s, _ in got] == [2, 4]
        np.testing.assert_allclose([v for _, v in got], [r[key] for r in recs], rtol=1e-6)
    # the logged learning rate is the schedule's value at the interval's last update (counts 1 and 3)
    np.testing.assert_allclose([v for _, v in tb["scalars"]["train/learning_rate"]], [0.09, 0.07], rtol=1e-6)
    assert all(v > 0 for _, v in tb["scalars"]["train/grad_norm"])
    assert [s for s, _ in tb["scalars"]["eval/w_norm"]] == [4]
    assert tb["images"]["samples"] == [(2, (6, 8, 3)), (4, (6, 8, 3))]


def test_async_checkpoint_resume_is_exact_and_nothing_is_in_flight(tmp_path, ds):
    state, step = _problem()
    full, _ = fit(state, step, ds, num_steps=6, workdir=str(tmp_path / "full"), experiment="t",
                  checkpoint_every=2, log_every=2, progress=False)
    fit(state, step, ds, num_steps=4, workdir=str(tmp_path / "split"), experiment="t", checkpoint_every=2,
        log_every=2, progress=False, async_checkpoint=True)
    # fit returned: every save finished (final names, no Orbax tmp directory), the digests verify
    assert _ckpt_dirs(tmp_path / "split" / "checkpoints") == ["2", "4"]
    resumed, _ = fit(state, step, ds, num_steps=6, workdir=str(tmp_path / "split"), experiment="t",
                     checkpoint_every=2, log_every=2, progress=False, async_checkpoint=True)
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with CheckpointManager(str(tmp_path / "split"), "t") as ckpt:
        assert ckpt.all_steps() == [2, 4, 6]
        restored = ckpt.restore(state)
    np.testing.assert_array_equal(restored.params["w"], full.params["w"])


def test_async_checkpoint_is_finished_when_fit_raises(tmp_path, ds):
    state, step = _problem()

    def bad_step(st, batch):
        new, m = step(st, batch)
        m["loss"] = jnp.where(st.step >= 2, jnp.nan, m["loss"])  # step 3 is the first bad one
        return new, m

    with pytest.raises(NonFiniteLossError, match="step 3"):
        fit(state, bad_step, ds, num_steps=6, workdir=str(tmp_path), experiment="t", checkpoint_every=2,
            log_every=3, progress=False, async_checkpoint=True)
    assert _ckpt_dirs(tmp_path / "checkpoints") == ["2"]
    with CheckpointManager(str(tmp_path), "t") as ckpt:
        assert int(ckpt.restore(state).step) == 2


def test_async_checkpoint_is_finished_on_keyboard_interrupt(tmp_path, ds):
    state, step = _problem()

    def interrupt(s, _state):
        if s == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(state, step, ds, num_steps=6, workdir=str(tmp_path), experiment="t", checkpoint_every=2,
            progress=False, async_checkpoint=True, hooks=[interrupt])
    assert _ckpt_dirs(tmp_path / "checkpoints") == ["2"]  # written in full, under its final name
    with CheckpointManager(str(tmp_path), "t") as ckpt:
        assert int(ckpt.restore(state).step) == 2


@pytest.mark.parametrize("mode,want", [("max", 4), ("min", 2)])
def test_keep_best_keeps_the_best_eval_step_besides_the_latest(tmp_path, ds, mode, want):
    state, step = _problem()
    score = {2: 0.5, 4: 0.9, 6: 0.7}

    out, _ = fit(state, step, ds, num_steps=6, workdir=str(tmp_path), experiment="t", checkpoint_every=2, keep=1,
                 log_every=2, progress=False, eval_every=2, eval_fn=lambda s: {"score": score[int(s.step)]},
                 keep_best="score", keep_best_mode=mode)
    assert _ckpt_dirs(tmp_path / "checkpoints") == ["6"]  # the latest, for resuming
    assert _ckpt_dirs(tmp_path / BEST_DIR) == [str(want)]
    with CheckpointManager(str(tmp_path), "t", directory=BEST_DIR) as best:
        assert best.metadata()["metrics"] == {"score": score[want]}
        restored = best.restore(state)
    reference, _ = fit(state, step, ds, num_steps=want, workdir=str(tmp_path / "ref"), experiment="t",
                       progress=False)
    np.testing.assert_array_equal(restored.params["w"], reference.params["w"])
    # a resumed run continues from the latest checkpoint, not from the best one
    resumed, _ = fit(state, step, ds, num_steps=6, workdir=str(tmp_path), experiment="t", progress=False)
    np.testing.assert_array_equal(resumed.params["w"], out.params["w"])


def test_keep_best_needs_the_metric(tmp_path, ds):
    state, step = _problem()
    with pytest.raises(RunOptionError, match="keep_best='mAP'.*w_norm"):
        fit(state, step, ds, num_steps=2, workdir=str(tmp_path), experiment="t", progress=False,
            eval_fn=lambda s: {"w_norm": 1.0}, keep_best="mAP")
    assert _ckpt_dirs(tmp_path / "checkpoints") == ["2"]  # what was written stays


@pytest.mark.parametrize("kwargs,match", [
    (dict(keep_best="acc"), "needs an eval_fn"),
    (dict(keep_best="acc", keep_best_mode="best", eval_fn=lambda s: {}), "keep_best_mode: expected one of"),
    (dict(profile_steps=(3, 2)), r"profile_steps: expected \(N, M\) with 1 <= N <= M"),
    (dict(profile_steps=(0, 2)), "profile_steps"),
    (dict(learning_rate={"lr": "fast"}), r"learning_rate\['lr'\]"),
])
def test_bad_run_options_are_refused_before_anything_is_written(tmp_path, ds, kwargs, match):
    state, step = _problem()
    with pytest.raises(RunOptionError, match=match):
        fit(state, step, ds, num_steps=2, workdir=str(tmp_path / "w"), experiment="t", progress=False, **kwargs)
    assert not (tmp_path / "w").exists()


def test_profile_steps_writes_a_trace(tmp_path, ds):
    state, step = _problem()
    fit(state, step, ds, num_steps=3, workdir=str(tmp_path), experiment="t", progress=False, profile_steps=(2, 2))
    traces = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path / "profile") for f in fs]
    assert any(t.endswith(".xplane.pb") and os.path.getsize(t) > 0 for t in traces), traces
