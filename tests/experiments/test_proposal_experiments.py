"""Smoke train + eval of the proposal-fed detector experiments (rcnn_shapes, fast_rcnn_shapes; TINY configs):
the proposal cache is written once and reused, its time is reported apart, artifacts and checkpoint round-trip."""
import math
import os

import pytest

import experiments

# end-to-end TINY runs, in the default suite (issue 13 / 14 ask for them there)


@pytest.mark.parametrize("name", ["rcnn_shapes", "fast_rcnn_shapes"])
def test_tiny_train_then_evaluate(name, tmp_path):
    module = experiments.get(name)
    cache = tmp_path / "proposals"
    cfg = experiments.make_config(module, {"proposal_dir": str(cache)}, tiny=True)
    workdir = str(tmp_path / name)
    final = module.train(cfg, workdir)
    for key in ("map50_voc", "coco_ap", "proposal_recall@0.5", "proposal_seconds_train", "train_seconds"):
        assert key in final and math.isfinite(final[key]), (key, final)
    assert final["proposals_per_image_train"] > 0
    assert sorted(p.name.split("_")[1] for p in cache.iterdir()) == ["test", "train"]
    assert os.path.isfile(os.path.join(workdir, "predictions.png"))
    again = module.evaluate(cfg, workdir)  # cached proposals, restored checkpoint: same metrics
    assert again["proposal_seconds_test"] == pytest.approx(final["proposal_seconds_test"])
    for key in ("map50_voc", "coco_ap"):
        assert again[key] == pytest.approx(final[key], abs=1e-6), key
