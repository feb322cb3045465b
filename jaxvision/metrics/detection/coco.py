"""COCO bbox mAP equal to ``pycocotools.cocoeval.COCOeval`` (evaluate + accumulate + summarize).

Pipeline: parse the JSON-like inputs into arrays (:mod:`coco_io`); sort detections per (image, category) by score
(stable) and keep the first ``max(max_dets)``; compute IoU for every detection/GT combination of the same
(image, category) with pycocotools' float64 formula (not ``jaxvision.ops.box_iou``: pycocotools takes areas as
``w * h`` of the xywh box while ``box_iou`` recomputes them from xyxy corners, which can differ in the last bit
and flip an IoU sitting exactly on a threshold); run the greedy matching as one jit-compiled fixed-point program
over the (detection, GT) edges that can match at all (:mod:`detection_matching`); accumulate PR curves with one
global sort (:mod:`coco_accumulate`).

IoU thresholds are compared in float64 exactly as pycocotools does: e.g. an IoU of exactly 3/5 does *not* pass
``linspace(.5, .95, 10)[2] == 0.6000000000000001``. Only the precision envelope uses offsets that can round in
the 13th digit; every other number is bit-identical to pycocotools in the tests.

``max_dets`` other than ``(1, 10, 100)``: pycocotools hard-codes ``maxDets=100`` for the headline AP (stats[0])
and uses ``maxDets[2]`` for stats 1-5 and 8-11. Here those stats use the largest ``max_dets`` value, stats[6]
uses ``max_dets[0]`` and stats[7] ``max_dets[1]`` (or the largest if there is only one). With the default
``(1, 10, 100)`` the two agree.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from jaxvision.metrics.detection.coco_accumulate import accumulate
from jaxvision.metrics.detection.coco_io import CocoDetections, CocoGroundTruth, load_detections, load_ground_truth
from jaxvision.metrics.detection.matching import match_edges

__all__ = ["evaluate_coco", "evaluate_coco_arrays", "CocoResult", "COCO_AREA_RANGES", "coco_iou_thresholds"]

COCO_AREA_RANGES = {"all": (0.0, 1e5**2), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2),
                    "large": (96.0**2, 1e5**2)}


def coco_iou_thresholds() -> np.ndarray:
    """pycocotools' ``iouThrs``: ``linspace(.5, .95, 10)`` (exactly, not arange)."""
    return np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)


RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)


@dataclass
class CocoResult:
    """Result of :func:`evaluate_coco`.

    Attributes:
      stats: ``[12]`` float64, ``COCOeval.stats`` (AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm,
        ARl), -1 where undefined.
      precision: ``[T, R, K, A, M]`` float64, ``COCOeval.eval['precision']`` (-1 for categories without GT).
      recall: ``[T, K, A, M]`` float64, ``COCOeval.eval['recall']``.
      per_class_ap: category id -> AP@[.5:.95] (area 'all' or the first range, largest max_dets), -1 if no GT.
    """

    stats: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    per_class_ap: dict
    iou_thresholds: np.ndarray
    recall_thresholds: np.ndarray
    category_ids: np.ndarray
    area_labels: tuple
    max_dets: tuple
    _lines: list = field(default_factory=list, repr=False)

    def summary(self) -> str:
        """The 12 lines ``COCOeval.summarize()`` prints, same layout."""
        return "\n".join(self._lines)


def _pair_layout(keys_sorted):
    """For pair keys sorted ascending: start index of each element's run and its position within the run."""
    n = len(keys_sorted)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    new = np.ones(n, bool)
    new[1:] = keys_sorted[1:] != keys_sorted[:-1]
    starts = np.flatnonzero(new)
    run = np.cumsum(new) - 1
    start_of = starts[run]
    return start_of, np.arange(n) - start_of


def _combinations(det_pair, gt_pair_sorted):
    """All (det, gt) index combinations sharing a pair key. det_pair: [Nd] keys; gt_pair_sorted: [Ng] sorted."""
    lo = np.searchsorted(gt_pair_sorted, det_pair, "left")
    cnt = np.searchsorted(gt_pair_sorted, det_pair, "right") - lo
    total = int(cnt.sum())
    rows = np.repeat(np.arange(len(det_pair)), cnt)
    offs = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    cols = np.repeat(lo, cnt) + offs
    return rows, cols


