"""PR-curve PNGs for VOC and COCO results."""
import numpy as np
import pytest
from coco_synth import make_coco

from jaxvision.metrics import evaluate_coco, evaluate_voc, save_pr_curves

pytest.importorskip("matplotlib")


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_voc_pr_pngs(tmp_path):
    gt = np.array([[[0, 0, 10, 10], [20, 20, 30, 30]]], np.float32)
    pred = np.array([[[0, 0, 10, 10], [21, 20, 30, 30], [50, 50, 60, 60]]], np.float32)
    res = evaluate_voc(pred, np.array([[0.9, 0.8, 0.7]]), np.array([[0, 1, 1]]), gt, np.array([[0, 1]]),
                       num_classes=3)
    paths = save_pr_curves(res, tmp_path, class_names=["cat", "dog/wolf", "bird"])
    assert [p.rsplit("/", 1)[1] for p in paths] == ["pr_overall.png", "pr_cat.png", "pr_dog_wolf.png"]
    assert all(_is_png(p) for p in paths)


def test_coco_pr_pngs(tmp_path):
    gt, dets = make_coco(3, num_images=8, num_cats=2, empty_cat=True)
    res = evaluate_coco(gt, dets)
    paths = save_pr_curves(res, tmp_path / "sub")
    assert len(paths) == 1 + sum((res.precision[0, :, k, 0, -1] > -1).all() for k in range(len(res.category_ids)))
    assert all(_is_png(p) for p in paths)
