"""Evaluation over every local device (8 simulated CPU devices, conftest) equals a one-device run; uneven counts.

The 2-process half (gathering across processes) is tests/train/test_multihost.py::test_two_processes_evaluate_like_one.
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.metrics import FeatureNetwork, compute_statistics, extract_features, feature_fn_from_flax, fid
from jaxvision.metrics.multihost import gather_from_processes, map_over_devices, pad_rows, process_block


def _rowwise(shared, batched):
    """A row-independent function of a replicated ``shared`` and two batched inputs."""
    return {"y": batched["x"] @ shared["w"] + batched["k"][:, None], "k2": batched["k"] * 2}


@pytest.mark.parametrize("n", [1, 8, 13])
def test_map_over_devices_equals_one_device(n):
    assert jax.local_device_count() == 8
    rng = np.random.default_rng(n)
    shared = {"w": rng.normal(size=(3, 5)).astype(np.float32)}
    batched = {"x": rng.normal(size=(n, 3)).astype(np.float32), "k": np.arange(n, dtype=np.int32)}
    mapped = map_over_devices(_rowwise)
    assert mapped.num_devices == 8
    got = mapped(mapped.replicate(shared), batched)
    want = jax.device_get(jax.jit(_rowwise)(shared, batched))
    assert got["y"].shape == (n, 5) and isinstance(got["y"], np.ndarray)
    np.testing.assert_allclose(got["y"], want["y"], rtol=1e-5, atol=1e-6)  # float32 dot of 1 vs 8 rows
    np.testing.assert_array_equal(got["k2"], 2 * np.arange(n))  # every row once, in order
    one = map_over_devices(_rowwise, devices=jax.local_devices()[:1])(shared, batched)
    np.testing.assert_allclose(got["y"], one["y"], rtol=1e-5, atol=1e-6)


def test_pad_rows_and_bad_input():
    padded, n = pad_rows({"a": np.arange(5), "b": np.ones((5, 2))}, 4)
    assert n == 5 and padded["a"].tolist() == [0, 1, 2, 3, 4, 4, 4, 4] and padded["b"].shape == (8, 2)
    with pytest.raises(ValueError, match=r"batched: expected arrays with the same leading.* shapes \[\(4,\), \(3,\)\]"):
        map_over_devices(_rowwise)({"w": np.zeros((3, 5))}, {"x": np.zeros((3,)), "k": np.zeros((4,))})
    with pytest.raises(ValueError, match="batched: expected at least one row, got 0"):
        pad_rows({"x": np.zeros((0, 2))}, 8)
    with pytest.raises(ValueError, match="multiple: expected >= 1, got 0"):
        pad_rows({"x": np.zeros((2, 2))}, 0)


def test_process_block_and_gather_in_one_process():
    assert process_block(13) == (slice(0, 16), 16)  # 1 process x 8 devices: padded to 16, all rows here
    assert process_block(13, num_devices=3) == (slice(0, 15), 15)
    with pytest.raises(ValueError, match="n: expected >= 1 rows, got 0"):
        process_block(0)
    tree = {"a": np.arange(6, dtype=np.int64).reshape(3, 2), "b": np.array([True, False, True])}
    got = gather_from_processes(tree)
    np.testing.assert_array_equal(got["a"], tree["a"])
    np.testing.assert_array_equal(got["b"], tree["b"])


class _TinyCNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Conv(8, (3, 3))(x))
        h = nn.Dense(16)(h.mean(axis=(1, 2)))
        return {"features": h, "logits": nn.Dense(5)(nn.relu(h))}


@functools.lru_cache(maxsize=1)
def _network():
    model = _TinyCNN()
    return feature_fn_from_flax(model.apply, jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 3))))


def _images(seed, n=37):
    return np.random.default_rng(seed).uniform(size=(n, 8, 8, 3)).astype(np.float32)


@pytest.mark.parametrize("closure_only", [False, True])
def test_features_over_devices_equal_one_device(closure_only):
    """37 images in batches of 10 (the last one 7): split over 8 devices (10 -> 16 rows, 2 per device) == the
    network called on one device; with only ``fn`` (no apply / variables) the weights are traced in."""
    net = _network()
    if closure_only:
        net = FeatureNetwork(net.fn, net.name, net.weights_sha256, net.resize, net.channels)
        assert net.apply is None
    a = _images(1)
    ref = jax.device_get(net.fn(jnp.asarray(a)))  # one device, one call
    got = extract_features(a, net, batch_size=10)
    assert got["features"].shape == (37, 16) and got["logits"].shape == (37, 5)
    np.testing.assert_allclose(got["features"], ref["features"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["logits"], ref["logits"], rtol=1e-5, atol=1e-6)
    mu, sigma, count = compute_statistics(a, net, batch_size=10)
    feats = ref["features"].astype(np.float64)
    assert count == 37
    np.testing.assert_allclose(mu, feats.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(sigma, np.cov(feats, rowvar=False), rtol=1e-4, atol=1e-8)


def test_fid_independent_of_batch_split():
    """FID over 8 devices with batch sizes that pad differently (7: 7 -> 8 rows, 10: 10 -> 16) is the same."""
    net = _network()
    a, b = _images(2), np.clip(_images(2) * 0.5 + 0.4 * _images(3), 0, 1)
    values = [float(fid(a, b, network=net, batch_size=bs)) for bs in (7, 10)]
    assert values[0] > 1e-3
    np.testing.assert_allclose(values, values[0], rtol=1e-6)
