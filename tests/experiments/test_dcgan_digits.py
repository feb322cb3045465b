"""dcgan_digits: the tiny run end to end, bad input rejected before training, NaN stops with the last checkpoint."""
import dataclasses
import json
import os
import warnings

import numpy as np
import pytest

import experiments
from experiments import _dcgan
from experiments import dcgan_digits as dd
from jaxvision.train import NonFiniteLossError
from jaxvision.train.checkpoint import CheckpointManager

pytestmark = pytest.mark.slow  # end-to-end experiment runs: CI's slow step (pytest -m slow)


def _cfg(**kw):
    return experiments.make_config(dd, kw, tiny=True)


class _Data:
    """Minimal Dataset: len() batches of {'image': [B, 16, 16, 1]}, optionally NaN from batch ``nan_from`` on."""

    def __init__(self, images, nan_from=None):
        self.images, self.nan_from = images, nan_from

    def __len__(self):
        return 8

    def batch(self, i, epoch=0):
        x = self.images.copy()
        if self.nan_from is not None and epoch * 8 + i >= self.nan_from:
            x[:] = np.nan
        return {"image": x}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One TINY training run shared by the tests of this module: (workdir, train's result)."""
    workdir = tmp_path_factory.mktemp("dcgan_digits")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "fid. only")
        return workdir, dd.train(_cfg(), str(workdir))


def test_tiny_run_end_to_end(tiny_run):
    tmp_path, out = tiny_run
    for name in ("samples_final.png", "quality.md", "metrics.jsonl", "samples/step_000002.png"):
        assert (tmp_path / name).exists(), name
    for row in ("real_test_vs_train", "random_init_generator", "trained_generator", "trained_generator_ema"):
        assert np.isfinite(out[f"{row}/fid"]) and out[f"{row}/is"] >= 1.0 - 1e-9
    records = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    train = [r for r in records if r["split"] == "train"]
    assert {"d_loss", "g_loss", "g_grad_norm", "d_real", "d_fake"} <= set(train[-1])
    with CheckpointManager(str(tmp_path), dd.NAME) as ckpt:
        assert ckpt.latest_step() == 4


def test_bad_images_raise_before_training(tmp_path):
    cfg = _cfg()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"expected values in \[0, 1\]"):
        _dcgan.run(cfg, str(tmp_path), dd.NAME, _Data(rng.uniform(0, 255, (16, 16, 16, 1)).astype(np.float32)))
    with pytest.raises(ValueError, match="channel"):
        _dcgan.run(cfg, str(tmp_path), dd.NAME, _Data(rng.uniform(0, 1, (16, 16, 16, 3)).astype(np.float32)))
    assert not os.path.exists(tmp_path / "checkpoints")


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    cfg = dataclasses.replace(_cfg(), num_steps=6, log_every=1, checkpoint_every=2, sample_every=100)
    images = np.random.default_rng(0).uniform(0, 1, (16, 16, 16, 1)).astype(np.float32)
    data = _Data(images, nan_from=3)  # steps 1..3 fine, step 4 reads NaN images
    with pytest.raises(NonFiniteLossError, match="step 4") as err:
        _dcgan.fit(_dcgan.make_state(cfg), _dcgan.make_step(cfg), data, num_steps=cfg.num_steps, workdir=str(tmp_path),
               experiment=dd.NAME, checkpoint_every=2, log_every=1, progress=False)
    assert err.value.last_checkpoint == 2
    with CheckpointManager(str(tmp_path), dd.NAME) as ckpt:
        assert ckpt.latest_step() == 2
        restored = ckpt.restore(_dcgan.make_state(cfg))
    leaves = [np.asarray(x) for x in __import__("jax").tree_util.tree_leaves(restored)]
    assert all(np.all(np.isfinite(x)) for x in leaves if x.dtype.kind == "f")


@pytest.mark.filterwarnings("ignore:fid. only")
def test_evaluate_and_cli_eval_reproduce_the_trained_quality(tiny_run, capsys):
    """``dcgan_digits.evaluate`` and ``jaxvision eval dcgan_digits`` on the TINY run: the same checkpoint, the same
    samples, so the same FID / IS as measured right after training; quality.md is rewritten."""
    from experiments._cli import main

    workdir, trained = tiny_run
    os.remove(workdir / "quality.md")
    again = dd.evaluate(_cfg(), str(workdir))
    assert (workdir / "quality.md").exists()
    keys = [k for k in trained if k.split("/")[0] in ("real_test_vs_train", "trained_generator",
                                                       "trained_generator_ema")]
    assert len(keys) >= 12
    for k in keys:
        assert again[k] == pytest.approx(trained[k], rel=1e-5, abs=1e-6), k
    capsys.readouterr()
    assert main(["eval", "dcgan_digits", "--workdir", str(workdir)]) == 0
    out = capsys.readouterr().out
    cli = json.loads(out[out.rfind("\n{") + 1:])
    assert cli["trained_generator/fid"] == pytest.approx(trained["trained_generator/fid"], rel=1e-5)
    summary = json.load(open(workdir / "summary.json"))
    assert summary["command"][:3] == ["jaxvision", "eval", "dcgan_digits"] and summary["config"]["num_steps"] == 4
