"""Evaluation outputs written into a run's workdir (``eval/``), comparable with published numbers.

``write_detection_outputs(directory, ...)`` writes:

- ``coco_results.json``: the detections as a COCO results list (``image_id``, ``category_id``, ``bbox`` [x, y, w, h]
  in original-image pixels, ``score``), submittable to a COCO evaluation server when the data set's category ids
  are given (``coco_json``; the class index otherwise);
- ``coco_summary.txt``: the 12 lines of ``COCOeval.summarize()``; ``metrics.json``: the metrics and the 12 stats
  by name;
- ``per_class_ap.md``: a table of each class's name, ground-truth count, VOC AP@0.5 and COCO AP@[.5:.95];
- ``pr/pr_overall.png`` and ``pr/pr_<class>.png``: VOC precision-recall curves (needs matplotlib; skipped with a
  note in ``metrics.json`` without it).
"""
from __future__ import annotations

import json
import math
import os

COCO_STAT_NAMES = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR1", "AR10", "AR100", "AR_small",
                   "AR_medium", "AR_large")


def _finite(x: float):
    return float(x) if math.isfinite(float(x)) else None


def write_detection_outputs(directory: str, metrics: dict, voc, coco, results: list, class_names=None,
                            category_ids=None) -> list[str]:
    """Write the files listed in the module docstring into ``directory``; returns their paths.

    Args:
      metrics: the eval metrics (floats). voc: a ``VocResult`` (its method's AP). coco: a ``CocoResult``.
      results: COCO results list with class indices as ``category_id``. class_names: by class index.
      category_ids: by class index, the data set's COCO category ids (replace the class indices in the JSON).
    """
    os.makedirs(directory, exist_ok=True)
    num_classes = len(voc.ap)
    names = list(class_names) if class_names else [str(c) for c in range(num_classes)]
    if category_ids is not None:
        results = [{**r, "category_id": int(category_ids[r["category_id"]])} for r in results]
    paths = []

    def write(name: str, text: str):
        path = os.path.join(directory, name)
        with open(path, "w") as f:
            f.write(text)
        paths.append(path)

    write("coco_results.json", json.dumps(results))
    write("coco_summary.txt", coco.summary() + "\n")
    coco_ap = {int(c): float(v) for c, v in coco.per_class_ap.items()}
    rows = ["| class | name | GT (non-difficult) | VOC AP@0.5 (" + voc.method + ") | COCO AP@[.5:.95] |",
            "|---:|---|---:|---:|---:|"]
    for c in range(num_classes):
        v, a = voc.ap[c], coco_ap.get(c, -1.0)
        rows.append(f"| {c} | {names[c] if c < len(names) else c} | {int(voc.num_positives[c])} | "
                    f"{'-' if not math.isfinite(v) else f'{v:.4f}'} | {'-' if a < 0 else f'{a:.4f}'} |")
    write("per_class_ap.md", "\n".join(rows) + "\n")
    info = {"metrics": {k: _finite(v) for k, v in metrics.items()},
            "coco_stats": {n: float(v) for n, v in zip(COCO_STAT_NAMES, coco.stats)}}
    try:
        from jaxvision.metrics.detection.plots import save_pr_curves

        paths += save_pr_curves(voc, os.path.join(directory, "pr"), names)
    except ImportError as e:
        info["pr_curves"] = f"not written: {e}"
    write("metrics.json", json.dumps(info, indent=1))
    return paths
