"""evaluate_coco inputs: paths, numpy results, empty detections, and ValueErrors naming record and field."""
import json

import numpy as np
import pytest
from coco_reference import assert_same, pycoco_eval
from coco_synth import make_coco

from jaxvision.metrics import evaluate_coco


@pytest.fixture(scope="module")
def data():
    return make_coco(21, num_images=12, num_cats=3)


def test_paths_and_numpy_results(data, tmp_path):
    gt, dets = data
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dets))
    ref = evaluate_coco(gt, dets)
    from_path = evaluate_coco(str(tmp_path / "gt.json"), tmp_path / "dt.json")
    np.testing.assert_array_equal(from_path.precision, ref.precision)
    arr = np.array([[d["image_id"], *d["bbox"], d["score"], d["category_id"]] for d in dets])
    np.testing.assert_array_equal(evaluate_coco(gt, arr).precision, ref.precision)


def test_empty_detections(data):
    gt, _ = data
    res = evaluate_coco(gt, [])
    has_gt = {a["category_id"] for a in gt["annotations"] if not a["iscrowd"]}
    for k, cid in enumerate(res.category_ids):
        want = 0.0 if cid in has_gt else -1.0
        assert (res.precision[:, :, k, 0, :] == want).all()
    assert res.stats[0] == 0.0 and res.stats[8] == 0.0


def test_images_without_gt_only():
    gt = {"images": [{"id": 1}, {"id": 2}], "categories": [{"id": 1}], "annotations": []}
    dets = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.3}]
    res = evaluate_coco(gt, dets)
    assert (res.precision == -1).all() and (res.stats == -1).all()
    assert_same(res, pycoco_eval(gt, dets)[0])


def test_missing_iscrowd_defaults_to_zero(data):
    gt, dets = data
    gt2 = {**gt, "annotations": [{k: v for k, v in a.items() if k != "iscrowd"} for a in gt["annotations"]]}
    gt3 = {**gt, "annotations": [{**a, "iscrowd": 0} for a in gt["annotations"]]}
    np.testing.assert_array_equal(evaluate_coco(gt2, dets).precision, evaluate_coco(gt3, dets).precision)


@pytest.mark.parametrize("index,field,value,pattern", [
    (3, "image_id", 99999, r"detections\[3\]: field 'image_id': unknown image id"),
    (4, "category_id", 777, r"detections\[4\]: field 'category_id': unknown category id"),
    (5, "bbox", [0, 0, -3, 4], r"detections\[5\]: field 'bbox': expected non-negative width"),
    (6, "bbox", [0, float("nan"), 3, 4], r"detections\[6\]: field 'bbox': expected 4 finite"),
    (7, "score", float("inf"), r"detections\[7\]: field 'score': expected a finite number"),
    (8, "bbox", [1, 2, 3], r"detections\[8\]: field 'bbox': expected \[x, y, w, h\]"),
    (2, "image_id", "1", r"detections\[2\]: field 'image_id': expected an integer id"),
    (9, "score", None, r"detections\[9\]: field 'score': expected a number"),
])
def test_bad_detections_name_record_and_field(data, index, field, value, pattern):
    gt, dets = data
    bad = [dict(d) for d in dets]
    bad[index][field] = value
    with pytest.raises(ValueError, match=pattern):
        evaluate_coco(gt, bad)


def test_missing_fields_and_bad_ground_truth(data):
    gt, dets = data
    bad = [dict(d) for d in dets]
    del bad[1]["score"]
    with pytest.raises(ValueError, match=r"detections\[1\]: missing field 'score'"):
        evaluate_coco(gt, bad)
    anns = [dict(a) for a in gt["annotations"]]
    del anns[2]["area"]
    with pytest.raises(ValueError, match=r"ground_truth\['annotations'\]\[2\]: missing field 'area'"):
        evaluate_coco({**gt, "annotations": anns}, dets)
    anns = [dict(a) for a in gt["annotations"]]
    anns[3]["id"] = anns[0]["id"]
    with pytest.raises(ValueError, match=r"\[3\]: field 'id': duplicate annotation id"):
        evaluate_coco({**gt, "annotations": anns}, dets)
    with pytest.raises(ValueError, match="missing key 'images'"):
        evaluate_coco({"annotations": [], "categories": []}, dets)
    with pytest.raises(ValueError, match="iou_thresholds"):
        evaluate_coco(gt, dets, iou_thresholds=[0.0, 0.5])
    with pytest.raises(ValueError, match="max_dets"):
        evaluate_coco(gt, dets, max_dets=(0, 10))
    with pytest.raises(ValueError, match=r"\[N, 7\]"):
        evaluate_coco(gt, np.zeros((3, 6)))
