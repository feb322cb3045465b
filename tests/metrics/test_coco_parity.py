"""evaluate_coco == pycocotools COCOeval (bbox): 12 stats, precision [T,R,K,A,M], recall [T,K,A,M] to 1e-6."""
import numpy as np
import pytest
from coco_reference import assert_same, pycoco_eval
from coco_synth import make_coco
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxvision.metrics import evaluate_coco


@pytest.mark.parametrize("seed,kw", [
    (0, {}),
    (1, dict(integer=True)),  # exact IoU ties at thresholds (e.g. 3/5 vs 0.6000000000000001)
    (2, dict(tie_frac=0.6, integer=True)),  # score ties: stable order within and across images
    (3, dict(crowd_frac=0.4)),  # many crowd regions
    (4, dict(num_images=60, num_cats=8, max_gt=20, max_dets=60, image_size=400.0)),
])
def test_random_sets_match_pycocotools(seed, kw):
    gt, dets = make_coco(seed, **kw)
    ours = evaluate_coco(gt, dets)
    ev, printed = pycoco_eval(gt, dets)
    assert_same(ours, ev)
    # summary lines are laid out exactly as pycocotools prints them
    assert ours.summary().splitlines() == [l for l in printed.splitlines() if "Average" in l]


def test_more_than_100_detections_per_image_and_category():
    rng = np.random.default_rng(7)
    gt = {"images": [{"id": 1}, {"id": 2}], "categories": [{"id": 3}],
          "annotations": [{"id": i + 1, "image_id": 1 + i % 2, "category_id": 3,
                           "bbox": [float(10 * (i % 9)), float(12 * (i // 9)), 30.0, 25.0], "area": 750.0,
                           "iscrowd": 0} for i in range(40)]}
    dets = [{"image_id": 1 + i % 2, "category_id": 3, "score": float(rng.choice([0.1, 0.5, 0.9, rng.random()])),
             "bbox": [float(10 * (i % 9) + rng.normal(0, 2)), float(12 * ((i // 2) % 5) + rng.normal(0, 2)),
                      30.0 + rng.normal(0, 3), 25.0]} for i in range(330)]
    ours = evaluate_coco(gt, dets)
    assert_same(ours, pycoco_eval(gt, dets)[0])


def test_edge_cases_crowd_empty_images_missing_category():
    gt = {"images": [{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}], "categories": [{"id": 1}, {"id": 2}, {"id": 5}],
          "annotations": [
              {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
              {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
              {"id": 3, "image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 50], "area": 2500, "iscrowd": 1},
              {"id": 4, "image_id": 2, "category_id": 2, "bbox": [5, 5, 100, 100], "area": 9000, "iscrowd": 0},
              {"id": 5, "image_id": 2, "category_id": 2, "bbox": [5, 5, 20, 20], "area": 400, "iscrowd": 1},
          ]}  # image 3: no GT; image 4: no GT and no detections; category 5: no GT
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},  # duplicate: 2 GT, 3 dets
        {"image_id": 1, "category_id": 1, "bbox": [20, 20, 10, 10], "score": 0.8},  # inside the crowd region
        {"image_id": 1, "category_id": 1, "bbox": [25, 25, 10, 10], "score": 0.7},  # crowd matched again
        {"image_id": 2, "category_id": 2, "bbox": [6, 6, 18, 18], "score": 0.95},
        {"image_id": 2, "category_id": 2, "bbox": [5, 5, 100, 90], "score": 0.6},
        {"image_id": 3, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.5},  # image without GT
        {"image_id": 3, "category_id": 5, "bbox": [1, 1, 500, 500], "score": 0.4},  # category without GT
    ]
    ours = evaluate_coco(gt, dets)
    ev, _ = pycoco_eval(gt, dets)
    assert_same(ours, ev)
    assert ours.per_class_ap[5] == -1.0


def test_gt_id_zero_quirk():
    # pycocotools stores the matched GT id, so a match to an annotation with id 0 counts as unmatched
    gt = {"images": [{"id": 1}], "categories": [{"id": 1}],
          "annotations": [{"id": 0, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100,
                           "iscrowd": 0},
                          {"id": 7, "image_id": 1, "category_id": 1, "bbox": [30, 0, 10, 10], "area": 100,
                           "iscrowd": 0}]}
    dets = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
            {"image_id": 1, "category_id": 1, "bbox": [30, 0, 10, 10], "score": 0.8}]
    assert_same(evaluate_coco(gt, dets), pycoco_eval(gt, dets)[0])


def test_custom_parameters_match_pycocotools():
    gt, dets = make_coco(11, integer=True, tie_frac=0.3)
    thr = [0.3, 0.5, 0.75]
    areas = {"all": (0.0, 1e10), "tiny": (0.0, 200.0), "big": (200.0, 1e10)}
    ours = evaluate_coco(gt, dets, iou_thresholds=thr, max_dets=(5, 20), area_ranges=areas)
    ev, _ = pycoco_eval(gt, dets, iou_thresholds=thr, max_dets=[5, 20], area_ranges=areas, summarize=False)
    assert_same(ours, ev, stats=False)
    # documented deviation: the headline AP uses the largest max_dets
    p = ours.precision[:, :, :, 0, -1]
    assert ours.stats[0] == pytest.approx(p[p > -1].mean())
    assert ours.stats[6] == pytest.approx(ours.recall[:, :, 0, 0][ours.recall[:, :, 0, 0] > -1].mean())


def test_boundaries_degenerate_boxes_and_max_det_one():
    rng = np.random.default_rng(5)
    anns, dets = [], []
    for img in range(1, 7):
        for k, (w, h, area) in enumerate([(32, 32, 1024.0), (96, 96, 9216.0), (16, 64, 1024.0), (10, 10, 100.0),
                                          (0, 10, 0.0), (40, 40, 1600.0)]):
            anns.append({"id": len(anns) + 1, "image_id": img, "category_id": 1 + k % 2,
                         "bbox": [float(5 * k), float(7 * k), float(w), float(h)], "area": area,
                         "iscrowd": int(k == 5 and img % 2 == 0)})
            for _ in range(3):  # identical duplicates with tied scores, exact-fit boxes, zero-width boxes
                jitter = float(rng.choice([0, 0, 1, 4]))
                dets.append({"image_id": img, "category_id": 1 + k % 2, "score": float(rng.choice([0.3, 0.6])),
                             "bbox": [5.0 * k + jitter, 7.0 * k, float(w), float(h)]})
    gt = {"images": [{"id": i} for i in range(1, 7)], "categories": [{"id": 1}, {"id": 2}], "annotations": anns}
    assert_same(evaluate_coco(gt, dets), pycoco_eval(gt, dets)[0])
    ours = evaluate_coco(gt, dets, max_dets=(1,))
    ev, _ = pycoco_eval(gt, dets, max_dets=[1], summarize=False)
    assert_same(ours, ev, stats=False)


@pytest.mark.slow
def test_larger_random_set_matches_pycocotools():
    gt, dets = make_coco(99, num_images=400, num_cats=20, max_gt=20, max_dets=100, integer=True, tie_frac=0.2)
    assert_same(evaluate_coco(gt, dets), pycoco_eval(gt, dets)[0])


@settings(max_examples=12, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31 - 1), integer=st.booleans(), ties=st.sampled_from([0.0, 0.5, 1.0]),
       crowd=st.sampled_from([0.0, 0.2, 0.6]), max_dets=st.sampled_from([3, 15, 60]))
def test_property_tiny_sets_match_pycocotools(seed, integer, ties, crowd, max_dets):
    gt, dets = make_coco(seed, num_images=int(seed % 5) + 1, num_cats=int(seed % 3) + 1, max_gt=6,
                         max_dets=max_dets, crowd_frac=crowd, integer=integer, tie_frac=ties, image_size=60.0)
    if not dets:
        dets = [{"image_id": gt["images"][0]["id"], "category_id": gt["categories"][0]["id"],
                 "bbox": [1.0, 1.0, 5.0, 5.0], "score": 0.5}]  # pycocotools cannot load an empty list
    assert_same(evaluate_coco(gt, dets), pycoco_eval(gt, dets)[0])
