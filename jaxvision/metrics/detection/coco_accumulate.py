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


def _cum_with_zero(flags):
    """``[R, N]`` bool -> ``[R, N + 1]`` int32 running counts, column 0 = 0 (count before index i is [:, i])."""
    out = np.zeros((flags.shape[0], flags.shape[1] + 1), np.int32)
    np.cumsum(flags, axis=1, dtype=np.int32, out=out[:, 1:])
    return out


def accumulate(res: dict, num_k: int, iou_thresholds, recall_thresholds, max_dets):
    """Precision ``[T, R, K, A, M]`` and recall ``[T, K, A, M]`` from per-detection match results.

    Args:
      res: from :func:`jaxvision.metrics.detection.coco.match_detections`: ``img``, ``cat``, ``rank``, ``score`` [N],
        ``out_range`` [A, N], ``act`` [Ni], ``matched``/``ignored`` [A, T, Ni], ``gt_ignore`` [A, Ng],
        ``gt_cat`` [Ng]. Detections outside ``act`` never match: they are FP unless out of the area range.
      num_k: number of categories K.
      iou_thresholds: ``[T]``. recall_thresholds: ``[R]``. max_dets: sorted ``[M]`` ints.
    """
    num_a, num_t, _ = res["matched"].shape
    n = len(res["score"])
    num_m, num_r = len(max_dets), len(recall_thresholds)
    gt_ign, gt_cat = res["gt_ignore"], res["gt_cat"]
    npig = np.stack([np.bincount(gt_cat[~gt_ign[a]], minlength=num_k) for a in range(num_a)])  # [A, K]
    order = np.lexsort((res["rank"], res["img"], -res["score"], res["cat"]))  # pycocotools' concatenation order
    pos_of = np.empty(n, np.int64)
    pos_of[order] = np.arange(n)
    cat = res["cat"][order]
    keep = res["rank"][order][None, :] < np.asarray(max_dets)[:, None]  # [M, N]
    is_act = np.zeros(n, bool)
    is_act[res["act"]] = True
    # detections that cannot match: FP where inside the area range (counted per (m, a))
    base = keep[:, None, :] & ~res["out_range"][:, order][None] & ~is_act[order][None]  # [M, A, N]
    base_cum = _cum_with_zero(base.reshape(num_m * num_a, n))
    # detections that can match, in the same global order
    p_act = pos_of[res["act"]]
    a_ord = np.argsort(p_act)
    p_act = p_act[a_ord]
    matched, valid = res["matched"][:, :, a_ord], ~res["ignored"][:, :, a_ord]  # [A, T, Ni]
    keep_act = keep[:, p_act]  # [M, Ni]
    rows = num_m * num_a * num_t
    tp = ((matched & valid)[None] & keep_act[:, None, None]).reshape(rows, -1)
    fp = ((~matched & valid)[None] & keep_act[:, None, None]).reshape(rows, -1)
    fp_cum = _cum_with_zero(fp)
    cat_act = cat[p_act]
    start_full = np.searchsorted(cat, np.arange(num_k))
    start_act = np.searchsorted(cat_act, np.arange(num_k))
    row, i = np.nonzero(tp)
    tcat = cat_act[i]
    ma = row // num_t  # (m, a) row of base_cum
    fpb = (base_cum[ma, p_act[i]] - base_cum[ma, start_full[tcat]]
           + fp_cum[row, i + 1] - fp_cum[row, start_act[tcat]]).astype(np.float64)
    group = row * num_k + tcat
    n_tp = np.bincount(group, minlength=rows * num_k).reshape(rows, num_k)
    g_start = np.concatenate([[0], np.cumsum(n_tp.ravel())[:-1]]).reshape(rows, num_k)
    j = (np.arange(len(i)) - g_start.ravel()[group] + 1).astype(np.float64)
    pr = j / (fpb + j + np.spacing(1))
    # suffix max within (row, category): padded per row, categories kept apart by offsets 2 * (K - 1 - k)
    row_start = np.concatenate([[0], np.cumsum(n_tp.sum(1))[:-1]])
    width = int(n_tp.sum(1).max()) if rows and len(i) else 0
    width = max(width, 1)
    col = width - 1 - (np.arange(len(i)) - row_start[row])  # reversed columns: the suffix max is a prefix max
    offset = 2.0 * (num_k - 1 - tcat)
    env = np.full((rows, width), -np.inf)
    env[row, col] = pr + offset
    np.maximum.accumulate(env, axis=1, out=env)
    env_tp = env[row, col] - offset if len(i) else np.zeros(1)  # envelope at each TP
    # read the envelope at the recall thresholds
    jr = recall_rank(np.maximum(npig, 1), np.asarray(recall_thresholds, np.float64))  # [A, K, R]
    a_of_row = (np.arange(rows) // num_t) % num_a
    jr = jr[a_of_row]  # [rows, K, R]
    cnt = n_tp[:, :, None]
    which = np.where(jr == 0, 0, jr - 1)  # 0-based TP index within the group
    ok = (cnt > 0) & (jr <= cnt)
    flat = g_start[:, :, None] + np.minimum(which, np.maximum(cnt - 1, 0))
    q = np.where(ok, env_tp[np.where(ok, flat, 0)], 0.0)  # [rows, K, R]
    rc = n_tp / np.maximum(npig[a_of_row], 1)  # [rows, K]
    undefined = npig[a_of_row] == 0
    q = np.where(undefined[:, :, None], -1.0, q)
    rc = np.where(undefined, -1.0, rc)
    q = q.reshape(num_m, num_a, num_t, num_k, num_r)
    rc = rc.reshape(num_m, num_a, num_t, num_k)
    precision = np.transpose(q, (2, 4, 3, 1, 0))  # [T, R, K, A, M]
    recall = np.transpose(rc, (2, 3, 1, 0))  # [T, K, A, M]
    return np.ascontiguousarray(precision), np.ascontiguousarray(recall)
