"""Detector evaluation on TFDS-format data: VOC ``difficult`` objects ignored, original-image pixels, real ids.

The source is a list of TFDS-format VOC examples (what ``tfds.data_source('voc/2007')`` yields: uint8 image of its
own size, normalized ``[ymin, xmin, ymax, xmax]`` boxes, ``is_difficult``, ``image/filename``), read through
``jaxvision.data.load`` exactly as a prepared VOC split would be. The "detector" returns, for each image, the
non-difficult ground-truth boxes (computed here from the normalized boxes) with score 0.9.
"""
import json
import types

import jax.numpy as jnp
import numpy as np
import pytest

from experiments import _detection as D
from jaxvision.models.detection.common import Detections

S = 32  # network input size
# (height, width, [(ymin, xmin, ymax, xmax), label, difficult], filename)
EXAMPLES = [
    (40, 60, [((0.1, 0.2, 0.5, 0.6), 3, False), ((0.5, 0.5, 0.9, 0.95), 7, True)], "000012.jpg"),
    (400, 400, [((0.2, 0.2, 0.45, 0.45), 3, False)], "000017.jpg"),   # 100x100 px: COCO 'large' (> 96^2)
    (50, 30, [((0.0, 0.0, 1.0, 1.0), 11, True), ((0.3, 0.1, 0.6, 0.9), 7, False)], "2008_000005.jpg"),
    (64, 64, [((0.25, 0.25, 0.75, 0.75), 1, False), ((0.1, 0.1, 0.2, 0.2), 1, True)], "000003.jpg"),
    (20, 80, [((0.1, 0.05, 0.9, 0.3), 14, False)], "000100.jpg"),
]


def _source():
    out = []
    for k, (h, w, objs, name) in enumerate(EXAMPLES):
        out.append({"image": np.full((h, w, 3), 10 + 20 * k, np.uint8), "image/filename": name,
                    "objects": {"bbox": np.array([o[0] for o in objs], np.float32),
                                "label": np.array([o[1] for o in objs], np.int64),
                                "is_difficult": np.array([o[2] for o in objs], bool)}})
    return out


def _oracle_tables(d=3):
    """Per example: the non-difficult objects as (boxes [d, 4] input px, scores [d], classes [d], count)."""
    boxes, scores, classes = np.zeros((len(EXAMPLES), d, 4), np.float32), np.zeros((len(EXAMPLES), d)), \
        np.full((len(EXAMPLES), d), -1)
    num = []
    for i, (_, _, objs, _) in enumerate(EXAMPLES):
        objs = [o for o in objs if not o[2]]
        for j, ((y0, x0, y1, x1), label, _) in enumerate(objs):
            boxes[i, j] = np.array([x0, y0, x1, y1]) * S
            scores[i, j], classes[i, j] = 0.9, label
        num.append(len(objs))
    return boxes, scores.astype(np.float32), classes.astype(np.int32), np.asarray(num, np.int32)


TABLES = _oracle_tables()


def _oracle(variables, images):
    """Detections of the non-difficult objects, in input pixels, found from the image's grey level (jittable, as
    every predict: ``run_predict`` traces it over the devices)."""
    del variables
    k = jnp.clip(jnp.round((images[:, 0, 0, 0] * 255 - 10) / 20).astype(jnp.int32), 0, len(EXAMPLES) - 1)
    return Detections(*(jnp.asarray(t)[k] for t in TABLES))


def _evaluate(workdir=None):
    cfg = types.SimpleNamespace(batch_size=2, measure_fps=False)  # 5 images: the last batch is padded
    spec = ("voc/2007", {"image_size": S, "max_boxes": 4, "source": _source()}, 20)
    state = types.SimpleNamespace(params={}, batch_stats={})
    return D.evaluate_detector(cfg, _oracle, spec, state, workdir)


def test_missing_only_difficult_objects_scores_ap_1(tmp_path):
    m = _evaluate(str(tmp_path))
    assert m["map50_voc"] == pytest.approx(1.0, abs=1e-12) and m["map50_voc07"] == pytest.approx(1.0, abs=1e-12), m
    # eval outputs: COCO results JSON in original pixels with the real ids, the 12-stat summary, per-class table
    ev = tmp_path / "eval"
    results = json.loads((ev / "coco_results.json").read_text())
    assert sorted({r["image_id"] for r in results}) == [3, 12, 17, 100, 2008000005]
    r17 = [r for r in results if r["image_id"] == 17]
    assert len(r17) == 1 and r17[0]["category_id"] == 3
    np.testing.assert_allclose(r17[0]["bbox"], [80, 80, 100, 100], rtol=1e-5)
    assert len((ev / "coco_summary.txt").read_text().strip().splitlines()) == 12
    table = (ev / "per_class_ap.md").read_text()
    assert "| 3 | boat | 2 | 1.0000 |" in table and "| 7 | cat | 1 | 1.0000 |" in table
    assert json.loads((ev / "metrics.json").read_text())["metrics"]["map50_voc07"] == pytest.approx(1.0)
    assert (ev / "pr" / "pr_overall.png").is_file() and (ev / "pr" / "pr_boat.png").is_file()


