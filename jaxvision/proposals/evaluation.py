"""Proposal recall: the fraction of ground-truth boxes that some proposal among the top ``n`` covers with IoU >= t."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of xyxy boxes ``a [N, 4]`` and ``b [M, 4]``: float64 [N, M] (0 where a union is empty)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    area = lambda x: np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), -1)
    union = area(a)[:, None] + area(b)[None] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def proposal_recall(proposals: Sequence[np.ndarray], gt_boxes: Sequence[np.ndarray],
                    counts: Sequence[int] = (10, 30, 100, 300, 1000),
                    thresholds: Sequence[float] = (0.5, 0.7)) -> np.ndarray:
    """Recall of ranked proposals.

    Args:
      proposals: per image, float [N_i, 4] xyxy, best-ranked first.
      gt_boxes: per image, float [G_i, 4] xyxy (only real objects; images with none contribute nothing).
      counts: numbers of top proposals n to evaluate.
      thresholds: IoU thresholds t.

    Returns:
      float64 [len(counts), len(thresholds)]: recall (covered ground-truth boxes / all of them, over all images).
    """
    if len(proposals) != len(gt_boxes):
        raise ValueError(f"proposals: expected one array per image ({len(gt_boxes)}), got {len(proposals)}")
    covered = np.zeros((len(counts), len(thresholds)))
    total = 0
    for p, g in zip(proposals, gt_boxes):
        g = np.asarray(g).reshape(-1, 4)
        if not len(g):
            continue
        total += len(g)
        iou = box_iou(p, g)  # [N, G]
        for ci, n in enumerate(counts):
            best = iou[:n].max(0) if min(n, len(iou)) else np.zeros(len(g))
            covered[ci] += (best[:, None] >= np.asarray(thresholds)[None]).sum(0)
    if total == 0:
        raise ValueError("gt_boxes: expected at least one ground-truth box over all images, got none")
    return covered / total
