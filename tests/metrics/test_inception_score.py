"""Inception Score vs a NumPy transcription of the original (OpenAI improved-gan) formula."""
import numpy as np
import pytest

from jaxvision.metrics.generative.isc import inception_score


def _reference_is(logits, splits):
    """The original, transcribed line by line from improved-gan's ``inception_score/model.py``
    (``get_inception_score``'s split loop), with ``preds`` the softmax of the logits, here in float64. Every
    sample lands in exactly one chunk."""
    x = logits.astype(np.float64)
    preds = np.exp(x - x.max(1, keepdims=True))
    preds /= preds.sum(1, keepdims=True)
    scores = []
    for i in range(splits):
        part = preds[(i * preds.shape[0] // splits):((i + 1) * preds.shape[0] // splits), :]
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        kl = np.mean(np.sum(kl, 1))
        scores.append(np.exp(kl))
    return np.mean(scores), np.std(scores)


@pytest.mark.parametrize("n,k,splits", [(100, 1008, 10), (57, 10, 10), (57, 10, 5), (20, 3, 1), (23, 4, 23)])
def test_matches_reference(n, k, splits):
    logits = np.random.default_rng(n).standard_normal((n, k)).astype(np.float32) * 3
    got = inception_score(logits, splits)
    mean, std = got
    want = _reference_is(logits, splits)
    np.testing.assert_allclose((mean, std), want, rtol=1e-12, atol=1e-14)
    assert got.provenance["num_samples"] == n and got.provenance["precision"] == "float64"


def test_every_sample_counts():
    """N = 57, splits = 10: the 7 samples after 10 * (57 // 10) are in the last chunks, not dropped."""
    logits = np.random.default_rng(0).standard_normal((57, 10)) * 3
    changed = logits.copy()
    changed[-1] = 50.0 * np.eye(10)[0]  # the last sample only
    assert inception_score(changed, 10).mean != pytest.approx(inception_score(logits, 10).mean, rel=1e-6)


def test_extremes():
    k = 10
    confident_diverse = np.eye(k)[np.arange(100) % k] * 100.0  # each sample sure, classes uniform
    assert inception_score(confident_diverse, 1).mean == pytest.approx(k, rel=1e-9)
    same_class = np.tile(np.eye(k)[0] * 100.0, (100, 1))
    assert inception_score(same_class, 2).mean == pytest.approx(1.0, abs=1e-9)


def test_bad_input():
    with pytest.raises(ValueError, match="logits"):
        inception_score(np.zeros(10))
    with pytest.raises(ValueError, match="at least splits=10"):
        inception_score(np.zeros((5, 3)), 10)
