"""Matching, balanced sampling and hard negatives: torchvision golden fixtures, NumPy references, padding,
jit/vmap and bad inputs."""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jaxvision.ops import balanced_sample, box_iou, hard_negative_mask, match_boxes, ssd_match

FIX = pathlib.Path(__file__).parent / "fixtures"
MATCHERS = {"hi": (0.7, 0.3, False), "lowq": (0.7, 0.3, True), "roi": (0.5, 0.5, False), "half": (0.5, 0.4, True)}
NUM_MATRICES = 7


@pytest.fixture(scope="module")
def fx():
    return np.load(FIX / "matching_matcher.npz")


@pytest.fixture(scope="module")
def fl():
    return np.load(FIX / "matching_losses.npz")


# ---------------------------------------------------------------- NumPy references (loops, no vectorization)

def ref_match(iou, high, low, allow_low):
    g, a = iou.shape
    matches = np.empty(a, np.int64)
    best = np.empty(a, np.int64)
    for j in range(a):
        best[j] = int(np.argmax(iou[:, j]))
        v = iou[best[j], j]
        matches[j] = -1 if v < low else (-2 if v < high else best[j])
    if allow_low:
        for i in range(g):
            top = iou[i].max()
            for j in range(a):
                if iou[i, j] == top:
                    matches[j] = best[j]
    return matches


def ref_ssd_match(iou, thr):
    matches = ref_match(iou, thr, thr, False)
    for i in range(iou.shape[0]):
        matches[int(np.argmax(iou[i]))] = i
    return matches


def ref_hard_negatives(loss, pos, ratio, valid=None):
    k = ratio * pos.sum()
    cand = ~pos if valid is None else ~pos & valid
    negs = [j for j in np.argsort(-np.where(cand, loss, -np.inf), kind="stable") if cand[j]]
    out = np.zeros_like(pos)
    out[negs[: int(np.ceil(k))]] = True
    return out


PAD_G, PAD_A = 10, 128  # every fixture matrix fits: one compiled program per matcher config


def _pad(iou, seed=0):
    """Embed ``iou`` in a [PAD_G, PAD_A] matrix: padding rows (garbage quality >= 0.8, gt_valid False) at random
    positions, padding anchor columns at quality -1. Returns (padded, valid, real row positions)."""
    rng = np.random.default_rng(seed)
    g, a = iou.shape
    real_pos = np.sort(rng.choice(PAD_G, g, replace=False))
    padded = rng.uniform(0.8, 1.0, (PAD_G, PAD_A)).astype(np.float32)
    padded[:, a:] = -1.0
    padded[real_pos, :a] = iou
    valid = np.zeros(PAD_G, bool)
    valid[real_pos] = True
    return padded, valid, real_pos


# ---------------------------------------------------------------- Matcher / SSDMatcher

def test_match_boxes_matches_torchvision_and_reference(fx):
    # unpadded, with every config, on the realistic matrix (IoU of random boxes) and the tie-heavy one
    for i in (0, 4):
        iou = fx[f"iou{i}"]
        for tag, (high, low, allow) in MATCHERS.items():
            got = np.asarray(match_boxes(iou, None, high, low, allow))
            np.testing.assert_array_equal(got, fx[f"m{i}_{tag}"], err_msg=f"{i} {tag}")
        np.testing.assert_array_equal(np.asarray(ssd_match(iou, None, 0.5)), fx[f"m{i}_ssd"])
    # the NumPy reference agrees with torchvision everywhere (ties, shared best anchors, a gt overlapping nothing)
    for i in range(NUM_MATRICES):
        iou = fx[f"iou{i}"]
        for tag, (high, low, allow) in MATCHERS.items():
            np.testing.assert_array_equal(ref_match(iou, high, low, allow), fx[f"m{i}_{tag}"], err_msg=f"{i} {tag}")
        np.testing.assert_array_equal(ref_ssd_match(iou, 0.5), fx[f"m{i}_ssd"])


def test_padded_matching_matches_torchvision(fx):
    for i in range(NUM_MATRICES):
        iou = fx[f"iou{i}"]
        a = iou.shape[1]
        padded, valid, real = _pad(iou, seed=i)
        remap = np.concatenate([real, [-2, -1]])  # real index -> padded index; remap[-1] = -1, remap[-2] = -2
        for tag, (high, low, allow) in MATCHERS.items():
            got = np.asarray(match_boxes(padded, valid, high, low, allow))
            np.testing.assert_array_equal(got[:a], remap[fx[f"m{i}_{tag}"]], err_msg=f"{i} {tag}")
            np.testing.assert_array_equal(got[a:], -1)
        got = np.asarray(ssd_match(padded, valid))
        np.testing.assert_array_equal(got[:a], remap[fx[f"m{i}_ssd"]], err_msg=f"{i} ssd")
        np.testing.assert_array_equal(got[a:], -1)