def test_scored_in_original_pixels_with_real_ids():
    ds = D.load_split(("voc/2007", {"image_size": S, "max_boxes": 4, "source": _source()}, 20), "test",
                      types.SimpleNamespace(), 2, drop_remainder=False)
    res = D.run_predict(_oracle, {}, ds)
    np.testing.assert_array_equal(res["image_id"], [12, 17, 2008000005, 3, 100])
    np.testing.assert_array_equal(res["image_hw"], [(h, w) for h, w, *_ in EXAMPLES])
    np.testing.assert_allclose(D.to_original_pixels(res["gt_boxes"], res["image_hw"], res["input_hw"])[1, 0],
                               [80, 80, 180, 180], rtol=1e-5)
    ev = D.DetectionEvaluator(20, kind="coco")
    # only image 17 (one 100x100 px object, 8x8 px at the input size): COCO 'large' in original pixels
    keep = res["image_id"] == 17
    pick = {k: v[keep] for k, v in res.items() if k not in ("input_hw", "image")} | {"input_hw": res["input_hw"]}
    assert pick["area"][0, 0] == pytest.approx(100 * 100, rel=1e-5)
    stats = D.detection_metrics(pick, 20)
    assert stats["coco_ap"] == 1.0
    ev.update(D.to_original_pixels(pick["boxes"], pick["image_hw"], (S, S)), pick["scores"], pick["classes"],
              pick["num_valid"], D.to_original_pixels(pick["gt_boxes"], pick["image_hw"], (S, S)),
              np.where(pick["gt_mask"], pick["gt_labels"], -1), gt_area=pick["area"], image_ids=pick["image_id"])
    coco = ev.compute()
    assert coco.stats[5] == 1.0 and coco.stats[3] == -1.0  # AP large 1, no small object
    gt, results = ev.to_coco_json()
    assert [im["id"] for im in gt["images"]] == [17] and results[0]["image_id"] == 17
    np.testing.assert_allclose(results[0]["bbox"], [80, 80, 100, 100], rtol=1e-5)


def test_run_predict_over_devices_equals_one_device():
    """5 images in batches of 2 (the last padded), each batch padded again to the 8 simulated devices: the same
    outputs as on one device, every image once, in order."""
    import jax

    ds = D.load_split(("voc/2007", {"image_size": S, "max_boxes": 4, "source": _source()}, 20), "test",
                      types.SimpleNamespace(), 2, drop_remainder=False)
    got = D.run_predict(_oracle, {}, ds, keep_images=3)
    one = D.run_predict(_oracle, {}, ds, keep_images=3, devices=jax.local_devices()[:1])
    assert jax.local_device_count() == 8 and sorted(got) == sorted(one)
    for k in got:
        np.testing.assert_array_equal(got[k], one[k], err_msg=k)
    assert got["image"].shape == (3, S, S, 3) and got["image_id"].tolist() == [12, 17, 2008000005, 3, 100]
    assert D.detection_metrics(got, 20) == D.detection_metrics(one, 20)


@pytest.mark.slow
def test_real_detector_over_devices_equals_one_device():
    """A real detector (tiny YOLO, random weights, predict with per-class NMS) over the 8 simulated devices: 13
    shapes images in batches of 4 (the last padded; each batch padded again to 8 rows for the devices) give the
    detections of ``predict`` called on one device, every image once, in order; and the same metrics."""
    import jax

    from jaxvision.data import load
    from jaxvision.models.detection import yolo

    assert jax.local_device_count() == 8
    model = yolo.YOLOTiny(num_classes=6, grid_size=4)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))
    predict = yolo.predict_fn(model, max_detections=10)
    ds = load("shapes", "test", 4, image_size=32, max_boxes=4, num_examples=13, drop_remainder=False)
    res = D.run_predict(predict, variables, ds, keep_images=6)
    ref = {k: [] for k in ("boxes", "scores", "classes", "num_valid", "gt_boxes")}
    for batch in ds.iterate():
        det = jax.device_get(predict(variables, jnp.asarray(batch["image"])))  # one device, the whole batch
        for k in ("boxes", "scores", "classes", "num_valid"):
            ref[k].append(np.asarray(getattr(det, k))[batch["valid"]])
        ref["gt_boxes"].append(batch["boxes"][batch["valid"]])
    ref = {k: np.concatenate(v) for k, v in ref.items()}
    assert res["boxes"].shape == (13, 10, 4) and res["image"].shape == (6, 32, 32, 3)
    assert ref["num_valid"].sum() > 13  # real detections to compare
    np.testing.assert_array_equal(res["gt_boxes"], ref["gt_boxes"])
    np.testing.assert_array_equal(res["num_valid"], ref["num_valid"])
    np.testing.assert_array_equal(res["classes"], ref["classes"])
    np.testing.assert_allclose(res["boxes"], ref["boxes"], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(res["scores"], ref["scores"], rtol=1e-4, atol=1e-6)
    got, want = D.detection_metrics(res, 6), D.detection_metrics({**res, **ref}, 6)
    assert got == pytest.approx(want, abs=1e-9)
