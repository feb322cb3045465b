"""DetectionEvaluator (fixed-shape update/compute) and COCO results JSON conversion."""
import json

import numpy as np
import pytest
from coco_reference import assert_same, pycoco_eval

from jaxvision.metrics import DetectionEvaluator, evaluate_voc, from_coco_results, to_coco_results


def _batches(seed, n_batches=3, b=4, d=10, g=6, c=3):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        gxy = np.round(rng.uniform(0, 100, (b, g, 2)))
        gwh = np.round(rng.uniform(4, 60, (b, g, 2)))
        gb = np.concatenate([gxy, gxy + gwh], -1).astype(np.float32)
        gl = rng.integers(0, c, (b, g)).astype(np.int32)
        gl[rng.random((b, g)) < 0.25] = -1  # padding
        src = rng.integers(0, g, (b, d))
        pb = np.take_along_axis(gb, src[..., None], 1) + rng.normal(0, 3, (b, d, 4)).astype(np.float32)
        pb[..., 2:] = np.maximum(pb[..., 2:], pb[..., :2] + 1)
        pl = np.where(rng.random((b, d)) < 0.8, np.maximum(np.take_along_axis(gl, src, 1), 0),
                      rng.integers(0, c, (b, d))).astype(np.int32)
        ps = rng.random((b, d)).astype(np.float32)
        num = rng.integers(0, d + 1, b)  # Detections.num_valid style
        crowd = rng.random((b, g)) < 0.1
        diff = rng.random((b, g)) < 0.15
        out.append(dict(pred_boxes=pb, pred_scores=ps, pred_labels=pl, gt_boxes=gb, gt_labels=gl, pred_valid=num,
                        gt_crowd=crowd, gt_difficult=diff))
    return out


def _independent_coco(batches, num_classes):
    """The pycocotools inputs built here from the raw padded arrays given to ``update``, by the documented
    conventions (image ids 1, 2, ... in update order; category id = class index; bbox = [x1, y1, x2 - x1, y2 - y1];
    area = w * h unless gt_area; ground truth with label in [0, C); detections where pred_valid, as a [B] count or
    a [B, D] mask, with label in [0, C)), independently of the evaluator's own arrays."""
    images, anns, dets, image_id = [], [], [], 0
    for batch in batches:
        for i in range(len(batch["gt_boxes"])):
            image_id += 1
            images.append({"id": image_id})
            for j, (x1, y1, x2, y2) in enumerate(batch["gt_boxes"][i].tolist()):
                label = int(batch["gt_labels"][i, j])
                if 0 <= label < num_classes:
                    area = (x2 - x1) * (y2 - y1) if batch.get("gt_area") is None else float(batch["gt_area"][i, j])
                    anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": label,
                                 "bbox": [x1, y1, x2 - x1, y2 - y1], "area": area,
                                 "iscrowd": int(batch["gt_crowd"][i, j])})
            valid = np.asarray(batch["pred_valid"])
            for j, (x1, y1, x2, y2) in enumerate(batch["pred_boxes"][i].tolist()):
                ok = valid[i, j] if valid.ndim == 2 else j < valid[i]
                label = int(batch["pred_labels"][i, j])
                if ok and 0 <= label < num_classes:
                    dets.append({"image_id": image_id, "category_id": label, "bbox": [x1, y1, x2 - x1, y2 - y1],
                                 "score": float(batch["pred_scores"][i, j])})
    cats = [{"id": c, "name": str(c)} for c in range(num_classes)]
    return {"images": images, "annotations": anns, "categories": cats}, dets


def test_streaming_coco_equals_pycocotools_on_independently_built_inputs():
    batches = [dict(b) for b in _batches(0)]
    rng = np.random.default_rng(5)
    for b in batches:
        b.pop("gt_difficult")
    # batch 2: pred_valid as a non-prefix [B, D] mask, an out-of-range label, and explicit gt_area
    counts = batches[1]["pred_valid"]
    batches[1]["pred_valid"] = (np.arange(10)[None] < counts[:, None]) & (rng.random((4, 10)) < 0.8)
    batches[1]["pred_labels"][0, 0] = 7
    batches[2]["gt_area"] = rng.uniform(10, 3000, (4, 6))
    ev = DetectionEvaluator(num_classes=3, kind="coco")
    for batch in batches:
        ev.update(**batch)
    gt, dets = _independent_coco(batches, 3)
    assert_same(ev.compute(), pycoco_eval(gt, dets)[0])
    # the export is the same data (ann ids aside)
    gt_ours, dets_ours = ev.to_coco_json()
    json.dumps(gt_ours), json.dumps(dets_ours)  # serializable
    key = lambda a: (a["image_id"], a["category_id"], *np.round(a["bbox"], 4))  # noqa: E731
    assert sorted(map(key, gt_ours["annotations"])) == sorted(map(key, gt["annotations"]))
    assert sorted(map(key, dets_ours)) == sorted(map(key, dets))
    ev.reset()
    assert (ev.compute().precision == -1).all()


def test_streaming_voc_equals_evaluate_voc():
    batches = _batches(1)
    ev = DetectionEvaluator(num_classes=3, kind="voc", voc_method="voc07")
    for batch in batches:
        batch = dict(batch)
        batch.pop("gt_crowd")
        ev.update(**batch)
    res = ev.compute()
    cat = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    ref = evaluate_voc(cat["pred_boxes"], cat["pred_scores"], cat["pred_labels"], cat["gt_boxes"], cat["gt_labels"],
                       cat["gt_difficult"], pred_valid=cat["pred_valid"], num_classes=3, method="voc07")
    np.testing.assert_allclose(res.ap, ref.ap, atol=1e-9)
    assert res.map == pytest.approx(ref.map)


def test_results_json_round_trip():
    batch = _batches(2, n_batches=1)[0]
    res = to_coco_results(batch["pred_boxes"], batch["pred_scores"], batch["pred_labels"], batch["pred_valid"],
                          image_ids=[10, 11, 12, 13], category_ids=[5, 6, 7])
    assert all(r["image_id"] in (10, 11, 12, 13) and r["category_id"] in (5, 6, 7) for r in res)
    boxes, scores, labels, valid = from_coco_results(json.loads(json.dumps(res)), [10, 11, 12, 13],
                                                     max_dets=10, category_ids=[5, 6, 7])
    np.testing.assert_array_equal(valid.sum(1), batch["pred_valid"])
    for i in range(4):
        n = batch["pred_valid"][i]
        order = np.argsort(-batch["pred_scores"][i, :n], kind="stable")
        np.testing.assert_allclose(boxes[i, :n], batch["pred_boxes"][i, order], atol=1e-4)
        np.testing.assert_array_equal(labels[i, :n], batch["pred_labels"][i, order])
    with pytest.raises(ValueError, match=r"results\[0\]: field 'image_id'"):
        from_coco_results(res, [99])


def test_update_checks_shapes():
    ev = DetectionEvaluator(num_classes=2)
    b = _batches(3, n_batches=1, c=2)[0]
    with pytest.raises(ValueError, match="pred_scores"):
        ev.update(b["pred_boxes"], b["pred_scores"][:, :2], b["pred_labels"], None, b["gt_boxes"], b["gt_labels"])
    with pytest.raises(ValueError, match="gt_boxes"):
        ev.update(b["pred_boxes"], b["pred_scores"], b["pred_labels"], b["pred_valid"], b["gt_boxes"][:2],
                  b["gt_labels"])
    with pytest.raises(ValueError, match="kind"):
        DetectionEvaluator(num_classes=2, kind="bogus")