def test_low_quality_ties_all_kept():
    iou = np.asarray([[0.4, 0.1, 0.4, 0.0],
                      [0.0, 0.6, 0.0, 0.6]], np.float32)
    # gt 0's max 0.4 is tied by anchors 0 and 2; gt 1's max 0.6 by anchors 1 and 3.
    np.testing.assert_array_equal(np.asarray(match_boxes(iou, None, 0.7, 0.3, True)), [0, 1, 0, 1])
    np.testing.assert_array_equal(np.asarray(match_boxes(iou, None, 0.7, 0.3, False)), [-2, -2, -2, -2])
    np.testing.assert_array_equal(np.asarray(match_boxes(iou, None, 0.7, 0.5, False)), [-1, -2, -1, -2])


def test_traced_thresholds_and_ratio(fx):
    iou = fx["iou4"]
    f = jax.jit(lambda q, hi, lo, t: (match_boxes(q, None, hi, lo, True), ssd_match(q, None, t)))
    m, s = f(iou, 0.5, 0.4, 0.5)
    np.testing.assert_array_equal(np.asarray(m), fx["m4_half"])
    np.testing.assert_array_equal(np.asarray(s), fx["m4_ssd"])
    loss = np.linspace(0, 1, 10, dtype=np.float32)
    pos = np.arange(10) == 0
    g = jax.jit(hard_negative_mask)
    assert [int(np.asarray(g(loss, pos, r)).sum()) for r in (0, 1, 2.5, 100)] == [0, 1, 3, 9]


def test_bfloat16_quality(fx):
    iou = fx["iou0"]  # multiples of 0.1: compare against float32 on the bf16-rounded values
    q16 = jnp.asarray(iou, jnp.bfloat16)
    q32 = np.asarray(q16, np.float32)
    for high, low, allow in ((0.75, 0.25, True), (0.5, 0.5, False)):  # thresholds exact in bf16
        np.testing.assert_array_equal(np.asarray(match_boxes(q16, None, high, low, allow)),
                                      ref_match(q32, high, low, allow))
    np.testing.assert_array_equal(np.asarray(ssd_match(q16, None, 0.5)), ref_ssd_match(q32, 0.5))
    loss16 = jnp.asarray(np.linspace(0, 2, 40), jnp.bfloat16)
    pos = np.arange(40) % 7 == 0
    np.testing.assert_array_equal(np.asarray(hard_negative_mask(loss16, pos, 1)),
                                  ref_hard_negatives(np.asarray(loss16, np.float32), pos, 1))


def test_thresholds_are_inclusive_at_high_and_low():
    iou = np.asarray([[0.7, 0.3, 0.2999, 0.6999]], np.float32)
    np.testing.assert_array_equal(np.asarray(match_boxes(iou, None, 0.7, 0.3)), [0, -2, -1, -2])


def test_no_valid_ground_truth_is_all_background():
    iou = np.random.default_rng(0).uniform(0, 1, (4, 10)).astype(np.float32)
    for allow in (False, True):
        np.testing.assert_array_equal(np.asarray(match_boxes(iou, np.zeros(4, bool), 0.7, 0.3, allow)), -1)
    np.testing.assert_array_equal(np.asarray(ssd_match(iou, np.zeros(4, bool))), -1)
    np.testing.assert_array_equal(np.asarray(match_boxes(np.zeros((0, 5), np.float32), None)), -1)
    assert np.asarray(ssd_match(np.zeros((0, 5), np.float32))).shape == (5,)
    for allow in (False, True):  # no anchors at all
        assert match_boxes(np.zeros((3, 0), np.float32), None, 0.7, 0.3, allow).shape == (0,)
    assert ssd_match(np.zeros((3, 0), np.float32)).shape == (0,)
    assert hard_negative_mask(np.zeros(0, np.float32), np.zeros(0, bool)).shape == (0,)


