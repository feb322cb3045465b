"""The jaxvision command: list/train/eval/fid end to end, and its bad-input errors (nothing overwritten)."""
import dataclasses
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

import experiments
from experiments._cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]


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
        eval_batches: int = 1

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
        return {"test_accuracy": 0.5, "step": int(state.step), "widths": list(cfg.widths),
                "eval_batches": cfg.eval_batches}

    mod = types.ModuleType("experiments.fake_exp", "fake_exp: a cheap stand-in experiment for CLI tests")
    mod.Config, mod.TINY, mod.train, mod.evaluate = Config, {"num_steps": 2}, train, evaluate
    mod.EVAL_KEYS = ("eval_batches",)
    return mod


@pytest.fixture(autouse=True)
def fake_experiment(monkeypatch):
    monkeypatch.setitem(sys.modules, "experiments.fake_exp", _fake_experiment())
    real = experiments._candidates
    monkeypatch.setattr(experiments, "_candidates", lambda: sorted(real() + ["fake_exp"]))


def _result(stdout: str) -> dict:
    """The JSON result the command prints last (progress lines may come first)."""
    return json.loads(stdout[stdout.rfind("\n{") + 1:] if not stdout.startswith("{") else stdout)


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
    (["train", "digits_classifier", "--set", "size=abc"], "expected one of 8, 16, 32, got 'abc'"),
    (["train", "digits_classifier", "--set", "size=12"], "expected one of 8, 16, 32, got 12"),
    (["train", "ssd_shapes", "--set", "preset=ssd300-voc"],
     "--set preset=ssd300-voc: unknown preset for experiment 'ssd_shapes'; valid: ssd300_voc"),
    (["train", "yolo_shapes", "--set", "model=yolo9000"], "expected one of 'small', 'yolo448', got 'yolo9000'"),
    (["train", "digits_classifier", "--set", "preset=fast"], "valid: (this experiment has none)"),
    (["train", "localization_shapes", "--set", "box_loss=iou"], "expected one of 'giou', 'smooth_l1', got 'iou'"),
    (["train", "dcgan_digits", "--set", "upsampling=bilinear"], "'transposed', 'nearest', 'bed_of_nails'"),
    (["train", "mode_collapse", "--set", "kinds=ring,square"], "kinds=ring,square: expected elements of type one of"),
    (["eval", "fake_exp", "--workdir", "empty"], "no checkpoint of fake_exp"),
])
def test_bad_input_exits_nonzero_and_writes_nothing(tmp_path, capsys, argv, message):
    """Every case runs on a workdir under tmp_path (train: a new one; eval: its --workdir, a missing directory or an
    existing empty one), and that workdir is exactly as before: still missing, or still empty."""
    if argv[0] == "train":
        workdir = tmp_path / "w"
        argv = argv + ["--workdir", str(workdir)]
    else:
        i = argv.index("--workdir") + 1
        workdir = tmp_path / argv[i]
        if argv[i] == "empty":
            workdir.mkdir()
        argv = argv[:i] + [str(workdir)] + argv[i + 1:]
    existed = workdir.exists()
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert workdir.exists() == existed and (not existed or _files(workdir) == []), _files(tmp_path)


