"""Streaming detection evaluation for eval loops: fixed-shape ``update`` per batch, one ``compute`` at the end.

No Python dicts per box are ever built: batches are kept as padded numpy arrays (COCO mode) or reduced at once to
per-detection TP/FP flags by the jit-compiled VOC matcher (VOC mode). Conversion to and from the COCO results
JSON layout is provided for interoperability (``to_coco_json``, :func:`to_coco_results`,
:func:`from_coco_results`).
"""
from __future__ import annotations

import numpy as np

from jaxvision.metrics.detection.coco import CocoResult, evaluate_coco_arrays
from jaxvision.metrics.detection.coco_io import CocoDetections, CocoGroundTruth, load_json
from jaxvision.metrics.detection.voc import VocResult, _valid_mask, match_float64, voc_ap_from_matches

__all__ = ["DetectionEvaluator", "to_coco_results", "from_coco_results"]


def _xyxy_to_xywh(boxes):
    boxes = np.asarray(boxes, np.float64)
    return np.concatenate([boxes[..., :2], boxes[..., 2:] - boxes[..., :2]], axis=-1)


def to_coco_results(pred_boxes, pred_scores, pred_labels, pred_valid=None, image_ids=None, category_ids=None):
    """Padded predictions -> a COCO results list ``[{image_id, category_id, bbox [x, y, w, h], score}]``.

    Args:
      pred_boxes: ``[B, D, 4]`` xyxy pixels. pred_scores: ``[B, D]``. pred_labels: ``[B, D]`` class index.
      pred_valid: ``[B, D]`` bool or ``[B]`` counts; default all valid.
      image_ids: ``[B]`` ints; default ``1..B``. category_ids: sequence mapping class index -> category id;
        default the class index itself.
    """
    boxes = _xyxy_to_xywh(pred_boxes)
    b, d = boxes.shape[:2]
    valid = _valid_mask("pred_valid", pred_valid, (b, d))
    image_ids = np.arange(1, b + 1) if image_ids is None else np.asarray(image_ids)
    labels = np.asarray(pred_labels)
    cats = labels if category_ids is None else np.asarray(category_ids)[labels]
    ii, jj = np.nonzero(valid)
    return [{"image_id": int(image_ids[i]), "category_id": int(c), "bbox": [float(v) for v in bb], "score": float(s)}
            for i, c, bb, s in zip(ii, cats[ii, jj], boxes[ii, jj], np.asarray(pred_scores, np.float64)[ii, jj])]


def from_coco_results(results, image_ids, max_dets: int | None = None, category_ids=None):
    """A COCO results list (or JSON path) -> padded ``(boxes [B, D, 4] xyxy, scores [B, D], labels [B, D], valid)``.

    Args:
      results: list of ``{image_id, category_id, bbox [x, y, w, h], score}``.
      image_ids: ``[B]`` image ids fixing the batch order. max_dets: D (default: the most per image); extra
        detections (lowest scores) are dropped. category_ids: class index -> category id (default identity).
    """
    results = load_json(results)
    image_ids = np.asarray(image_ids)
    b = len(image_ids)
    pos = {int(i): k for k, i in enumerate(image_ids)}
    lut = None if category_ids is None else {int(c): k for k, c in enumerate(category_ids)}
    per = [[] for _ in range(b)]
    for n, r in enumerate(results):
        if int(r["image_id"]) not in pos:
            raise ValueError(f"results[{n}]: field 'image_id': {r['image_id']} not in image_ids")
        label = int(r["category_id"]) if lut is None else lut[int(r["category_id"])]
        per[pos[int(r["image_id"])]].append((float(r["score"]), label, r["bbox"]))
    d = max([len(p) for p in per] + [0]) if max_dets is None else int(max_dets)
    boxes = np.zeros((b, d, 4), np.float32)
    scores = np.zeros((b, d), np.float32)
    labels = np.full((b, d), -1, np.int32)
    valid = np.zeros((b, d), bool)
    for i, p in enumerate(per):
        p = sorted(p, key=lambda t: -t[0])[:d]
        for j, (s, c, (x, y, w, h)) in enumerate(p):
            boxes[i, j] = (x, y, x + w, y + h)
            scores[i, j], labels[i, j], valid[i, j] = s, c, True
    return boxes, scores, labels, valid


