"""The run options as config keys: present (and off) in every training experiment, bad values refused before
anything is written, and README's "Run options" commands run at TINY size (slow: CI's end-to-end step)."""
import dataclasses
import glob
import json
import os
import pathlib
import re
import shlex

import pytest

import experiments
from experiments._cli import main
from experiments._run_options import RUN_OPTION_KEYS, RunOptions

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _readme_commands() -> dict[str, list[str]]:
    """{key: argv} of the example column of README's "Run options" table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Run options", 1)[1].split("\n## ", 1)[0]
    out = {}
    for key, cmd in re.findall(r"^\| `(\w+)`[^|]*\|[^|]*\| `(jaxvision train [^`]+)` \|$", section, re.M):
        out[key] = shlex.split(cmd)[1:]
    return out


def test_every_training_experiment_has_the_run_options_off():
    found, broken = experiments.discover()
    assert not broken
    for name, module in found.items():
        assert issubclass(module.Config, RunOptions), name
        cfg = experiments.make_config(module)
        assert {k: getattr(cfg, k) for k in RUN_OPTION_KEYS} == {
            "tensorboard": False, "async_checkpoint": False, "keep_best": None, "keep_best_mode": "max",
            "profile_steps": None}, name
    assert set(_readme_commands()) == {"tensorboard", "async_checkpoint", "keep_best", "profile_steps"}


@pytest.mark.parametrize("name,sets,message", [
    ("dcgan_digits", ["keep_best=fid"], "experiment 'dcgan_digits' has no eval metric during training"),
    ("mode_collapse", ["keep_best=modes_captured"], "has no eval metric during training"),
    ("digits_classifier", ["profile_steps=(3, 1)"], r"expected \(N, M\) with 1 <= N <= M"),
    ("digits_classifier", ["keep_best_mode=best"], "expected one of 'max', 'min'"),
    ("digits_classifier", ["tensorboard=maybe"], "expected a bool"),
])
def test_bad_run_options_exit_2_before_anything_is_written(tmp_path, capsys, name, sets, message):
    workdir = tmp_path / "w"
    argv = ["train", name, "--tiny", "--workdir", str(workdir)]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not workdir.exists()


def test_dcgan_sample_hook_returns_the_grid_for_tensorboard(tmp_path, monkeypatch):
    import numpy as np

    from experiments import _dcgan, dcgan_digits

    cfg = dataclasses.replace(experiments.make_config(dcgan_digits, tiny=True), sample_every=2)
    monkeypatch.setattr(_dcgan, "generate", lambda state, z, ema=False: np.zeros((len(z), cfg.size, cfg.size, 1)))
    hook = _dcgan.sample_hook(cfg, str(tmp_path))
    assert hook(1, None) is None
    images = hook(2, None)
    assert images == {"samples": str(tmp_path / "samples" / "step_000002.png")}  # fit adds it to TensorBoard
    assert os.path.isfile(images["samples"])


# -- README's commands, end to end (TINY digits_classifier runs) -------------------------------------------------

@pytest.fixture(scope="module")
def readme_runs(tmp_path_factory) -> dict[str, pathlib.Path]:
    """Each README command run once into its own workdir."""
    root = tmp_path_factory.mktemp("run_options")
    out = {}
    for key, argv in _readme_commands().items():
        out[key] = root / key
        assert main([*argv, "--workdir", str(out[key])]) == 0
    return out


def _evals(workdir) -> list[dict]:
    from jaxvision.train import read_metrics

    return [r for r in read_metrics(str(workdir)) if r["split"] == "eval"]


@pytest.mark.slow
def test_readme_tensorboard(readme_runs):
    from jaxvision.train import read_metrics, read_tensorboard

    workdir = readme_runs["tensorboard"]
    tb = read_tensorboard(str(workdir))
    train = [r for r in read_metrics(str(workdir)) if r["split"] == "train"]
    for key in ("loss", "accuracy", "learning_rate", "grad_norm"):
        assert [v for _, v in tb["scalars"][f"train/{key}"]] == pytest.approx([r[key] for r in train], rel=1e-6)
    assert [v for _, v in tb["scalars"]["eval/test_accuracy"]] == pytest.approx(
        [r["test_accuracy"] for r in _evals(workdir)], rel=1e-6)
    (step, shape), = tb["images"]["eval/predictions"]
    assert step == train[-1]["step"] and shape[2] == 3
    assert "train/time" not in tb["scalars"]


@pytest.mark.slow
def test_readme_async_checkpoint_saves_what_a_synchronous_run_saves(readme_runs):
    """Every step's state digest (sha256 of all arrays, verified on restore) equals the synchronous run's."""
    def digests(w):
        assert not glob.glob(str(w / "checkpoints" / "*tmp*"))  # nothing left in flight
        return {p.parent.parent.name: json.loads(p.read_text())["state_sha256"]
                for p in (w / "checkpoints").glob("*/meta/metadata")}

    got, want = digests(readme_runs["async_checkpoint"]), digests(readme_runs["keep_best"])
    assert sorted(got) == ["3", "6"] and got == want


@pytest.mark.slow
def test_readme_keep_best(readme_runs):
    workdir = readme_runs["keep_best"]
    evals = _evals(workdir)
    best = max(evals, key=lambda r: (r["test_accuracy"], -r["step"]))  # the first step reaching the maximum
    assert os.listdir(workdir / "checkpoints_best") == [str(best["step"])]
    meta = json.loads((workdir / "checkpoints_best" / str(best["step"]) / "meta" / "metadata").read_text())
    assert meta["metrics"]["test_accuracy"] == best["test_accuracy"]
    assert sorted(os.listdir(workdir / "checkpoints")) == ["3", "6"]  # the latest ones, as without keep_best


@pytest.mark.slow
def test_readme_profile_steps(readme_runs):
    traces = glob.glob(str(readme_runs["profile_steps"] / "profile" / "plugins" / "profile" / "*" / "*.xplane.pb"))
    assert [p for p in traces if os.path.getsize(p) > 0]


@pytest.mark.slow
def test_mode_collapse_loop_profiles_its_chunks_and_saves_asynchronously(tmp_path):
    """mode_collapse trains in scanned chunks without fit: its own profile / async / TensorBoard wiring."""
    from experiments import mode_collapse as mc
    from jaxvision.train import CheckpointManager, MetricsWriter, read_tensorboard

    cfg = experiments.make_config(mc, {"losses": ("hinge",), "seeds": 1, "tensorboard": True,
                                       "async_checkpoint": True, "profile_steps": (12, 15)}, tiny=True)
    writer = MetricsWriter(str(tmp_path), tensorboard=cfg.tensorboard)
    try:
        bundle = mc.train_one(cfg, "ring", "hinge", str(tmp_path), writer, profile=True)
    finally:
        writer.close()
    assert int(bundle.step) == cfg.num_steps
    assert glob.glob(str(tmp_path / "profile" / "plugins" / "profile" / "*" / "*.xplane.pb"))
    with CheckpointManager(str(tmp_path / "ring_hinge"), mc.NAME) as ckpt:
        assert ckpt.all_steps() == [cfg.num_steps]
    scalars = read_tensorboard(str(tmp_path))["scalars"]
    assert [s for s, _ in scalars["train/ring/hinge/d_loss"]] == [10, 20]
    assert [v for _, v in scalars["train/ring/hinge/learning_rate"]] == pytest.approx([cfg.learning_rate] * 2)
