"""A corrupt latest checkpoint: resume falls back to the newest readable step (moved aside, never deleted) and the
run ends bit-identical to an uninterrupted one; a corruption that Orbax reads without error is caught by the
stored digest; ``restore(step=N)`` / ``pinned_step`` use exactly that step."""
import os
import shutil
import sys

import numpy as np
import pytest

from jaxvision.train import CheckpointError, CheckpointManager, read_metrics

sys.path.insert(0, os.path.dirname(__file__))
import resume_worker  # noqa: E402  (the tiny MLP run of the SIGKILL resume test)

sys.path.pop(0)


def _data_files(step_dir):
    out = []
    for root, _, files in os.walk(os.path.join(step_dir, "state")):
        out += [os.path.join(root, f) for f in files if os.sep + "d" + os.sep in os.path.join(root, f) + os.sep]
    return sorted(out, key=os.path.getsize)


def _zero_bytes(path, truncate=False):
    """64 zero bytes in the middle of ``path`` (what a bad disk block does), optionally truncated as well."""
    data = bytearray(open(path, "rb").read())
    mid = len(data) // 2
    data[mid:mid + 64] = bytes(64)
    open(path, "wb").write(bytes(data[:mid + 64] if truncate else data))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted 12-step run's final params, and a run stopped after 8 steps (checkpoints 4 and 8)."""
    d = tmp_path_factory.mktemp("corrupt")
    resume_worker.main(str(d / "ref"), 12, 0, str(d / "ref.npz"))
    resume_worker.main(str(d / "first"), 8, 0, str(d / "first.npz"))
    assert sorted(os.listdir(d / "first" / "checkpoints")) == ["4", "8"]
    return d


def test_resume_falls_back_past_a_corrupt_latest_checkpoint(runs, tmp_path, capfd):
    run = tmp_path / "run"
    shutil.copytree(runs / "first", run)
    _zero_bytes(_data_files(run / "checkpoints" / "8")[-1], truncate=True)
    capfd.readouterr()

    resume_worker.main(str(run), 12, 0, str(tmp_path / "resumed.npz"))
    err = capfd.readouterr().err
    warning = [line for line in err.splitlines() if "corrupt" in line]
    assert len(warning) == 1 and "step 8 is corrupt" in warning[0] and "using step 4" in warning[0], err
    assert "Traceback" not in err and "Event loop is closed" not in err
    assert sorted(os.listdir(run / "checkpoints")) == ["12", "8", "corrupt-8"]
    assert _data_files(run / "checkpoints" / "corrupt-8")  # moved aside with its files, not deleted
    a, b = np.load(runs / "ref.npz"), np.load(tmp_path / "resumed.npz")
    assert int(a["step"]) == int(b["step"]) == 12
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])
    steps = [r["step"] for r in read_metrics(run) if r["split"] == "train"]
    assert steps == list(range(2, 13, 2))  # continued from step 4: the records after it were rewritten


def test_digest_explicit_step_and_no_fallback_across_models(runs, tmp_path, capfd):
    """Step 8's state directory replaced by step 4's: well-formed files Orbax reads without complaint, caught only
    by the digest stored with step 8."""
    from jaxvision.train.checkpoint import pinned_step

    run = tmp_path / "run"
    shutil.copytree(runs / "first", run)
    shutil.rmtree(run / "checkpoints" / "8" / "state")
    shutil.copytree(run / "checkpoints" / "4" / "state", run / "checkpoints" / "8" / "state")
    state = resume_worker_state()
    with CheckpointManager(str(run), "resume_test") as m:
        with pytest.raises(CheckpointError, match="8 is corrupt: its arrays do not match the digest"):
            m.restore(state, step=8)  # an explicit step never falls back
        with pinned_step(4):
            assert int(m.restore(state).step) == 4 and m.metadata()["step"] == 4
        with pytest.raises(CheckpointError, match="no checkpoint step 5"):
            m.restore(state, step=5)
        # a state of another structure fails on every step: an error, and nothing is moved aside
        with pytest.raises(CheckpointError, match="does not match this model"):
            m.restore(state.replace(params={"w": np.zeros(3)}))
        assert sorted(os.listdir(run / "checkpoints")) == ["4", "8"]
        assert int(m.restore(state).step) == 4  # the newest readable step
    assert sorted(os.listdir(run / "checkpoints")) == ["4", "corrupt-8"]
    assert "step 8 is corrupt" in capfd.readouterr().err


def resume_worker_state():
    import jax
    import jax.numpy as jnp
    import optax

    from jaxvision.train import TrainState

    model = resume_worker.MLP()
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))["params"]
    return TrainState.create(apply_fn=model.apply, params=params, tx=optax.adam(1e-2), rng=jax.random.PRNGKey(1))