def test_train_eval_and_refusals(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    argv = ["train", "fake_exp", "--tiny", "--workdir", workdir, "--set", "num_steps=4", "--set", "widths=(8,)"]
    assert main(argv) == 0
    assert '"test_accuracy"' in capsys.readouterr().out
    assert os.path.exists(os.path.join(workdir, "metrics.jsonl"))
    # summary.json: what ran and what it measured (the source of README's result tables)
    summary = json.load(open(os.path.join(workdir, "summary.json")))
    assert set(summary) == {"experiment", "command", "config", "metrics", "machine", "date", "wall_s"}
    assert summary["experiment"] == "fake_exp" and summary["command"] == ["jaxvision", *argv]
    assert summary["config"] == {"num_steps": 4, "learning_rate": 0.1, "widths": [8], "data_parallel": False,
                                 "eval_batches": 1}
    assert summary["metrics"]["test_accuracy"] == 0.5 and summary["metrics"]["steps_per_sec"] > 0
    assert summary["machine"]["cpu_count"] == os.cpu_count() and summary["machine"]["jax"]
    assert summary["date"].endswith("+00:00") and summary["wall_s"] > 0
    # eval rebuilds the model from the config stored in the checkpoint, not from the command-line defaults
    assert main(["eval", "fake_exp", "--workdir", workdir]) == 0
    out = _result(capsys.readouterr().out)
    assert out["step"] == 4 and out["widths"] == [8] and out["eval_batches"] == 1
    assert main(["eval", "fake_exp", "--workdir", workdir, "--set", "eval_batches=3"]) == 0
    assert _result(capsys.readouterr().out)["eval_batches"] == 3
    summary = json.load(open(os.path.join(workdir, "summary.json")))
    assert summary["command"][1] == "eval" and summary["metrics"]["eval_batches"] == 3
    assert summary["config"]["eval_batches"] == 3 and summary["config"]["widths"] == [8]
    history = [json.loads(line) for line in open(os.path.join(workdir, "summaries.jsonl"))]
    assert [h["command"][1] for h in history] == ["train", "eval", "eval"] and history[-1] == summary
    assert main(["eval", "fake_exp", "--workdir", workdir, "--step", "2"]) == 0  # an explicit checkpoint
    assert _result(capsys.readouterr().out)["step"] == 2
    assert main(["eval", "fake_exp", "--workdir", workdir, "--step", "3"]) == 2
    assert "no checkpoint step 3" in capsys.readouterr().err
    # keys that define the model or its training are not eval-time keys
    assert main(["eval", "fake_exp", "--workdir", workdir, "--set", "widths=(4,)"]) == 2
    assert "--set widths: not an eval-time key of 'fake_exp'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # no --tiny for eval: argparse exits 2
        main(["eval", "fake_exp", "--workdir", workdir, "--tiny"])
    assert e.value.code == 2
    capsys.readouterr()
    before = {f: os.path.getmtime(os.path.join(workdir, f)) for f in _files(workdir)}

    # a workdir holding another experiment's checkpoint is refused
    meta = os.path.join(workdir, "checkpoints", "4", "meta", "metadata")
    text = open(meta).read()
    open(meta, "w").write(text.replace('"fake_exp"', '"other_experiment"'))
    assert main(["train", "fake_exp", "--workdir", workdir, "--set", "num_steps=8"]) == 2
    assert "other_experiment" in capsys.readouterr().err
    assert main(["train", "digits_classifier", "--tiny", "--workdir", workdir]) == 2
    assert "other_experiment" in capsys.readouterr().err

    # corrupt checkpoints (every step: no fallback) are a clear error, and nothing is written
    open(meta, "w").write("{corrupt")
    meta2 = meta.replace(f"{os.sep}4{os.sep}", f"{os.sep}2{os.sep}")
    text2 = open(meta2).read()
    open(meta2, "w").write("{corrupt")
    assert main(["train", "fake_exp", "--workdir", workdir, "--set", "num_steps=8"]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert main(["eval", "fake_exp", "--workdir", workdir]) == 2
    assert "corrupt" in capsys.readouterr().err
    after = {f: os.path.getmtime(os.path.join(workdir, f)) for f in _files(workdir)}
    assert after.keys() == before.keys()
    assert all(after[f] == before[f] for f in after if not f.endswith("meta/metadata"))
    assert "Traceback" not in capsys.readouterr().err
    # only the latest corrupt: eval falls back to step 2 with a one-line warning, step 4 is moved aside
    open(meta2, "w").write(text2)
    assert main(["eval", "fake_exp", "--workdir", workdir]) == 0
    out, err = capsys.readouterr()
    assert _result(out)["step"] == 2 and "warning: checkpoint step 4 is corrupt" in err and "Traceback" not in err
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "corrupt-4"]


def test_list_reports_a_broken_experiment_without_hiding_others(monkeypatch, capsys):
    real = experiments._candidates
    monkeypatch.setattr(experiments, "_candidates", lambda: sorted(real() + ["fake_exp", "broken_exp_zz"]))
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "broken_exp_zz" in out and "cannot be imported" in out and "fake_exp" in out


def test_presets_and_tiny_configs_are_valid():
    """Every experiment's TINY and PRESETS values pass the same type and choice checks as --set."""
    for name in experiments.names():
        module = experiments.get(name)
        experiments.make_config(module, tiny=True)
        for preset in getattr(module, "PRESETS", {}):
            cfg = experiments.make_config(module, {"preset": preset})
            assert all(getattr(cfg, k) == v for k, v in module.PRESETS[preset].items())
        assert set(getattr(module, "EVAL_KEYS", ())) <= {f.name for f in dataclasses.fields(module.Config)}


def _cli(*args, env=None):
    """The installed console script if there is one, else the same entry point through python."""
    exe = shutil.which("jaxvision")
    cmd = [exe, *args] if exe else [sys.executable, "-c", "import sys; from experiments._cli import main; "
                                    "sys.exit(main())", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


def _random_inception_npz(path):
    """Random FID Inception weights in the converted .npz format (PyTorch names), as the inception test builds."""
    fix = ROOT / "tests" / "metrics" / "fixtures"
    spec = importlib.util.spec_from_file_location("make_inception_fixture", fix / "make_inception_fixture.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with np.load(fix / "inception_random.npz") as f:
        names_shapes = [(n, tuple(s)) for n, s in json.loads(str(f["names_shapes"]))]
        seed = int(f["seed"])
    np.savez(path, **mod.random_state_dict(names_shapes, seed))
    return path


def _image_folder(path, seed, n=3, size=20):
    from PIL import Image

    path.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path / f"{i}.png")
    return path


@pytest.mark.slow  # every subcommand as a user runs it (~70 s): CI's slow step
def test_every_subcommand_end_to_end(tmp_path, capsys, monkeypatch):
    """list, train, eval and fid as a user runs them: the console script, a real experiment, random Inception
    weights (--no-check-hash) and the missing-weights error."""
    listed = _cli("list")
    assert listed.returncode == 0, listed.stderr
    assert "ssd_shapes" in listed.stdout and "presets: ssd300_voc" in listed.stdout

    workdir = str(tmp_path / "digits")
    assert main(["train", "digits_classifier", "--tiny", "--workdir", workdir]) == 0
    trained = _result(capsys.readouterr().out)
    assert main(["eval", "digits_classifier", "--workdir", workdir]) == 0
    assert _result(capsys.readouterr().out)["test_accuracy"] == trained["test_accuracy"]

    a, b = _image_folder(tmp_path / "a", 0), _image_folder(tmp_path / "b", 1)
    weights = str(_random_inception_npz(tmp_path / "random_inception.npz"))
    assert main(["fid", str(a), str(b), "--weights", weights, "--no-check-hash", "--batch-size", "3"]) == 0
    out = capsys.readouterr().out
    value = float(out.split()[1])
    assert out.startswith("FID: ") and np.isfinite(value) and value > 0
    stats = str(tmp_path / "a.npz")
    assert main(["fid", "--save-stats", str(a), stats, "--weights", weights, "--no-check-hash"]) == 0
    capsys.readouterr()
    assert main(["fid", stats, str(b), "--weights", weights, "--no-check-hash"]) == 0
    assert float(capsys.readouterr().out.split()[1]) == pytest.approx(value, rel=1e-6)

    # no weights anywhere: exit 2 and one line naming the file to download
    env = {k: v for k, v in os.environ.items() if k not in ("JAXVISION_FID_WEIGHTS", "TORCH_HOME")}
    env["HOME"] = str(tmp_path)
    missing = _cli("fid", str(a), str(b), env=env)
    assert missing.returncode == 2, missing.stderr
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jaxvision fid: error: FID Inception weights not found")
    url = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
    assert url in lines[0]


def test_eval_finds_the_config_of_a_workdir_holding_several_runs(tmp_path, capsys):
    """mode_collapse keeps one checkpoint directory per run (<workdir>/<run>/checkpoints): eval reads their config,
    which must agree."""
    for run, widths in (("ring_minimax", "(8,)"), ("ring_hinge", "(8,)")):
        assert main(["train", "fake_exp", "--tiny", "--workdir", str(tmp_path / run), "--set", f"widths={widths}"]) == 0
    capsys.readouterr()
    import experiments as ex

    cfg = ex.stored_config(ex.get("fake_exp"), str(tmp_path))
    assert cfg.widths == (8,)
    assert main(["train", "fake_exp", "--tiny", "--workdir", str(tmp_path / "grid_hinge"), "--set", "widths=(4,)"]) == 0
    capsys.readouterr()
    with pytest.raises(Exception, match="hold different or no configs"):
        ex.stored_config(ex.get("fake_exp"), str(tmp_path))


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_default_workdir_and_non_finite_loss_exit_3(tmp_path, capsys, monkeypatch):
    """Without --workdir, train uses runs/EXPERIMENT under the current directory; a loss that becomes non-finite
    (an infinite learning rate) exits 3 with one error line, writing no checkpoint."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "fake_exp", "--tiny"]) == 0
    capsys.readouterr()
    run = tmp_path / "runs" / "fake_exp"
    assert sorted(os.listdir(run / "checkpoints")) == ["2"] and (run / "summary.json").exists()
    assert json.load(open(run / "summary.json"))["command"] == ["jaxvision", "train", "fake_exp", "--tiny"]

    argv = ["train", "fake_exp", "--workdir", "nan", "--set", "learning_rate=1e39", "--set", "num_steps=6"]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("jaxvision: error: ") and "non-finite" in err, err
    assert "Traceback" not in err
    assert "non-finite loss" in err and not os.listdir(tmp_path / "nan" / "checkpoints")
    assert not (tmp_path / "nan" / "summary.json").exists()