def test_matching_on_real_boxes_jit_vmap():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 80, (2, 6, 2))
    gt = np.concatenate([xy, xy + rng.uniform(5, 30, (2, 6, 2))], -1).astype(np.float32)
    xy = rng.uniform(0, 90, (2, 50, 2))
    anchors = np.concatenate([xy, xy + rng.uniform(5, 30, (2, 50, 2))], -1).astype(np.float32)
    valid = np.asarray([[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]], bool)

    @jax.jit
    def f(gt, anchors, valid):
        iou = box_iou(gt, anchors)
        return match_boxes(iou, valid, 0.5, 0.4, True), ssd_match(iou, valid, 0.5)

    m, s = jax.vmap(f)(gt, anchors, valid)
    assert m.dtype == jnp.int32 and s.dtype == jnp.int32
    for b in range(2):
        g = valid[b].sum()  # valid rows come first here
        iou = np.asarray(box_iou(gt[b, :g], anchors[b]))
        np.testing.assert_array_equal(np.asarray(m[b]), ref_match(iou, 0.5, 0.4, True))
        np.testing.assert_array_equal(np.asarray(s[b]), ref_ssd_match(iou, 0.5))


@settings(max_examples=30, deadline=None)
@given(q=hnp.arrays(np.int8, (4, 12), elements=st.integers(0, 5)), valid=hnp.arrays(bool, (4,)),
       thresholds=st.sampled_from([(0.7, 0.3), (0.5, 0.5), (0.6, 0.2)]), allow=st.booleans())
def test_matching_property_vs_reference(q, valid, thresholds, allow):
    iou = (q / 5).astype(np.float32)  # coarse values: ties everywhere
    high, low = thresholds
    got = np.asarray(match_boxes(iou, valid, high, low, allow))
    real = np.flatnonzero(valid)
    if real.size == 0:
        np.testing.assert_array_equal(got, -1)
        return
    remap = np.concatenate([real, [-2, -1]])
    np.testing.assert_array_equal(got, remap[ref_match(iou[real], high, low, allow)])
    s = np.asarray(ssd_match(iou, valid, high))
    np.testing.assert_array_equal(s, remap[ref_ssd_match(iou[real], high)])
    for g in real:  # each valid ground truth's first best anchor goes to it or to a later ground truth
        assert s[np.argmax(iou[g])] >= g


def test_random_matrices_against_live_torchvision():
    """Random tie-heavy quality matrices against torchvision's Matcher / SSDMatcher (skipped without torch)."""
    torch = pytest.importorskip("torch")
    from torchvision.models.detection import _utils as det_utils

    rng = np.random.default_rng(1)
    for trial in range(12):
        iou = (rng.integers(0, 8, (PAD_G - 3, 100)) / 8).astype(np.float32)  # one shape: one compile per config
        padded, valid, real = _pad(iou, seed=trial)
        remap = np.concatenate([real, [-2, -1]])
        for high, low, allow in ((0.75, 0.25, True), (0.5, 0.375, False)):
            want = det_utils.Matcher(high, low, allow)(torch.from_numpy(iou)).numpy()
            got = np.asarray(match_boxes(padded, valid, high, low, allow))[:100]
            np.testing.assert_array_equal(got, remap[want])
        want = det_utils.SSDMatcher(0.5)(torch.from_numpy(iou)).numpy()
        np.testing.assert_array_equal(np.asarray(ssd_match(padded, valid, 0.5))[:100], remap[want])


# ---------------------------------------------------------------- balanced sampler

def _codes(rng, a, p_pos=0.1, p_ignore=0.2):
    u = rng.uniform(size=a)
    return np.where(u < p_pos, rng.integers(0, 5, a), np.where(u < p_pos + p_ignore, -2, -1)).astype(np.int32)


@pytest.mark.parametrize("a, num_samples, frac", [(500, 64, 0.25), (40, 64, 0.5), (300, 32, 1.0),
                                                   (300, 32, 0.0), (1000, 256, 0.5)])
def test_balanced_sample_counts(a, num_samples, frac):
    rng = np.random.default_rng(a + num_samples)
    matches = _codes(rng, a)
    pos, neg = balanced_sample(jax.random.key(0), matches, num_samples, frac)
    pos, neg = np.asarray(pos), np.asarray(neg)
    n_pos_avail, n_neg_avail = (matches >= 0).sum(), (matches == -1).sum()
    want_pos = min(n_pos_avail, int(num_samples * frac))
    want_neg = min(n_neg_avail, num_samples - want_pos)
    assert pos.sum() == want_pos and neg.sum() == want_neg
    assert (matches[pos] >= 0).all() and (matches[neg] == -1).all()
    assert not (pos & neg).any()


