"""COCO ground truth and results (``loadRes`` format, bbox) -> validated numpy arrays, without per-box Python work
beyond one list comprehension per field.

Differences from pycocotools, on purpose (each raises ``ValueError`` naming the record index and field):

* a detection whose ``category_id`` is not among the ground-truth categories raises (pycocotools silently drops
  it); an unknown ``image_id`` raises (pycocotools asserts);
* non-finite ``bbox``/``score``/``area`` values and negative box widths or heights raise (pycocotools computes
  with them);
* a missing field raises ``ValueError`` instead of ``KeyError``; a ground-truth annotation without ``iscrowd``
  counts as ``iscrowd=0`` (pycocotools raises ``KeyError``);
* duplicate ground-truth annotation ids raise (pycocotools keeps the last annotation twice).

As in pycocotools, ground-truth annotations whose image or category is not listed in ``images`` /
``categories`` are dropped, detection ids are ``1..N`` in list order, detection area is ``w * h`` and
detections are never crowd, and a ground-truth ``ignore`` field is not used (pycocotools overwrites it with
``iscrowd``). Ids must be integers.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from operator import itemgetter

import numpy as np

__all__ = ["CocoGroundTruth", "CocoDetections", "load_ground_truth", "load_detections", "load_json"]


def load_json(value):
    """Return ``value`` itself, or the parsed JSON if it is a path (str or PathLike)."""
    if isinstance(value, (str, os.PathLike)):
        with open(value) as f:
            return json.load(f)
    return value


def _locate(records, what, field, check):
    """Find the first record failing ``check(value)`` and raise a ValueError naming it."""
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise ValueError(f"{what}[{i}]: expected a dict, got {type(rec).__name__}")
        if field not in rec:
            raise ValueError(f"{what}[{i}]: missing field '{field}'")
        msg = check(rec[field])
        if msg:
            raise ValueError(f"{what}[{i}]: field '{field}': {msg}, got {rec[field]!r}")
    raise ValueError(f"{what}: field '{field}' could not be read")  # pragma: no cover


def _is_int(v):
    return None if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else "expected an integer id"


def _is_number(v):
    if isinstance(v, str) or not isinstance(v, (int, float, np.number)):
        return "expected a number"
    return None if np.isfinite(v) else "expected a finite number"


def _is_box(v):
    if not isinstance(v, (list, tuple, np.ndarray)) or len(v) != 4:
        return "expected [x, y, w, h]"
    if any(_is_number(x) for x in v):
        return "expected 4 finite numbers"
    if v[2] < 0 or v[3] < 0:
        return "expected non-negative width and height"
    return None


def _ints(records, what, field):
    try:
        out = np.array(list(map(itemgetter(field), records)))
        if out.ndim == 1 and out.dtype.kind in "iu":
            return out.astype(np.int64)
    except (KeyError, TypeError, ValueError, OverflowError):
        pass
    _locate(records, what, field, _is_int)


def _floats(records, what, field, default=None):
    try:
        if default is None:
            vals = list(map(itemgetter(field), records))
        else:
            vals = [r.get(field, default) for r in records]
        out = np.array(vals)
        if out.ndim == 1 and out.dtype.kind in "fiub":
            out = out.astype(np.float64)
            if np.isfinite(out).all():
                return out
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    _locate(records, what, field, _is_number)


def _boxes(records, what, field="bbox"):
    try:
        out = np.array([r[field] for r in records], dtype=np.float64).reshape(len(records), 4)
        if np.isfinite(out).all() and (out[:, 2:] >= 0).all():
            return out
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    _locate(records, what, field, _is_box)


@dataclass
class CocoGroundTruth:
    """Ground truth as arrays. ``img``/``cat`` are indices into ``image_ids``/``category_ids`` (sorted)."""

    image_ids: np.ndarray  # [I] int64, sorted unique
    category_ids: np.ndarray  # [K] int64, sorted unique
    img: np.ndarray  # [N] int64
    cat: np.ndarray  # [N] int64
    bbox: np.ndarray  # [N, 4] float64 xywh
    area: np.ndarray  # [N] float64, the annotation's 'area' field
    crowd: np.ndarray  # [N] bool
    ann_id: np.ndarray  # [N] int64


@dataclass
class CocoDetections:
    """Detections as arrays, in results-list order."""

    img: np.ndarray  # [N] int64 index into image_ids
    cat: np.ndarray  # [N] int64 index into category_ids
    bbox: np.ndarray  # [N, 4] float64 xywh
    score: np.ndarray  # [N] float64


def _index(ids, sorted_ids):
    """Position of each id in ``sorted_ids`` and a mask of ids found."""
    pos = np.searchsorted(sorted_ids, ids)
    pos = np.minimum(pos, max(len(sorted_ids) - 1, 0))
    found = (sorted_ids[pos] == ids) if len(sorted_ids) else np.zeros(len(ids), bool)
    return pos, found


def load_ground_truth(ground_truth) -> CocoGroundTruth:
    """Parse a COCO annotation dict (or a path to its JSON) into :class:`CocoGroundTruth`."""
    gt = load_json(ground_truth)
    if not isinstance(gt, dict):
        raise ValueError(f"ground_truth: expected a COCO dict or a path, got {type(gt).__name__}")
    for key in ("images", "annotations", "categories"):
        if key not in gt:
            raise ValueError(f"ground_truth: missing key '{key}'")
    image_ids = (np.unique(_ints(gt["images"], "ground_truth['images']", "id")) if gt["images"]
                 else np.zeros(0, np.int64))
    cats = gt["categories"]
    category_ids = np.unique(_ints(cats, "ground_truth['categories']", "id")) if cats else np.zeros(0, np.int64)
    anns = gt["annotations"]
    what = "ground_truth['annotations']"
    if len(anns) == 0:
        z = np.zeros(0, np.int64)
        return CocoGroundTruth(image_ids, category_ids, z, z, np.zeros((0, 4)), np.zeros(0), z.astype(bool), z)
    img_id = _ints(anns, what, "image_id")
    cat_id = _ints(anns, what, "category_id")
    ann_id = _ints(anns, what, "id")
    bbox = _boxes(anns, what)
    area = _floats(anns, what, "area")
    crowd = _floats(anns, what, "iscrowd", default=0) != 0
    img, img_ok = _index(img_id, image_ids)
    cat, cat_ok = _index(cat_id, category_ids)
    keep = img_ok & cat_ok  # pycocotools drops annotations of unlisted images/categories
    if len(np.unique(ann_id)) != len(ann_id):
        uniq, first, counts = np.unique(ann_id, return_index=True, return_counts=True)
        dup = uniq[counts > 1][0]
        i = int(np.flatnonzero(ann_id == dup)[1])
        raise ValueError(f"{what}[{i}]: field 'id': duplicate annotation id {int(dup)}")
    return CocoGroundTruth(image_ids, category_ids, img[keep], cat[keep], bbox[keep], area[keep], crowd[keep],
                           ann_id[keep])


def _from_numpy(arr):
    """pycocotools' ``loadNumpyAnnotations`` layout ``[N, 7]``: image_id, x, y, w, h, score, category_id."""
    arr = np.asarray(arr, np.float64)
    if arr.ndim != 2 or arr.shape[1] != 7:
        raise ValueError(f"detections: expected a list of dicts or an array [N, 7], got shape {arr.shape}")
    return [{"image_id": int(r[0]), "bbox": [r[1], r[2], r[3], r[4]], "score": r[5], "category_id": int(r[6])}
            for r in arr]


