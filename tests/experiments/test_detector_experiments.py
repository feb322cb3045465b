"""Smoke train + eval of the four detector experiments (TINY configs), artifacts and checkpoint round-trip."""
import json
import math
import os

import pytest

import experiments

QUALITY = {"yolo_shapes": ("map50_voc", "coco_ap"), "ssd_shapes": ("map50_voc", "coco_ap"),
           "localization_shapes": ("accuracy", "mean_iou", "map50_voc"), "landmarks_shapes": ("nme", "pck@0.1")}


@pytest.mark.parametrize("name", sorted(QUALITY))
def test_tiny_train_then_evaluate(name, tmp_path):
    module = experiments.get(name)
    cfg = experiments.make_config(module, tiny=True)
    workdir = str(tmp_path / name)
    final = module.train(cfg, workdir)
    for key in QUALITY[name] + ("fps_cpu",):
        assert key in final and math.isfinite(final[key]), (key, final)
    assert os.path.isfile(os.path.join(workdir, "predictions.png"))
    assert os.path.isdir(os.path.join(workdir, "checkpoints"))
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert any(r.get("split") == "train" for r in records)
    # checkpoint round-trip: evaluating the restored latest checkpoint reproduces the final metrics
    again = module.evaluate(cfg, workdir)
    for key in QUALITY[name]:
        assert again[key] == pytest.approx(final[key], abs=1e-6), key


def test_paper_presets_build():
    yolo, ssd = experiments.get("yolo_shapes"), experiments.get("ssd_shapes")
    assert yolo.make_model(experiments.make_config(yolo, {"preset": "voc448"})).grid_size == 7
    model = ssd.make_model(experiments.make_config(ssd, {"preset": "ssd300_voc"}))
    assert len(model.aspect_ratios) == 6 and model.num_classes == 20
