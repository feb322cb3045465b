"""Precision-recall curve plots as PNG files (matplotlib, an optional dependency: ``pip install jaxvision[plot]``)."""
from __future__ import annotations

import os
import re

import numpy as np

__all__ = ["plot_pr_curve", "save_pr_curves"]


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - exercised only without matplotlib
        raise ImportError("PR-curve plots need matplotlib: pip install 'jaxvision[plot]' (or matplotlib)") from e
    return plt


def plot_pr_curve(curves, path, title: str = "Precision-recall") -> str:
    """Write one PNG with one or more PR curves.

    Args:
      curves: mapping label -> ``(recall [N], precision [N])``; each is drawn as a step curve with its AP in the
        legend if the label contains it.
      path: output ``.png`` path (parent directories are created).
      title: figure title.

    Returns:
      ``path``.
    """
    plt = _pyplot()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    for label, (rec, prec) in curves.items():
        rec, prec = np.asarray(rec, np.float64), np.asarray(prec, np.float64)
        ax.step(np.concatenate([[0.0], rec]), np.concatenate([[prec[0] if len(prec) else 0.0], prec]),
                where="post", label=str(label))
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _coco_curves(result, iou=0.5):
    """Per-class (recall, precision) from a CocoResult at one IoU threshold, area 'all', largest max_dets."""
    t = int(np.argmin(np.abs(result.iou_thresholds - iou)))
    a = result.area_labels.index("all") if "all" in result.area_labels else 0
    prec = result.precision[t, :, :, a, -1]  # [R, K]
    return {int(c): (result.recall_thresholds, prec[:, k]) for k, c in enumerate(result.category_ids)
            if (prec[:, k] > -1).all()}


def save_pr_curves(result, directory, class_names=None) -> list:
    """PR-curve PNGs for a :class:`VocResult` or :class:`CocoResult` (IoU 0.5): ``pr_overall.png`` (every
    class plus the class-mean curve) and one ``pr_<class>.png`` per class with ground truth.

    Args:
      result: evaluation result. directory: output folder.
      class_names: optional sequence (VOC: by class index) or mapping (COCO: by category id) of names.

    Returns:
      list of written paths, overall first.
    """
    if hasattr(result, "category_ids"):
        curves = _coco_curves(result)
        aps = {c: float(np.mean(p)) for c, (_, p) in curves.items()}
        grid = result.recall_thresholds
    else:
        curves = {c: (result.recall[c], result.precision[c]) for c in range(len(result.ap))
                  if result.num_positives[c] > 0}
        aps = {c: float(result.ap[c]) for c in curves}
        grid = np.linspace(0, 1, 101)

    def name(c):
        if class_names is None:
            return f"class {c}"
        return str(class_names[c])

    paths = []
    labelled = {f"{name(c)} (AP {aps[c]:.3f})": rc for c, rc in curves.items()}
    if curves:  # class-mean precision on a common recall grid (interpolated envelope, 0 beyond the last recall)
        interp = []
        for rec, prec in curves.values():
            env = np.maximum.accumulate(np.asarray(prec, np.float64)[::-1])[::-1] if len(prec) else np.zeros(0)
            idx = np.searchsorted(rec, grid, side="left")
            interp.append(np.where(idx < len(env), env[np.minimum(idx, max(len(env) - 1, 0))] if len(env) else 0, 0))
        labelled[f"mean (mAP {np.mean(list(aps.values())):.3f})"] = (grid, np.mean(interp, axis=0))
    paths.append(plot_pr_curve(labelled, os.path.join(directory, "pr_overall.png"), "Precision-recall, all classes"))
    for c, rc in curves.items():
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name(c))
        paths.append(plot_pr_curve({f"{name(c)} (AP {aps[c]:.3f})": rc}, os.path.join(directory, f"pr_{safe}.png"),
                                   f"Precision-recall: {name(c)}"))
    return paths
