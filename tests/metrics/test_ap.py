"""precision_recall_curve and average_precision ('voc07', 'voc', 'coco')."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.metrics import average_precision, precision_recall_curve


def _coco_reference(rc, pr):
    """COCOeval.accumulate's 101-point precision for one curve."""
    pr = list(pr)
    for i in range(len(pr) - 1, 0, -1):
        if pr[i] > pr[i - 1]:
            pr[i - 1] = pr[i]
    q = np.zeros(101)
    inds = np.searchsorted(rc, np.linspace(0, 1, 101), side="left")
    for ri, pi in enumerate(inds):
        if pi >= len(pr):
            break
        q[ri] = pr[pi]
    return q.mean()


def test_precision_recall_curve_stable_ranking_and_padding():
    scores = np.array([0.5, 0.9, 0.5, 0.1, 0.7])
    is_tp = np.array([True, False, False, True, True])
    valid = np.array([True, True, True, False, True])
    prec, rec, s = precision_recall_curve(scores, is_tp, 4, valid)
    # ranked: 0.9 (fp), 0.7 (tp), 0.5 idx0 (tp), 0.5 idx2 (fp), padding
    np.testing.assert_allclose(s[:4], [0.9, 0.7, 0.5, 0.5])
    np.testing.assert_allclose(rec, [0, 0.25, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(prec, [0, 0.5, 2 / 3, 0.5, 0.5])
    jitted = jax.jit(precision_recall_curve)(scores, is_tp, 4, valid)
    np.testing.assert_allclose(jitted[0], prec, rtol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_coco_method_matches_accumulate(seed):
    rng = np.random.default_rng(seed)
    tp = rng.random(40) < 0.4
    npig = int(tp.sum()) + int(rng.integers(0, 5))
    t, f = np.cumsum(tp).astype(float), np.cumsum(~tp).astype(float)
    rc, pr = t / npig, t / (f + t + np.spacing(1))
    assert float(average_precision(rc, pr, "coco")) == pytest.approx(_coco_reference(rc, pr), abs=1e-12)


def test_known_values_and_batching():
    rec = np.array([0.5, 0.5, 1.0])
    prec = np.array([1.0, 0.5, 2 / 3])
    assert float(average_precision(rec, prec, "voc")) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert float(average_precision(rec, prec, "voc07")) == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)
    batched = average_precision(jnp.stack([rec, rec]), jnp.stack([prec, prec]), "coco")
    assert batched.shape == (2,)
    assert float(batched[0]) == pytest.approx(_coco_reference(rec, prec), abs=1e-6)
    with pytest.raises(ValueError, match="method"):
        average_precision(rec, prec, "auc")
    with pytest.raises(ValueError, match="recall and precision"):
        average_precision(rec, prec[:2])
