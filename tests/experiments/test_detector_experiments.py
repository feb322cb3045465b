"""Smoke train + eval of the detector experiments (TINY configs), artifacts and checkpoint round-trip."""
import json
import math
import os

import pytest

import experiments

# TINY runs of the experiments of issues 13 and 14 (two-stage detectors, conditional GANs) are in the default suite,
# as those issues ask; the older experiments' TINY runs are in CI's slow step (pytest -m slow).

QUALITY = {"yolo_shapes": ("map50_voc", "coco_ap"), "ssd_shapes": ("map50_voc", "coco_ap"),
           "faster_rcnn_shapes": ("map50_voc", "coco_ap"),
           "localization_shapes": ("accuracy", "mean_iou", "map50_voc"), "landmarks_shapes": ("nme", "pck@0.1")}


@pytest.mark.parametrize("name", [name if name == "faster_rcnn_shapes" else pytest.param(name, marks=pytest.mark.slow)
                                  for name in sorted(QUALITY)])
def test_tiny_train_then_evaluate(name, tmp_path):
    module = experiments.get(name)
    cfg = experiments.make_config(module, tiny=True)
    workdir = str(tmp_path / name)
    final = module.train(cfg, workdir)
    for key in QUALITY[name]:
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


def test_faster_rcnn_preset_and_pretrained_check():
    frcnn = experiments.get("faster_rcnn_shapes")
    model = frcnn.make_model(experiments.make_config(frcnn, {"preset": "resnet50_voc"}))
    assert model.num_classes == 20 and tuple(model.anchor_sizes) == (128.0, 256.0, 512.0)
    assert model.box_batch_size_per_image == 512 and model.rpn_post_nms_top_n_test == 1000
    with pytest.raises(ValueError, match="pretrained: .*'resnet50'"):
        frcnn._pretrained(experiments.make_config(frcnn, {"pretrained": "/nonexistent.pth"}))


def test_hflip_mirrors_proposals_with_their_image():
    import jax
    import numpy as np

    from experiments._detection import hflip

    batch = {"image": np.random.RandomState(0).rand(8, 4, 10, 3).astype(np.float32),
             "boxes": np.tile(np.array([[[1, 0, 3, 2]]], np.float32), (8, 1, 1)), "mask": np.ones((8, 1), bool),
             "proposals": np.tile(np.array([[[2, 0, 5, 2], [0, 0, 0, 0]]], np.float32), (8, 1, 1)),
             "proposal_mask": np.tile(np.array([[True, False]]), (8, 1))}
    out = jax.device_get(hflip(batch, jax.random.PRNGKey(0)))
    flipped = np.any(out["image"] != batch["image"], axis=(1, 2, 3))
    assert 0 < flipped.sum() < 8
    np.testing.assert_array_equal(out["proposals"][flipped, 0], np.tile([[5, 0, 8, 2]], (flipped.sum(), 1)))
    np.testing.assert_array_equal(out["boxes"][flipped, 0], np.tile([[7, 0, 9, 2]], (flipped.sum(), 1)))
    np.testing.assert_array_equal(out["proposals"][:, 1], 0)  # padding untouched
    np.testing.assert_array_equal(out["proposals"][~flipped], batch["proposals"][~flipped])
