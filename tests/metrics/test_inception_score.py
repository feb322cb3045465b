"""Inception Score vs a NumPy transcription of the original (OpenAI) formula."""
import numpy as np
import pytest

from jaxvision.metrics.generative.isc import inception_score


def _reference_is(logits, splits):
    """The original: softmax, equal chunks, exp(mean KL(p(y|x) || p(y))), mean/std over chunks, float64."""
    x = logits.astype(np.float64)
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    m = len(p) // splits
    scores = []
    for k in range(splits):
        part = p[k * m : (k + 1) * m]
        kl = part * (np.log(part) - np.log(part.mean(0, keepdims=True)))
        scores.append(np.exp(kl.sum(1).mean()))
    return np.mean(scores), np.std(scores)


@pytest.mark.parametrize("n,k,splits", [(100, 1008, 10), (57, 10, 5), (20, 3, 1)])
def test_matches_reference(n, k, splits):
    logits = np.random.default_rng(n).standard_normal((n, k)).astype(np.float32) * 3
    got = inception_score(logits, splits)
    mean, std = got
    want = _reference_is(logits, splits)
    np.testing.assert_allclose((mean, std), want, rtol=1e-12, atol=1e-14)
    assert got.provenance["num_samples"] == (n // splits) * splits and got.provenance["precision"] == "float64"


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
