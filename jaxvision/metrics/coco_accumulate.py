"""``COCOeval.accumulate`` as a few global numpy passes instead of a loop over categories x areas x maxDets.

pycocotools, per (category k, area a, maxDet m): concatenates the per-image detections (images in id order, each
image's detections in score order, first m), stable-sorts them by score, takes cumulative TP/FP counts per IoU
threshold, recall ``tp / npig``, precision ``tp / (tp + fp + eps)``, its monotone envelope, and reads the
envelope at ``searchsorted(recall, recThrs, 'left')`` (0 past the end).

Here all detections are sorted once by (category, -score, image, rank) - the same order. Precision only needs
the envelope at the recall thresholds, and the envelope at any position equals its value at the next true
positive, so only TP positions are kept: the j-th TP of a group has precision ``j / (fp_before + j + eps)`` and
the threshold ``r`` lands on the smallest j with ``j / npig >= r``. The suffix maximum over TPs is one
``maximum.accumulate`` over a per-row padded array with per-category offsets (rounding error < 1e-13).
"""
from __future__ import annotations

import numpy as np

__all__ = ["accumulate", "recall_rank"]


def recall_rank(npig: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Smallest integer ``j >= 0`` with ``float64(j) / npig >= r`` (numpy's comparison), per npig x threshold.

    Args:
      npig: ``[...]`` int, positive counts. thresholds: ``[R]`` float64 in [0, 1].

    Returns:
      ``[..., R]`` int64.
    """
    n = np.asarray(npig, np.float64)[..., None]
    j = np.ceil(thresholds * n)
    for _ in range(2):
        j = np.where((j >= 1) & ((j - 1) / n >= thresholds), j - 1, j)
        j = np.where(j / n < thresholds, j + 1, j)
    return j.astype(np.int64)


def accumulate(res: dict, num_k: int, iou_thresholds, recall_thresholds, max_dets):
    """Precision ``[T, R, K, A, M]`` and recall ``[T, K, A, M]`` from per-detection match results.

    Args:
      res: from :func:`jaxvision.metrics.coco.match_detections`: ``img``, ``cat``, ``rank``, ``score`` [N];
        ``matched``, ``ignored`` [A, T, N] bool; ``gt_ignore`` [A, Ng] bool; ``gt_cat`` [Ng] int.
      num_k: number of categories K.
      iou_thresholds: ``[T]``. recall_thresholds: ``[R]``. max_dets: sorted ``[M]`` ints.
    """
    num_a, num_t, n = res["matched"].shape
    num_m, num_r = len(max_dets), len(recall_thresholds)
    gt_ign, gt_cat = res["gt_ignore"], res["gt_cat"]
    npig = np.stack([np.bincount(gt_cat[~gt_ign[a]], minlength=num_k) for a in range(num_a)])  # [A, K]
    order = np.lexsort((res["rank"], res["img"], -res["score"], res["cat"]))
    cat = res["cat"][order]
    rank = res["rank"][order]
    valid = ~res["ignored"][:, :, order]  # [A, T, N]
    matched = res["matched"][:, :, order]
    keep = rank[None, :] < np.asarray(max_dets)[:, None]  # [M, N]
    tp = (matched & valid)[None] & keep[:, None, None]  # [M, A, T, N]
    fp = (~matched & valid)[None] & keep[:, None, None]
    rows = num_m * num_a * num_t
    tp, fp = tp.reshape(rows, n), fp.reshape(rows, n)
    seg_start = np.searchsorted(cat, np.arange(num_k))  # first position of each category
    fp_cum = np.cumsum(fp, axis=1, dtype=np.int64)  # [rows, N]
    fp_pad = np.concatenate([np.zeros((rows, 1), np.int64), fp_cum], axis=1)
    fp_off = fp_pad[:, seg_start]  # [rows, K] FPs before each category's segment
    row, pos = np.nonzero(tp)
    tcat = cat[pos]
    group = row * num_k + tcat
    n_tp = np.bincount(group, minlength=rows * num_k).reshape(rows, num_k)
    g_start = np.concatenate([[0], np.cumsum(n_tp.ravel())[:-1]]).reshape(rows, num_k)
    j = (np.arange(len(pos)) - g_start.ravel()[group] + 1).astype(np.float64)
    fpb = (fp_cum[row, pos] - fp_off[row, tcat]).astype(np.float64)
    pr = j / (fpb + j + np.spacing(1))
    # suffix max within (row, category): padded per row, categories kept apart by offsets 2 * (K - 1 - k)
    row_start = np.concatenate([[0], np.cumsum(n_tp.sum(1))[:-1]])
    width = int(n_tp.sum(1).max()) if rows and len(pos) else 0
    col = np.arange(len(pos)) - row_start[row]
    offset = 2.0 * (num_k - 1 - tcat)
    env = np.full((rows, max(width, 1)), -np.inf)
    env[row, col] = pr + offset
    env = np.maximum.accumulate(env[:, ::-1], axis=1)[:, ::-1]
    env_tp = env[row, col] - offset if len(pos) else np.zeros(0)  # [num TPs] envelope at each TP
    # read the envelope at the recall thresholds
    jr = recall_rank(np.maximum(npig, 1), np.asarray(recall_thresholds, np.float64))  # [A, K, R]
    a_of_row = (np.arange(rows) // num_t) % num_a
    jr = jr[a_of_row]  # [rows, K, R]
    cnt = n_tp[:, :, None]
    which = np.where(jr == 0, 0, jr - 1)  # 0-based TP index within the group
    ok = (cnt > 0) & (jr <= cnt)
    flat = (g_start[:, :, None] + np.minimum(which, np.maximum(cnt - 1, 0)))
    q = np.where(ok, env_tp[np.where(ok, flat, 0)] if len(pos) else 0.0, 0.0)  # [rows, K, R]
    rc = n_tp / np.maximum(npig[a_of_row], 1)  # [rows, K]
    undefined = (npig[a_of_row] == 0)
    q = np.where(undefined[:, :, None], -1.0, q)
    rc = np.where(undefined, -1.0, rc)
    q = q.reshape(num_m, num_a, num_t, num_k, num_r)
    rc = rc.reshape(num_m, num_a, num_t, num_k)
    precision = np.transpose(q, (2, 4, 3, 1, 0))  # [T, R, K, A, M]
    recall = np.transpose(rc, (2, 3, 1, 0))  # [T, K, A, M]
    return np.ascontiguousarray(precision), np.ascontiguousarray(recall)