def load_detections(detections, gt: CocoGroundTruth) -> CocoDetections:
    """Parse a results list (``loadRes`` bbox format, a path to its JSON, or an ``[N, 7]`` array)."""
    dets = load_json(detections)
    if isinstance(dets, np.ndarray):
        dets = _from_numpy(dets)
    if not isinstance(dets, (list, tuple)):
        raise ValueError(f"detections: expected a list of result dicts or a path, got {type(dets).__name__}")
    what = "detections"
    if len(dets) == 0:
        z = np.zeros(0, np.int64)
        return CocoDetections(z, z, np.zeros((0, 4)), np.zeros(0))
    img_id = _ints(dets, what, "image_id")
    cat_id = _ints(dets, what, "category_id")
    bbox = _boxes(dets, what)
    score = _floats(dets, what, "score")
    img, img_ok = _index(img_id, gt.image_ids)
    if not img_ok.all():
        i = int(np.flatnonzero(~img_ok)[0])
        raise ValueError(f"{what}[{i}]: field 'image_id': unknown image id {int(img_id[i])} (not in ground truth)")
    cat, cat_ok = _index(cat_id, gt.category_ids)
    if not cat_ok.all():
        i = int(np.flatnonzero(~cat_ok)[0])
        raise ValueError(f"{what}[{i}]: field 'category_id': unknown category id {int(cat_id[i])} "
                         "(not in ground truth)")
    return CocoDetections(img, cat, bbox, score)
