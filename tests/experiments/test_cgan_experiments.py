"""pix2pix_* and srgan_photos: TINY runs end to end (both phases, metrics, PNGs, checkpoints), bad input."""
import dataclasses
import json

import numpy as np
import pytest

import experiments
from experiments import _pix2pix, pix2pix_edges2photos, pix2pix_shapes, srgan_photos
from jaxvision.train.checkpoint import CheckpointManager

# end-to-end TINY runs, in the default suite (issue 13 / 14 ask for them there)


def test_pix2pix_tiny_run_trains_gan_and_l1_baseline(tmp_path):
    cfg = experiments.make_config(pix2pix_shapes, {}, tiny=True)
    out = pix2pix_shapes.train(cfg, str(tmp_path))
    for key in ("pix2pix", "l1"):
        assert np.isfinite(out[f"{key}_psnr"]) and 0 <= out[f"{key}_ssim"] <= 1 and out[f"{key}_sharpness"] >= 0
    assert out["num_eval"] == 4 and (tmp_path / "triplets.png").exists()
    records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert {"d_loss", "g_adv", "g_l1", "g_loss"} <= set(records[0])
    base = [json.loads(line) for line in open(tmp_path / _pix2pix.BASELINE_DIR / "metrics.jsonl")]
    assert "g_l1" in base[0] and "d_loss" not in base[0]          # the baseline never runs D
    with CheckpointManager(str(tmp_path), pix2pix_shapes.NAME) as ckpt:
        assert ckpt.latest_step() == 2
    again = pix2pix_shapes.evaluate(cfg, str(tmp_path))
    assert again["pix2pix_psnr"] == pytest.approx(out["pix2pix_psnr"], rel=1e-6)
    # inference='batch_stats' (the paper's): BatchNorm uses the test batch; 'running_stats' does not (here, with
    # the caches this run warmed, rather than in a test of its own: a cold U-Net init costs ~20 s of CPU)
    state = _pix2pix.make_state(cfg)
    x = np.random.default_rng(0).uniform(size=(8, 32, 32, 3)).astype(np.float32)
    x[4] = x[0]                                                             # same input in batches [0:4] and [4:8]
    y = _pix2pix.predict(cfg, state, x)                                     # batch_size 4
    assert y.shape == (8, 32, 32, 3) and np.isfinite(y).all() and not np.allclose(y[0], y[4])
    r = _pix2pix.predict(dataclasses.replace(cfg, inference="running_stats"), state, x)
    assert np.allclose(r[0], r[4], atol=1e-6) and not np.allclose(r[0], y[0])


def test_pix2pix_edges_data_matches_model_and_bad_condition_channels_fail_early(tmp_path):
    cfg = experiments.make_config(pix2pix_edges2photos, {}, tiny=True)
    _pix2pix.check_data(cfg, _pix2pix.load_data(cfg, "train", 2))   # 1-channel edges, 3-channel photos
    bad = experiments.make_config(pix2pix_edges2photos, {"condition_channels": 3}, tiny=True)
    with pytest.raises(ValueError, match="condition_channels"):
        pix2pix_edges2photos.train(bad, str(tmp_path))
    assert not (tmp_path / "checkpoints").exists()


def test_pix2pix_lr_schedule_is_constant_then_linear_to_zero():
    cfg = experiments.make_config(pix2pix_shapes, {"num_steps": 10, "lr_decay": 0.4, "learning_rate": 1e-3})
    lr = [float(_pix2pix.lr_schedule(cfg)(t)) for t in range(11)]
    assert lr[:7] == pytest.approx([1e-3] * 7) and lr[7:] == pytest.approx([7.5e-4, 5e-4, 2.5e-4, 0.0])
    flat = experiments.make_config(pix2pix_shapes, {"num_steps": 10, "lr_decay": 0.0})
    assert float(_pix2pix.lr_schedule(flat)(10)) == pytest.approx(2e-4)
    with pytest.raises(experiments.ExperimentError, match="lr_decay"):
        experiments.make_config(pix2pix_shapes, {"lr_decay": 1.5})


def test_srgan_tiny_run_pretrains_then_fine_tunes(tmp_path):
    cfg = experiments.make_config(srgan_photos, {}, tiny=True)
    out = srgan_photos.train(cfg, str(tmp_path))
    for key in ("bicubic", "srresnet", "srgan"):
        assert np.isfinite(out[f"{key}_psnr_y"]) and out[f"{key}_sharpness"] > 0
    assert out["srresnet_gain_db"] == pytest.approx(out["srresnet_psnr_y"] - out["bicubic_psnr_y"])
    for key in ("bicubic", "srresnet"):  # the means are over the per-photo numbers
        assert out[f"{key}_psnr_y"] == pytest.approx(np.mean([out[f"{key}_psnr_y_{n}"] for n in ("coffee", "rocket")]))
    assert out["srresnet_gain_db_rocket"] == pytest.approx(out["srresnet_psnr_y_rocket"] - out["bicubic_psnr_y_rocket"])
    assert out["srresnet_x8_gain_db"] == pytest.approx(out["srresnet_x8_psnr_y"] - out["bicubic_psnr_y"])
    assert out["num_test_images"] == 2 and (tmp_path / "sr_comparison.png").exists()
    pre = [json.loads(line) for line in open(tmp_path / srgan_photos.PRETRAIN_DIR / "metrics.jsonl")]
    assert {"g_mse", "g_y_mse"} <= set(pre[0]) and "d_loss" not in pre[0]  # the luma term (y_weight 4)
    gan = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert {"g_adv", "g_mse", "g_y_mse", "d_loss"} <= set(gan[0])
    assert [t.name for t in srgan_photos.pixel_terms(dataclasses.replace(cfg, y_weight=0.0))] == ["mse"]
    with pytest.raises(experiments.ExperimentError, match="y_weight"):
        experiments.make_config(srgan_photos, {"y_weight": -1.0})


def test_self_ensemble_averages_the_eight_orientations_turned_back():
    lr = np.random.default_rng(0).uniform(size=(3, 5, 3)).astype(np.float32)
    up = lambda x: np.repeat(np.repeat(x, 2, 0), 2, 1)  # noqa: E731 -- equivariant: the ensemble changes nothing
    np.testing.assert_allclose(srgan_photos.self_ensemble(up, lr), up(lr), rtol=1e-6)
    calls = []
    first_row = lambda x: calls.append(x.shape) or np.broadcast_to(x[:1], x.shape).copy()  # noqa: E731
    out = srgan_photos.self_ensemble(first_row, lr)  # not equivariant: the mean of the 8 turned-back outputs
    assert sorted(calls) == [(3, 5, 3)] * 4 + [(5, 3, 3)] * 4 and out.shape == lr.shape
    # each of the 4 edges is the "first row" of 2 orientations; turned back, each spreads across the image
    want = (lr[:1] + lr[-1:] + lr[:, :1] + lr[:, -1:]) / 4
    np.testing.assert_allclose(out, want, rtol=1e-5)


def test_srgan_vgg54_without_weights_is_a_clear_error(tmp_path):
    cfg = experiments.make_config(srgan_photos, {"content": "vgg54"}, tiny=True)
    with pytest.raises(ValueError, match="vgg_weights"):
        srgan_photos.train(cfg, str(tmp_path))