def test_balanced_sample_is_uniform_and_key_driven():
    rng = np.random.default_rng(7)
    matches = _codes(rng, 60, p_pos=0.3, p_ignore=0.1)
    keys = jax.random.split(jax.random.key(1), 400)
    pos, neg = jax.jit(jax.vmap(lambda k: balanced_sample(k, matches, 16, 0.25)))(keys)
    pos, neg = np.asarray(pos), np.asarray(neg)
    assert (pos.sum(1) == 4).all() and (neg.sum(1) == 12).all()
    # every candidate is drawn with probability k / n; 400 draws keep the frequencies within a few sigma.
    for mask, cand, k in ((pos, matches >= 0, 4), (neg, matches == -1, 12)):
        p = k / cand.sum()
        freq = mask[:, cand].mean(0)
        assert np.abs(freq - p).max() < 5 * np.sqrt(p * (1 - p) / 400)
        assert mask[:, ~cand].sum() == 0
    assert not (pos[0] == pos[1]).all()  # different keys, different draws
    same = balanced_sample(keys[0], matches, 16, 0.25)
    np.testing.assert_array_equal(np.asarray(same[0]), pos[0])


def test_balanced_sample_same_key_same_draw_under_jit():
    matches = _codes(np.random.default_rng(3), 200)
    key = jax.random.PRNGKey(5)  # legacy uint32 keys work too
    eager = balanced_sample(key, matches, 32, 0.25)
    jitted = jax.jit(balanced_sample, static_argnums=(2, 3))(key, matches, 32, 0.25)
    for e, j in zip(eager, jitted):
        np.testing.assert_array_equal(np.asarray(e), np.asarray(j))


def test_balanced_sample_edge_cases():
    key = jax.random.key(0)
    none = np.full(20, -2, np.int32)
    pos, neg = balanced_sample(key, none, 8, 0.5)
    assert not np.asarray(pos).any() and not np.asarray(neg).any()
    all_pos = np.arange(20, dtype=np.int32) % 3
    pos, neg = balanced_sample(key, all_pos, 8, 0.5)
    assert np.asarray(pos).sum() == 4 and np.asarray(neg).sum() == 0  # torchvision does not refill positives
    few_pos = np.full(20, -1, np.int32)
    few_pos[:2] = 0
    pos, neg = balanced_sample(key, few_pos, 8, 0.5)
    assert np.asarray(pos).sum() == 2 and np.asarray(neg).sum() == 6  # negatives fill the gap
    pos, neg = balanced_sample(key, few_pos, np.int64(10), 0.25)  # int(10 * 0.25) = 2 positives, as torch
    assert np.asarray(pos).sum() == 2 and np.asarray(neg).sum() == 8
    pos, neg = balanced_sample(key, np.zeros(0, np.int32), 8, 0.5)
    assert pos.shape == (0,) and neg.shape == (0,)


# ---------------------------------------------------------------- hard negatives

def test_hard_negative_mask_matches_torchvision(fl):
    loss, pos, want = fl["hn_loss"], fl["hn_pos"], fl["hn_mask"]
    got = np.asarray(jax.jit(jax.vmap(hard_negative_mask))(loss, pos))
    for b in range(loss.shape[0]):
        # torchvision's mask may also contain positives (ranked -inf) when negatives run out; ours never does.
        np.testing.assert_array_equal(got[b], want[b] & ~pos[b], err_msg=f"image {b}")
        np.testing.assert_array_equal(got[b], ref_hard_negatives(loss[b], pos[b], 3))
    assert (want[3] & pos[3]).any()  # the fixture really exercises that case
    assert got[3].sum() == (~pos[3]).sum()


