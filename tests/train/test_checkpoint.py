"""Orbax wrapper: round trip, retention, experiment check, corrupt files, interrupted saves."""
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision.train import CheckpointError, CheckpointManager, TrainState


def _state(v=1.0, step=0):
    params = {"dense": {"kernel": jnp.full((3, 2), v), "bias": jnp.zeros(2)}}
    s = TrainState.create(apply_fn=None, params=params, tx=optax.adam(1e-3), rng=jax.random.PRNGKey(0),
                          batch_stats={"bn": {"mean": jnp.full((2,), v)}})
    return s.replace(step=jnp.int32(step))


def test_round_trip_keep_and_metadata(tmp_path):
    with CheckpointManager(str(tmp_path), "exp", {"lr": 0.1, "widths": (1, 2)}, every=2, keep=2) as m:
        assert m.restore(_state()) is not None and m.latest_step() is None
        assert not m.save(_state(step=1))          # not a multiple of every
        for step in (2, 4, 6):
            assert m.save(_state(float(step), step))
        assert not m.save(_state(9.0, 6), force=True)  # a step is never written twice
        assert m.all_steps() == [4, 6]
        r = m.restore(_state())
        assert int(r.step) == 6
        np.testing.assert_array_equal(r.params["dense"]["kernel"], np.full((3, 2), 6.0))
        np.testing.assert_array_equal(r.batch_stats["bn"]["mean"], np.full((2,), 6.0))
        assert jax.tree.structure(r.opt_state) == jax.tree.structure(_state().opt_state)
        np.testing.assert_array_equal(m.restore(_state(), step=4).params["dense"]["kernel"], np.full((3, 2), 4.0))
        meta = m.metadata()
        assert meta["experiment"] == "exp" and meta["config"] == {"lr": 0.1, "widths": [1, 2]} and meta["step"] == 6


def test_other_experiment_refused(tmp_path):
    with CheckpointManager(str(tmp_path), "exp_a") as m:
        m.save(_state(step=5), force=True)
    before = sorted(os.listdir(tmp_path / "checkpoints"))
    with pytest.raises(CheckpointError, match="exp_a"):
        CheckpointManager(str(tmp_path), "exp_b")
    assert sorted(os.listdir(tmp_path / "checkpoints")) == before


def test_corrupt_checkpoint_clear_error(tmp_path):
    with CheckpointManager(str(tmp_path), "exp") as m:
        m.save(_state(step=3), force=True)
    state_dir = tmp_path / "checkpoints" / "3" / "state"
    for root, _, files in os.walk(state_dir):  # mangle every array file
        for f in files:
            if not f.startswith("_") and "metadata" not in f:
                with open(os.path.join(root, f), "wb") as fh:
                    fh.write(b"garbage")
    with CheckpointManager(str(tmp_path), "exp") as m, pytest.raises(CheckpointError, match="corrupt"):
        m.restore(_state())
    (tmp_path / "checkpoints" / "3" / "meta" / "metadata").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        CheckpointManager(str(tmp_path), "exp")


def test_shape_mismatch_is_a_clear_error(tmp_path):
    with CheckpointManager(str(tmp_path), "exp") as m:
        m.save(_state(step=1), force=True)
        bigger = _state().replace(params={"dense": {"kernel": jnp.ones((4, 2)), "bias": jnp.zeros(2)}})
        with pytest.raises(CheckpointError):
            m.restore(bigger)


def test_interrupted_save_leaves_latest_good(tmp_path):
    """A kill mid-save leaves only Orbax's tmp directory; the latest finished step is still restored."""
    with CheckpointManager(str(tmp_path), "exp") as m:
        m.save(_state(2.0, 2), force=True)
    ck = tmp_path / "checkpoints"
    # what a process killed while writing step 4 leaves behind: a half-written tmp directory
    partial = ck / "4.orbax-checkpoint-tmp-1234567890"
    shutil.copytree(ck / "2", partial)
    shutil.rmtree(partial / "state")
    (partial / "meta" / "metadata").write_text(json.dumps({"experiment": "exp"})[:10])
    with CheckpointManager(str(tmp_path), "exp") as m:
        assert m.latest_step() == 2
        r = m.restore(_state())
        assert int(r.step) == 2
        np.testing.assert_array_equal(r.params["dense"]["kernel"], np.full((3, 2), 2.0))
        assert m.save(_state(4.0, 4), force=True)
        assert int(m.restore(_state()).step) == 4
