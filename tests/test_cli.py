"""The jaxvision command: list/train/eval and its bad-input errors (nothing overwritten)."""
import dataclasses
import os
import sys
import types

import pytest

import experiments
from experiments._cli import main


def _fake_experiment():
    """A seconds-cheap experiment (linear classifier on the 25-mode mixture) in the registry's format."""
    import jax
    import jax.numpy as jnp
    import optax

    from jaxvision.data import load
    from jaxvision.train import CheckpointManager, TrainState, fit, make_train_step

    @dataclasses.dataclass
    class Config:
        num_steps: int = 4
        learning_rate: float = 0.1
        widths: tuple[int, ...] = (4,)
        data_parallel: bool = False

    def make_state(cfg):
        params = {"w": jnp.zeros((2, 25)), "b": jnp.zeros(25)}
        return TrainState.create(apply_fn=None, params=params, tx=optax.sgd(cfg.learning_rate),
                                 rng=jax.random.PRNGKey(0))

    def loss_fn(params, batch_stats, batch, rng):
        logits = batch["x"] @ params["w"] + params["b"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch["mode"]).mean(), (batch_stats, {})

    def train(cfg, workdir):
        ds = load("mixture", "train", 32, kind="grid", num_examples=64)
        state, summary = fit(make_state(cfg), make_train_step(loss_fn), ds, num_steps=cfg.num_steps,
                             workdir=workdir, experiment="fake_exp", config=cfg, checkpoint_every=2, log_every=2,
                             progress=False)
        return {"test_accuracy": 0.5, **summary}

    def evaluate(cfg, workdir):
        with CheckpointManager(workdir, "fake_exp", cfg) as m:
            state = m.restore(make_state(cfg))
        return {"test_accuracy": 0.5, "step": int(state.step)}

    mod = types.ModuleType("experiments.fake_exp", "fake_exp: a cheap stand-in experiment for CLI tests")
    mod.Config, mod.TINY, mod.train, mod.evaluate = Config, {"num_steps": 2}, train, evaluate
    return mod


@pytest.fixture(autouse=True)
def fake_experiment(monkeypatch):
    monkeypatch.setitem(sys.modules, "experiments.fake_exp", _fake_experiment())
    real = experiments._candidates
    monkeypatch.setattr(experiments, "_candidates", lambda: sorted(real() + ["fake_exp"]))


def _files(d):
    return sorted(os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(d) for f in fs)


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "digits_classifier" in out and "fake_exp" in out and "num_steps" in out


@pytest.mark.parametrize("argv, message", [
    (["train", "no_such_experiment"], "unknown experiment 'no_such_experiment'"),
    (["train", "fake_exp", "--set", "bogus=1"], "unknown config key"),
    (["train", "fake_exp", "--set", "num_steps=abc"], "expected int"),
    (["train", "fake_exp", "--set", "num_steps=1.5"], "expected int"),
    (["train", "fake_exp", "--set", "learning_rate=fast"], "expected float"),
    (["train", "fake_exp", "--set", "data_parallel=maybe"], "expected a bool"),
    (["train", "fake_exp", "--set", "widths=(4,x)"], "widths"),
    (["train", "fake_exp", "--set", "widths=(4,1.5)"], "widths"),
    (["train", "fake_exp", "--set", "num_steps"], "key=value"),
    (["eval", "fake_exp", "--workdir", "does/not/exist"], "no such directory"),
    (["train", "digits_classifier", "--set", "size=abc"], "expected int"),
])
def test_bad_input_exits_nonzero_and_writes_nothing(tmp_path, capsys, argv, message):
    workdir = tmp_path / "w"
    if argv[0] == "train":
        argv = argv + ["--workdir", str(workdir)]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not workdir.exists()


def test_train_eval_and_refusals(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    assert main(["train", "fake_exp", "--tiny", "--workdir", workdir, "--set", "num_steps=4"]) == 0
    assert '"test_accuracy"' in capsys.readouterr().out
    assert os.path.exists(os.path.join(workdir, "metrics.jsonl"))
    assert main(["eval", "fake_exp", "--workdir", workdir]) == 0
    assert '"step": 4' in capsys.readouterr().out
    before = {f: os.path.getmtime(os.path.join(workdir, f)) for f in _files(workdir)}

    # a workdir holding another experiment's checkpoint is refused
    meta = os.path.join(workdir, "checkpoints", "4", "meta", "metadata")
    text = open(meta).read()
    open(meta, "w").write(text.replace('"fake_exp"', '"other_experiment"'))
    assert main(["train", "fake_exp", "--workdir", workdir, "--set", "num_steps=8"]) == 2
    assert "other_experiment" in capsys.readouterr().err
    assert main(["train", "digits_classifier", "--tiny", "--workdir", workdir]) == 2
    assert "other_experiment" in capsys.readouterr().err

    # a corrupt checkpoint is a clear error, and nothing is written
    open(meta, "w").write("{corrupt")
    assert main(["train", "fake_exp", "--workdir", workdir, "--set", "num_steps=8"]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert main(["eval", "fake_exp", "--workdir", workdir]) == 2
    assert "corrupt" in capsys.readouterr().err
    after = {f: os.path.getmtime(os.path.join(workdir, f)) for f in _files(workdir)}
    assert after.keys() == before.keys()
    assert all(after[f] == before[f] for f in after if not f.endswith("meta/metadata"))


def test_list_reports_a_broken_experiment_without_hiding_others(monkeypatch, capsys):
    real = experiments._candidates
    monkeypatch.setattr(experiments, "_candidates", lambda: sorted(real() + ["fake_exp", "broken_exp_zz"]))
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "broken_exp_zz" in out and "cannot be imported" in out and "fake_exp" in out
