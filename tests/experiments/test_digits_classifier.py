"""digits_classifier tiny run: artifacts, evaluation and the FID feature-network loader."""
import os

import numpy as np
import pytest

import experiments
from experiments import _digits_classifier as dc

pytestmark = pytest.mark.slow  # end-to-end experiment runs: CI's slow step (pytest -m slow)


def test_registry_finds_it():
    assert "digits_classifier" in experiments.names()
    cfg = experiments.make_config(dc, {"num_steps": "7", "widths": "(8, 16)", "data_parallel": "false"}, tiny=True)
    assert cfg.num_steps == 7 and cfg.widths == (8, 16) and cfg.data_parallel is False
    assert cfg.features == dc.TINY["features"]


def test_tiny_train_evaluate_and_load_classifier(tmp_path):
    cfg = experiments.make_config(dc, tiny=True)
    result = dc.train(cfg, str(tmp_path))
    assert 0.0 <= result["test_accuracy"] <= 1.0
    for name in ("metrics.jsonl", "predictions.png"):
        assert os.path.exists(tmp_path / name)
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [3, 6]
    assert dc.evaluate(cfg, str(tmp_path))["test_accuracy"] == result["test_accuracy"]
    apply, saved_cfg = dc.load_classifier(str(tmp_path))
    assert saved_cfg.widths == tuple(cfg.widths) and saved_cfg.size == cfg.size
    images, labels = dc.digits.arrays("test", cfg.size)
    feats, logits = apply(np.asarray(images[:10]))
    assert feats.shape == (10, cfg.features) and logits.shape == (10, 10)
    pred = dc.predict(cfg, dc._restore(cfg, str(tmp_path)), np.asarray(images))
    np.testing.assert_array_equal(pred, np.argmax(np.asarray(apply(np.asarray(images))[1]), -1))
    np.testing.assert_allclose(np.mean(pred == labels), result["test_accuracy"])


@pytest.mark.slow  # compiling the pmapped CNN for 8 simulated devices takes ~20 s of CPU
def test_data_parallel_tiny(tmp_path):
    cfg = experiments.make_config(dc, {"data_parallel": True, "num_steps": 2, "batch_size": 32}, tiny=True)
    result = dc.train(cfg, str(tmp_path))
    assert "test_accuracy" in result