class DetectionEvaluator:
    """Accumulate padded predictions/targets batch by batch; ``compute()`` gives COCO or VOC metrics.

    Args:
      num_classes: C; labels are class indices in ``[0, C)``.
      kind: ``'coco'`` (:class:`~jaxvision.metrics.detection.coco.CocoResult`, pycocotools semantics; category ids
        are the class indices; image ids are the ``image_ids`` given to ``update`` (default 1, 2, ... in update
        order); GT area = box area unless ``gt_area`` is given) or
        ``'voc'`` (:class:`~jaxvision.metrics.detection.voc.VocResult`, devkit rules).
      iou_thresholds, max_dets, area_ranges: COCO options (see :func:`~jaxvision.metrics.evaluate_coco`).
      iou_threshold, voc_method, strict, plus_one: VOC options (see :func:`~jaxvision.metrics.evaluate_voc`).
    """

    def __init__(self, num_classes: int, kind: str = "coco", iou_thresholds=None, max_dets=(1, 10, 100),
                 area_ranges=None, iou_threshold: float = 0.5, voc_method: str = "voc", strict: bool = False,
                 plus_one: bool = False):
        if kind not in ("coco", "voc"):
            raise ValueError(f"kind: expected one of ('coco', 'voc'), got {kind!r}")
        if int(num_classes) <= 0:
            raise ValueError(f"num_classes: expected > 0, got {num_classes!r}")
        self.num_classes, self.kind = int(num_classes), kind
        self.coco_options = dict(iou_thresholds=iou_thresholds, max_dets=max_dets, area_ranges=area_ranges)
        self.voc_options = dict(iou_threshold=iou_threshold, strict=strict, plus_one=plus_one)
        self.voc_method = voc_method
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        self._batches, self._voc, self._num_images, self._ids = [], [], 0, []
        self._npos = np.zeros(self.num_classes, np.int64)

    def update(self, pred_boxes, pred_scores, pred_labels, pred_valid, gt_boxes, gt_labels, gt_mask=None,
               gt_difficult=None, gt_crowd=None, gt_area=None, image_ids=None) -> None:
        """Add one batch.

        Args:
          pred_boxes: ``[B, D, 4]`` float xyxy pixels. pred_scores: ``[B, D]``. pred_labels: ``[B, D]`` int.
          pred_valid: ``[B, D]`` bool, ``[B]`` int counts (``Detections.num_valid``), or None (all valid).
          gt_boxes: ``[B, G, 4]`` float xyxy pixels. gt_labels: ``[B, G]`` int (-1 = padding).
          gt_mask: ``[B, G]`` bool; default ``gt_labels >= 0``.
          gt_difficult: ``[B, G]`` bool (VOC). gt_crowd: ``[B, G]`` bool (COCO iscrowd).
          gt_area: ``[B, G]`` float (COCO 'area'; default box area).
          image_ids: ``[B]`` int, the data set's image ids (COCO ``image_id``; they must be unique over all
            updates); default the running count 1, 2, ... . Either always or never given.
        """
        pb = np.asarray(pred_boxes, np.float64)
        gb = np.asarray(gt_boxes, np.float64)
        if pb.ndim != 3 or pb.shape[-1] != 4:
            raise ValueError(f"pred_boxes: expected [B, D, 4], got {pb.shape}")
        if gb.ndim != 3 or gb.shape[-1] != 4 or gb.shape[0] != pb.shape[0]:
            raise ValueError(f"gt_boxes: expected [{pb.shape[0]}, G, 4], got {gb.shape}")
        b, d, g = pb.shape[0], pb.shape[1], gb.shape[1]
        ps, pl, gl = np.asarray(pred_scores, np.float64), np.asarray(pred_labels), np.asarray(gt_labels)
        for name, x, shp in (("pred_scores", ps, (b, d)), ("pred_labels", pl, (b, d)), ("gt_labels", gl, (b, g))):
            if x.shape != shp:
                raise ValueError(f"{name}: expected shape {list(shp)}, got {x.shape}")
        pv = _valid_mask("pred_valid", pred_valid, (b, d)) & (pl >= 0) & (pl < self.num_classes)
        gm = _valid_mask("gt_mask", gt_mask if gt_mask is not None else gl >= 0, (b, g)) & (gl >= 0)
        gm &= gl < self.num_classes
        diff = np.zeros((b, g), bool) if gt_difficult is None else np.asarray(gt_difficult, bool)
        crowd = np.zeros((b, g), bool) if gt_crowd is None else np.asarray(gt_crowd, bool)
        if not (np.isfinite(pb[pv]).all() and np.isfinite(ps[pv]).all() and np.isfinite(gb[gm]).all()):
            raise ValueError("pred_boxes/pred_scores/gt_boxes: expected finite values in valid entries")
        if (image_ids is None) != (not self._ids) and self._num_images:
            raise ValueError("image_ids: expected for every batch or for none (this evaluator has seen "
                             f"{'some' if self._ids else 'none'}), got {'None' if image_ids is None else 'ids'}")
        if image_ids is not None:
            ids = np.asarray(image_ids)
            if ids.shape != (b,) or not np.issubdtype(ids.dtype, np.integer):
                raise ValueError(f"image_ids: expected int [{b}], got {ids.dtype} {list(ids.shape)}")
            self._ids.append(ids.astype(np.int64))
        if self.kind == "voc":
            if d and g:
                tp, fp = match_float64(pb, ps, pl, pv, gb, gl, gm, diff, self.voc_options["iou_threshold"],
                                       self.voc_options["strict"], self.voc_options["plus_one"])
                tp, fp = tp[pv], fp[pv]
            else:
                tp, fp = np.zeros(int(pv.sum()), bool), np.ones(int(pv.sum()), bool)
            self._voc.append((ps[pv], pl[pv], tp, fp))
            self._npos += np.bincount(gl[gm & ~diff], minlength=self.num_classes)[: self.num_classes]
        else:
            area = None if gt_area is None else np.asarray(gt_area, np.float64)
            self._batches.append((pb, ps, pl, pv, gb, gl, gm, crowd, area))
        self._num_images += b

    def _arrays(self):
        """Accumulated COCO-mode batches as (CocoGroundTruth, CocoDetections); images sorted by id (pycocotools)."""
        ids = self.image_ids()
        order = np.argsort(ids, kind="stable")
        rank = np.empty(len(ids), np.int64)
        rank[order] = np.arange(len(ids))  # image k (update order) -> index into the sorted ids
        gts, dts, base = [], [], 0
        for pb, ps, pl, pv, gb, gl, gm, crowd, area in self._batches:
            img = rank[base:base + len(pb)][:, None]
            gi, gj = np.nonzero(gm)
            gbox = _xyxy_to_xywh(gb[gi, gj])
            garea = gbox[:, 2] * gbox[:, 3] if area is None else area[gi, gj]
            gts.append((img[gi, 0], gl[gi, gj], gbox, garea, crowd[gi, gj]))
            di, dj = np.nonzero(pv)
            dts.append((img[di, 0], pl[di, dj], _xyxy_to_xywh(pb[di, dj]), ps[di, dj].astype(np.float64)))
            base += len(pb)
        cat = lambda parts, k, empty: np.concatenate([p[k] for p in parts]) if parts else empty  # noqa: E731
        z = np.zeros(0, np.int64)
        n_gt = sum(len(p[0]) for p in gts)
        gt = CocoGroundTruth(ids[order], np.arange(self.num_classes),
                             cat(gts, 0, z).astype(np.int64), cat(gts, 1, z).astype(np.int64),
                             cat(gts, 2, np.zeros((0, 4))), cat(gts, 3, np.zeros(0)), cat(gts, 4, z).astype(bool),
                             np.arange(1, n_gt + 1))
        dt = CocoDetections(cat(dts, 0, z).astype(np.int64), cat(dts, 1, z).astype(np.int64),
                            cat(dts, 2, np.zeros((0, 4))), cat(dts, 3, np.zeros(0)))
        return gt, dt

    def image_ids(self) -> np.ndarray:
        """int64 [N]: the image id of every image seen, in update order (``image_ids`` or 1..N)."""
        if not self._ids:
            return np.arange(1, self._num_images + 1)
        ids = np.concatenate(self._ids)
        uniq, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            raise ValueError(f"image_ids: expected unique ids over all updates, got {uniq[counts > 1][:5].tolist()} "
                             "more than once")
        return ids

    def compute(self) -> CocoResult | VocResult:
        """Metrics over everything passed to :meth:`update` since the last :meth:`reset`."""
        if self.kind == "voc":
            parts = self._voc or [(np.zeros(0), np.zeros(0, int), np.zeros(0, bool), np.zeros(0, bool))]
            s, l, tp, fp = (np.concatenate([p[k] for p in parts]) for k in range(4))
            return voc_ap_from_matches(s, l, tp, fp, self._npos, self.voc_method)
        gt, dt = self._arrays()
        return evaluate_coco_arrays(gt, dt, **self.coco_options)

    def to_coco_json(self):
        """COCO-mode state as ``(ground-truth dict, results list)``, ready for ``json.dump`` or pycocotools."""
        if self.kind != "coco":
            raise ValueError("to_coco_json: only available with kind='coco'")
        gt, dt = self._arrays()
        images = [{"id": int(i)} for i in gt.image_ids]
        cats = [{"id": int(c), "name": str(c)} for c in gt.category_ids]
        anns = [{"id": int(a), "image_id": int(gt.image_ids[i]), "category_id": int(c),
                 "bbox": [float(v) for v in bb], "area": float(ar), "iscrowd": int(cr)}
                for a, i, c, bb, ar, cr in zip(gt.ann_id, gt.img, gt.cat, gt.bbox, gt.area, gt.crowd)]
        results = [{"image_id": int(gt.image_ids[i]), "category_id": int(c), "bbox": [float(v) for v in bb],
                    "score": float(s)} for i, c, bb, s in zip(dt.img, dt.cat, dt.bbox, dt.score)]
        return {"images": images, "annotations": anns, "categories": cats}, results