def _coco_iou(dbox, gbox, crowd):
    """pycocotools ``bbIou`` in float64, same operation order: xywh boxes [N, 4] x [N, 4] -> [N] IoU."""
    w = np.minimum(dbox[:, 2] + dbox[:, 0], gbox[:, 2] + gbox[:, 0]) - np.maximum(dbox[:, 0], gbox[:, 0])
    h = np.minimum(dbox[:, 3] + dbox[:, 1], gbox[:, 3] + gbox[:, 1]) - np.maximum(dbox[:, 1], gbox[:, 1])
    ok = (w > 0) & (h > 0)
    inter = w * h
    da = dbox[:, 2] * dbox[:, 3]
    ga = gbox[:, 2] * gbox[:, 3]
    union = np.where(crowd, da, da + ga - inter)
    return np.where(ok, inter / np.where(ok, union, 1.0), 0.0)


def match_detections(gt: CocoGroundTruth, dt: CocoDetections, iou_thresholds, max_det, area_ranges):
    """Per-detection COCOeval matching results.

    Returns a dict over the kept detections (first ``max_det`` per image/category by score, pair-major order):
    ``img``, ``cat``, ``rank`` (position within its pair), ``score`` [N]; ``out_range`` [A, N] (detection area
    outside the area range); ``act`` [Ni] indices of the detections that reach the lowest IoU threshold with
    some GT, with ``matched`` [A, T, Ni] (matched a GT whose id is nonzero) and ``ignored`` [A, T, Ni]
    (pycocotools dtIgnore; for all other detections dtIgnore = ``out_range``); ``gt_ignore`` [A, Ng] and
    ``gt_cat`` [Ng].
    """
    num_k = len(gt.category_ids)
    lo = np.array([r[0] for r in area_ranges], np.float64)[:, None]
    hi = np.array([r[1] for r in area_ranges], np.float64)[:, None]
    # detections: pair-major, score descending, stable; keep the first max_det of each pair
    d_pair = dt.img * num_k + dt.cat
    order = np.lexsort((-dt.score, d_pair))
    d_pair = d_pair[order]
    _, rank = _pair_layout(d_pair)
    kept = rank < max_det
    order, d_pair, rank = order[kept], d_pair[kept], rank[kept]
    dbox = dt.bbox[order]
    # ground truth: pair-major, original order within a pair
    g_pair = gt.img * num_k + gt.cat
    g_order = np.argsort(g_pair, kind="stable")
    g_pair, gbox, gcrowd = g_pair[g_order], gt.bbox[g_order], gt.crowd[g_order]
    garea, gid, gcat = gt.area[g_order], gt.ann_id[g_order], gt.cat[g_order]
    g_ignore = gcrowd[None] | (garea[None] < lo) | (garea[None] > hi)  # [A, Ng]
    thr = np.minimum(np.asarray(iou_thresholds, np.float64), 1 - 1e-10)
    # IoU of every same-pair combination; only those reaching the lowest threshold can ever match
    rows, cols = _combinations(d_pair, g_pair)
    iou = _coco_iou(dbox[rows], gbox[cols], gcrowd[cols])
    hit = iou >= thr.min()
    rows, cols, iou = rows[hit], cols[hit], iou[hit]
    act, edge_det = np.unique(rows, return_inverse=True)
    g_act, edge_gt = np.unique(cols, return_inverse=True)
    m = match_edges(edge_det, edge_gt, iou, rank[act], gcrowd[g_act], g_ignore[:, g_act], thr)  # [A, T, Ni]
    has = m >= 0
    mg = g_act[np.maximum(m, 0)] if len(g_act) else np.zeros(m.shape, np.int64)
    matched = has & (gid[mg] != 0)  # pycocotools stores the GT id; id 0 reads as "unmatched"
    num_a = len(area_ranges)
    ign_gt = has & g_ignore[np.arange(num_a)[:, None, None], mg] if len(g_act) else has
    darea = dbox[:, 2] * dbox[:, 3]
    out_range = (darea[None] < lo) | (darea[None] > hi)  # [A, N]
    ignored = ign_gt | (~matched & out_range[:, None, act])
    return dict(img=dt.img[order], cat=dt.cat[order], rank=rank, score=dt.score[order], out_range=out_range,
                act=act, matched=matched, ignored=ignored, gt_ignore=g_ignore, gt_cat=gcat)