def test_hard_negative_mask_ratio_valid_and_ties():
    loss = np.asarray([0.5, 2.0, 2.0, 0.1, 3.0, 2.0, 0.0, 1.0], np.float32)
    pos = np.asarray([0, 0, 0, 0, 1, 0, 0, 0], bool)
    np.testing.assert_array_equal(np.asarray(hard_negative_mask(loss, pos, 2)), [0, 1, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(np.asarray(hard_negative_mask(loss, pos, 3)), [0, 1, 1, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(np.asarray(hard_negative_mask(loss, pos, 0)), 0)
    np.testing.assert_array_equal(np.asarray(hard_negative_mask(loss, pos, 1.5)), [0, 1, 1, 0, 0, 0, 0, 0])
    valid = np.asarray([1, 0, 1, 1, 1, 1, 1, 1], bool)
    np.testing.assert_array_equal(np.asarray(hard_negative_mask(loss, pos, 2, valid)), [0, 0, 1, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(np.asarray(hard_negative_mask(loss, np.zeros(8, bool), 3)), 0)  # no positives
    g = jax.grad(lambda l: jnp.sum(jnp.where(hard_negative_mask(l, pos), l, 0)))(jnp.asarray(loss))
    np.testing.assert_array_equal(np.asarray(g), [0, 1, 1, 0, 0, 1, 0, 0])


@settings(max_examples=40, deadline=None)
@given(q=hnp.arrays(np.int8, (40,), elements=st.integers(-4, 4)), pos=hnp.arrays(bool, (40,)),
       valid=hnp.arrays(bool, (40,)), ratio=st.sampled_from([0.5, 1, 3]), scale=st.sampled_from([1.0, 1e-30, 1e30]))
def test_hard_negative_property_vs_stable_sort(q, pos, valid, ratio, scale):
    # coarse values (ties everywhere), negative and tiny/huge losses, random eligibility
    loss = (q.astype(np.float32) * np.float32(scale)).astype(np.float32)
    got = np.asarray(hard_negative_mask(loss, pos, ratio, valid))
    np.testing.assert_array_equal(got, ref_hard_negatives(loss, pos, ratio, valid))


def test_hard_negative_extreme_values():
    loss = np.asarray([np.inf, -np.inf, 0.0, -0.0, 5.0, np.finfo(np.float32).max, -1e38, 1e-45], np.float32)
    pos = np.zeros(8, bool)
    pos[0] = True
    np.testing.assert_array_equal(np.asarray(hard_negative_mask(loss, pos, 3)), [0, 0, 0, 0, 1, 1, 0, 1])
    zeros = np.asarray([1.0, -0.0, 0.0, -1.0], np.float32)  # -0.0 and 0.0 tie: the lower index wins
    np.testing.assert_array_equal(np.asarray(hard_negative_mask(zeros, np.asarray([1, 0, 0, 0], bool), 1)),
                                  [0, 1, 0, 0])
    pos[:3] = True  # 3 positives -> 9 wanted, only 5 negatives: all of them, never the positives
    np.testing.assert_array_equal(np.asarray(hard_negative_mask(loss, pos, 3)), [0, 0, 0, 1, 1, 1, 1, 1])


# ---------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("call, match", [
    (lambda: match_boxes(np.zeros((3,)), None), r"iou: expected \[G, A\]"),
    (lambda: match_boxes(np.zeros((3, 4)), np.ones(2, bool)), r"gt_valid: expected shape \(3,\)"),
    (lambda: match_boxes(np.zeros((3, 4)), np.ones((3, 1), bool)), r"gt_valid: expected \[G\] bool"),
    (lambda: match_boxes(np.zeros((3, 4)), None, 0.3, 0.7), "low, high: expected low <= high"),
    (lambda: ssd_match(np.zeros((2, 3, 4)), None), r"iou: expected \[G, A\]"),
    (lambda: balanced_sample(jax.random.key(0), np.zeros((2, 3)), 8, 0.5), r"matches: expected \[A\]"),
    (lambda: balanced_sample(jax.random.key(0), np.zeros(3), 0, 0.5), "num_samples: expected a static int > 0"),
    (lambda: balanced_sample(jax.random.key(0), np.zeros(3), 8.0, 0.5), "num_samples: expected a static int > 0"),
    (lambda: balanced_sample(jax.random.key(0), np.zeros(3), 8, 1.5), r"positive_fraction: expected a float in"),
    (lambda: hard_negative_mask(np.zeros(4), np.zeros(5, bool)), "neg_loss and pos_mask: expected equal shapes"),
    (lambda: hard_negative_mask(np.zeros((2, 4)), np.zeros((2, 4), bool)), r"neg_loss: expected \[A\] float"),
    (lambda: hard_negative_mask(np.zeros(4), np.zeros(4, bool), -1), "ratio: expected values >= 0"),
    (lambda: hard_negative_mask(np.zeros(4), np.zeros(4, bool), 3, np.ones(3, bool)), r"valid: expected shape"),
])
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()
