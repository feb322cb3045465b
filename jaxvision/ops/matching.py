"""Anchor-to-ground-truth matching, fixed-size balanced sampling and hard-negative mining.

Static-shape versions of torchvision's ``det_utils.Matcher``, ``SSDMatcher``,
``BalancedPositiveNegativeSampler`` and SSD's hard-negative selection. Ground truth is padded to a fixed
``G`` with a ``gt_valid`` mask; results are fixed-size index arrays or masks, so everything runs under jit
and vmaps over a leading batch axis (one image per row; split the PRNG key per image for the sampler).

Match codes (int32, one per anchor): ``g >= 0`` the matched ground-truth index, ``BELOW_LOW_THRESHOLD = -1``
(background), ``BETWEEN_THRESHOLDS = -2`` (ignored).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision._checks import check_positive, check_rank

BELOW_LOW_THRESHOLD = -1
BETWEEN_THRESHOLDS = -2


def _check_iou(iou, gt_valid):
    check_rank("iou", iou, 2, "[G, A] (ground truth x anchors)")
    iou = jnp.asarray(iou)
    g = iou.shape[0]
    if gt_valid is None:
        return iou, jnp.ones((g,), bool)
    check_rank("gt_valid", gt_valid, 1, "[G] bool")
    if tuple(jnp.shape(gt_valid)) != (g,):
        raise ValueError(f"gt_valid: expected shape ({g},) to match iou [G, A] = {tuple(iou.shape)}, "
                         f"got {tuple(jnp.shape(gt_valid))}")
    return iou, jnp.asarray(gt_valid).astype(bool)


def _is_concrete(x) -> bool:
    return isinstance(x, (int, float, np.number))


def _threshold(value, iou):
    """A threshold as a (possibly traced) scalar in the quality dtype, so configs share one compiled program."""
    dtype = iou.dtype if jnp.issubdtype(iou.dtype, jnp.floating) else jnp.float32
    return jnp.asarray(value, dtype)


def _masked_quality(iou, gt_valid):
    """IoU with padded ground-truth rows at -inf so they never win a max."""
    return jnp.where(gt_valid[:, None], iou, -jnp.inf)  # [G, A]


def match_boxes(iou, gt_valid=None, high: float = 0.7, low: float = 0.3, allow_low_quality_matches: bool = False):
    """Assign each anchor its best ground truth (torchvision ``Matcher`` semantics).

    Each anchor takes the ground truth of highest quality (first index on ties). If that quality is below
    ``low`` the anchor gets -1; if in ``[low, high)`` it gets -2. With ``allow_low_quality_matches``, every
    anchor that achieves some valid ground truth's maximum quality (all ties included) keeps its best match
    even below ``high`` -- exactly torchvision's ``set_low_quality_matches_``. As there, a valid ground truth
    that overlaps no anchor has maximum 0, which every anchor ties: all anchors then keep their best match
    (index 0 for anchors overlapping nothing), so give the matcher only ground truth that lies in the image.

    With no valid ground truth every anchor is -1 (torchvision raises instead; its detectors then treat every
    anchor as background, which is what -1 means).

    Args:
      iou: ``[G, A]`` float quality matrix (IoU), ground truth x anchors.
      gt_valid: optional ``[G]`` bool mask of real (non-padding) ground truth; default all valid.
      high: quality >= high is a match (Python float or traced scalar).
      low: quality < low is background; requires ``low <= high``.
      allow_low_quality_matches: also keep each ground truth's best anchors (see above).

    Returns:
      int32 ``[A]`` match codes: ground-truth index, -1 (below low) or -2 (between thresholds).
    """
    iou, gt_valid = _check_iou(iou, gt_valid)
    if _is_concrete(low) and _is_concrete(high) and not low <= high:
        raise ValueError(f"low, high: expected low <= high, got low={low}, high={high}")
    return _match(iou, gt_valid, _threshold(high, iou), _threshold(low, iou), bool(allow_low_quality_matches))


@functools.partial(jax.jit, static_argnums=4)
def _match(iou, gt_valid, high, low, allow_low_quality_matches):
    num_anchors = iou.shape[1]
    if iou.shape[0] == 0 or num_anchors == 0:
        return jnp.full((num_anchors,), BELOW_LOW_THRESHOLD, jnp.int32)
    q = _masked_quality(iou, gt_valid)  # [G, A]
    all_matches = jnp.argmax(q, axis=0).astype(jnp.int32)  # [A], first max on ties
    # the max read back through argmax: XLA CPU's float max-reduce over a major axis is ~50x slower
    matched_vals = jnp.take_along_axis(q, all_matches[None, :], axis=0)[0]  # [A]
    matches = jnp.where(matched_vals < low, BELOW_LOW_THRESHOLD,
                        jnp.where(matched_vals < high, BETWEEN_THRESHOLDS, all_matches)).astype(jnp.int32)
    if allow_low_quality_matches:
        best_per_gt = jnp.where(gt_valid, jnp.max(iou, axis=1), jnp.nan)  # [G]; NaN equals nothing
        is_best = iou == best_per_gt[:, None]  # [G, A], ties included
        matches = jnp.where(jnp.any(is_best, axis=0), all_matches, matches)
    return matches


def ssd_match(iou, gt_valid=None, threshold: float = 0.5):
    """SSD matching (torchvision ``SSDMatcher``): threshold matching plus each ground truth's best anchor forced.

    First :func:`match_boxes` with ``high = low = threshold`` (so codes are g or -1). Then for every valid
    ground truth g, its best anchor (first index on ties) is set to g; when two ground truths share a best
    anchor the later one (higher index) wins, as with torchvision's sequential index assignment.

    Args:
      iou: ``[G, A]`` float quality matrix.
      gt_valid: optional ``[G]`` bool mask of real ground truth.
      threshold: IoU threshold for a positive match (Python float or traced scalar).

    Returns:
      int32 ``[A]``: ground-truth index or -1.
    """
    iou, gt_valid = _check_iou(iou, gt_valid)
    return _ssd_match(iou, gt_valid, _threshold(threshold, iou))


@jax.jit
def _ssd_match(iou, gt_valid, threshold):
    matches = _match(iou, gt_valid, threshold, threshold, False)
    g, a = iou.shape
    if g == 0 or a == 0:
        return matches
    # First best anchor per ground truth as a float min over indices (exact below 2^24 anchors): XLA CPU's
    # argmax along a long minor axis is ~5-20x slower. A NaN row gets index A, which the scatter drops.
    best = jnp.max(iou, axis=1, keepdims=True)  # [G, 1]
    idx = jnp.where(iou == best, jnp.arange(a, dtype=jnp.float32), jnp.float32(a))  # [G, A]
    best_anchor = jnp.min(idx, axis=1).astype(jnp.int32)  # [G]
    gt_ids = jnp.where(gt_valid, jnp.arange(g, dtype=jnp.int32), -1)  # [G]
    forced = jnp.full((a,), -1, jnp.int32).at[best_anchor].max(gt_ids, mode="drop")  # [A], highest g wins
    return jnp.where(forced >= 0, forced, matches)


def balanced_sample(key, matches, num_samples: int, positive_fraction: float):
    """Random fixed-size subset of positives and negatives (torchvision ``BalancedPositiveNegativeSampler``).

    Positives are anchors with ``matches >= 0``, negatives those with ``matches == -1``; other codes (-2)
    are never sampled. ``num_pos = min(#positives, int(num_samples * positive_fraction))`` positives and
    ``num_neg = min(#negatives, num_samples - num_pos)`` negatives are drawn uniformly without replacement.
    Selection ranks 30-bit random keys with ``lax.top_k`` (k <= num_samples), so it is static-shape and
    O(A log num_samples).

    Args:
      key: a ``jax.random`` PRNG key (one per image when vmapped).
      matches: int ``[A]`` match codes from :func:`match_boxes` / :func:`ssd_match`.
      num_samples: total samples per image (static int > 0), e.g. 256 (RPN) or 512 (RoI heads).
      positive_fraction: static float in [0, 1], e.g. 0.5 (RPN) or 0.25 (RoI heads).

    Returns:
      ``(pos_mask, neg_mask)``: bool ``[A]`` each, disjoint, with ``pos.sum() + neg.sum() <= num_samples``.
    """
    check_rank("matches", matches, 1, "[A] int match codes")
    if not isinstance(num_samples, (int, np.integer)) or isinstance(num_samples, bool) or num_samples <= 0:
        raise ValueError(f"num_samples: expected a static int > 0, got {num_samples!r}")
    if not 0.0 <= positive_fraction <= 1.0:
        raise ValueError(f"positive_fraction: expected a float in [0, 1], got {positive_fraction!r}")
    return _balanced_sample(key, jnp.asarray(matches), int(num_samples), float(positive_fraction))


@functools.partial(jax.jit, static_argnums=(2, 3))
def _balanced_sample(key, matches, num_samples, positive_fraction):
    a = matches.shape[0]
    positive = matches >= 0
    negative = matches == BELOW_LOW_THRESHOLD
    if a == 0:
        return positive, negative
    k_pos_key, k_neg_key = jax.random.split(key)
    max_pos = int(num_samples * positive_fraction)

    def pick(k, candidates, k_max, limit):
        """Mask of ``min(#candidates, limit)`` random candidates; ``k_max`` is a static bound on ``limit``."""
        k_max = min(k_max, a)
        if k_max == 0:
            return jnp.zeros((a,), bool)
        # 30 random bits as a positive normal float32 (same order as the integers): XLA's CPU top_k is fast
        # for float32 only. Non-candidates get -1.
        bits = (jax.random.bits(k, (a,), jnp.uint32) >> 2) + jnp.uint32(0x00800000)
        r = jnp.where(candidates, jax.lax.bitcast_convert_type(bits, jnp.float32), -1.0)  # [A]
        vals, idx = jax.lax.top_k(r, k_max)  # [k_max], candidates first (random order)
        keep = (vals >= 0) & (jnp.arange(k_max) < limit)
        return jnp.zeros((a,), bool).at[idx].set(keep)  # idx are distinct

    pos_mask = pick(k_pos_key, positive, max_pos, max_pos)
    num_pos = jnp.sum(pos_mask, dtype=jnp.int32)
    neg_mask = pick(k_neg_key, negative, num_samples, num_samples - num_pos)
    return pos_mask, neg_mask


def hard_negative_mask(neg_loss, pos_mask, ratio: float = 3, valid=None):
    """Hard-negative mining (SSD, k:1): keep the ``ratio * num_pos`` highest-loss negatives.

    torchvision ssd.py semantics: every non-positive anchor is ranked by its loss (descending; ties by lower
    index, torch's sort leaves ties unspecified) and those of rank < ``ratio * num_pos`` are kept, where
    ``num_pos = pos_mask.sum()`` per image. Unlike torchvision, when there are fewer negatives than that, the
    result never contains positives (torchvision's mask can then include positives ranked at -inf).

    Args:
      neg_loss: float ``[A]`` per-anchor classification loss (e.g. softmax cross-entropy against background).
      pos_mask: bool ``[A]`` positives.
      ratio: negatives per positive, >= 0, Python number or traced scalar (torchvision:
        ``(1 - positive_fraction) / positive_fraction`` = 3).
      valid: optional bool ``[A]`` anchors eligible as negatives (default: all); use it to exclude padding or
        ignored anchors.

    Returns:
      bool ``[A]`` mask of the selected negatives (disjoint from ``pos_mask``).
    """
    check_rank("neg_loss", neg_loss, 1, "[A] float")
    check_rank("pos_mask", pos_mask, 1, "[A] bool")
    if jnp.shape(neg_loss) != jnp.shape(pos_mask):
        raise ValueError(f"neg_loss and pos_mask: expected equal shapes [A], got {jnp.shape(neg_loss)} and "
                         f"{jnp.shape(pos_mask)}")
    if valid is not None and jnp.shape(valid) != jnp.shape(pos_mask):
        raise ValueError(f"valid: expected shape {jnp.shape(pos_mask)} like pos_mask, got {jnp.shape(valid)}")
    if _is_concrete(ratio):
        check_positive("ratio", ratio, allow_zero=True)
    valid = jnp.ones(jnp.shape(pos_mask), bool) if valid is None else jnp.asarray(valid).astype(bool)
    pos_mask = jnp.asarray(pos_mask).astype(bool)
    return _hard_negative_mask(jnp.asarray(neg_loss), pos_mask, valid, jnp.asarray(ratio, jnp.float32))


def _sortable_bits(x):
    """Map float32 to uint32 so that unsigned order equals float order (sign-flip trick)."""
    u = jax.lax.bitcast_convert_type(x.astype(jnp.float32), jnp.uint32)
    u = jnp.where(u == jnp.uint32(0x80000000), jnp.uint32(0), u)  # -0.0 ties with +0.0, as in a sort
    return jnp.where((u >> 31) == 1, ~u, u | jnp.uint32(0x80000000))


@jax.jit
def _hard_negative_mask(neg_loss, pos_mask, valid, ratio):
    # Exact top-n selection without sorting (XLA's CPU sort is slow): a 32-step radix search finds the n-th
    # largest loss T, then everything above T plus the lowest-index ties at T are kept -- the same set as a
    # stable descending sort and ``rank < n``, in O(32 A) instead of O(A log A).
    neg_loss = jax.lax.stop_gradient(neg_loss)
    candidates = ~pos_mask & valid
    num_candidates = jnp.sum(candidates, dtype=jnp.int32)
    n = jnp.minimum(jnp.ceil(ratio * jnp.sum(pos_mask, dtype=jnp.int32)).astype(jnp.int32), num_candidates)
    u = jnp.where(candidates, _sortable_bits(neg_loss), jnp.uint32(0))  # [A]

    def bit_step(i, t):
        trial = t | (jnp.uint32(1) << (31 - i).astype(jnp.uint32))
        return jnp.where(jnp.sum(u >= trial, dtype=jnp.int32) >= n, trial, t)

    threshold = jax.lax.fori_loop(0, 32, bit_step, jnp.uint32(0))  # n-th largest key (n >= 1)
    above = candidates & (u > threshold)
    ties = candidates & (u == threshold)
    room = n - jnp.sum(above, dtype=jnp.int32)
    return (above | (ties & (jnp.cumsum(ties, dtype=jnp.int32) <= room))) & (n > 0)