def _summarize(precision, recall, thresholds, labels, max_dets):
    """The 12 ``COCOeval.summarize`` stats and their printed lines."""
    big = max_dets[-1]
    spec = [(1, None, "all", big), (1, 0.5, "all", big), (1, 0.75, "all", big), (1, None, "small", big),
            (1, None, "medium", big), (1, None, "large", big), (0, None, "all", max_dets[0]),
            (0, None, "all", max_dets[min(1, len(max_dets) - 1)]), (0, None, "all", big),
            (0, None, "small", big), (0, None, "medium", big), (0, None, "large", big)]
    fmt = " {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}"
    stats, lines = np.zeros(12), []
    for i, (ap, thr, area, md) in enumerate(spec):
        s = precision if ap else recall
        if thr is not None:
            s = s[np.flatnonzero(np.isclose(thresholds, thr, rtol=0, atol=1e-12))]
        a = [j for j, lbl in enumerate(labels) if lbl == area]
        m = [j for j, v in enumerate(max_dets) if v == md]
        s = s[..., a, :][..., m]
        vals = s[s > -1]
        stats[i] = -1.0 if vals.size == 0 else float(np.mean(vals))
        iou_str = f"{thresholds[0]:0.2f}:{thresholds[-1]:0.2f}" if thr is None else f"{thr:0.2f}"
        lines.append(fmt.format("Average Precision" if ap else "Average Recall", "(AP)" if ap else "(AR)",
                                iou_str, area, md, stats[i]))
    return stats, lines


def evaluate_coco(ground_truth, detections, iou_thresholds=None, max_dets=(1, 10, 100), area_ranges=None):
    """COCO bbox evaluation, numerically equal to pycocotools' ``COCOeval(gt, dt, 'bbox')``.

    Args:
      ground_truth: COCO annotation dict (``images``, ``annotations`` with ``image_id``, ``category_id``,
        ``bbox`` [x, y, w, h] absolute pixels, ``area``, ``iscrowd``, ``id``; ``categories``) or a JSON path.
      detections: results list of dicts ``{image_id, category_id, bbox [x, y, w, h], score}``, a JSON path, or
        a float array ``[N, 7]`` (image_id, x, y, w, h, score, category_id) as in ``loadNumpyAnnotations``.
      iou_thresholds: ``[T]`` floats in (0, 1]; default ``linspace(.5, .95, 10)``.
      max_dets: increasing detection caps per image and category; default ``(1, 10, 100)``.
      area_ranges: mapping label -> (min_area, max_area), inclusive; default :data:`COCO_AREA_RANGES`.

    Returns:
      :class:`CocoResult`. Errors in the inputs raise ``ValueError`` naming the record and field
      (see :mod:`jaxvision.metrics.detection.coco_io` for where this differs from pycocotools).

    The first call in a process compiles the matching program (one program per power-of-two problem size, well
    under a second on an idle core); JAX's persistent compilation cache (``jax_compilation_cache_dir``) can keep
    it across processes.
    """
    gt = load_ground_truth(ground_truth)
    dt = load_detections(detections, gt)
    return evaluate_coco_arrays(gt, dt, iou_thresholds, max_dets, area_ranges)


def evaluate_coco_arrays(gt: CocoGroundTruth, dt: CocoDetections, iou_thresholds=None, max_dets=(1, 10, 100),
                         area_ranges=None) -> CocoResult:
    """:func:`evaluate_coco` on already-parsed arrays (see :mod:`jaxvision.metrics.detection.coco_io`), e.g. from the
    streaming evaluator. Arguments as in :func:`evaluate_coco`."""
    thresholds = coco_iou_thresholds() if iou_thresholds is None else np.asarray(iou_thresholds, np.float64)
    if thresholds.ndim != 1 or thresholds.size == 0 or not ((thresholds > 0) & (thresholds <= 1)).all():
        raise ValueError(f"iou_thresholds: expected a non-empty 1-D sequence in (0, 1], got {iou_thresholds!r}")
    max_dets = tuple(sorted(int(m) for m in max_dets))
    if not max_dets or min(max_dets) <= 0:
        raise ValueError(f"max_dets: expected positive integers, got {max_dets!r}")
    area_ranges = dict(COCO_AREA_RANGES if area_ranges is None else area_ranges)
    if not area_ranges or any(len(tuple(v)) != 2 for v in area_ranges.values()):
        raise ValueError(f"area_ranges: expected a mapping label -> (min, max), got {area_ranges!r}")
    labels, ranges = tuple(area_ranges), [tuple(map(float, v)) for v in area_ranges.values()]
    res = match_detections(gt, dt, thresholds, max_dets[-1], ranges)
    precision, recall = accumulate(res, len(gt.category_ids), thresholds, RECALL_THRESHOLDS, max_dets)
    stats, lines = _summarize(precision, recall, thresholds, labels, max_dets)
    a0 = labels.index("all") if "all" in labels else 0
    per_class = {}
    for k, cid in enumerate(gt.category_ids):
        p = precision[:, :, k, a0, -1]
        per_class[int(cid)] = float(np.mean(p[p > -1])) if (p > -1).any() else -1.0
    return CocoResult(stats, precision, recall, per_class, thresholds, RECALL_THRESHOLDS.copy(), gt.category_ids,
                      labels, max_dets, lines)
