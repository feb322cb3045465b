"""Run pycocotools COCOeval (bbox) quietly on deep copies of the inputs (it mutates them)."""
import contextlib
import copy
import io

import numpy as np
import pytest

pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


def pycoco_eval(gt, dets, iou_thresholds=None, max_dets=None, area_ranges=None, summarize=True):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        res = coco.loadRes(copy.deepcopy(dets))
        ev = COCOeval(coco, res, "bbox")
        if iou_thresholds is not None:
            ev.params.iouThrs = np.asarray(iou_thresholds, np.float64)
        if max_dets is not None:
            ev.params.maxDets = list(max_dets)
        if area_ranges is not None:
            ev.params.areaRng = [list(v) for v in area_ranges.values()]
            ev.params.areaRngLbl = list(area_ranges)
        ev.evaluate()
        ev.accumulate()
        if summarize:
            ev.summarize()
    return ev, out.getvalue()


def assert_same(ours, ev, stats=True):
    np.testing.assert_allclose(ours.precision, ev.eval["precision"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.recall, ev.eval["recall"], rtol=0, atol=1e-6)
    if stats:
        np.testing.assert_allclose(ours.stats, ev.stats, rtol=0, atol=1e-6)
