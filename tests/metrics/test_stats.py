"""Streaming statistics: exact vs NumPy, stable with large means, merged across devices, npz round trip."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.metrics.generative.stats import (
    finalize_stats,
    init_stats,
    load_stats,
    merge_across_devices,
    merge_stats,
    save_stats,
    stats_from_features,
    update_stats,
)


def test_streaming_with_mask_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((103, 6)) * 3 + 5
    with jax.enable_x64(True):
        s = init_stats(6)
        step = jax.jit(update_stats)
        for i in range(0, 103, 16):  # last batch padded to 16 rows with a mask
            b = x[i : i + 16]
            mask = np.arange(16) < len(b)
            b = np.pad(b, ((0, 16 - len(b)), (0, 0)), constant_values=1e6)
            s = step(s, b, mask)
        mu, sigma = finalize_stats(s)
        assert int(s.count) == 103
        np.testing.assert_allclose(mu, x.mean(0), rtol=1e-12)
        np.testing.assert_allclose(sigma, np.cov(x, rowvar=False), rtol=1e-10, atol=1e-12)


def test_float32_stable_with_large_mean():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((4000, 4)) + 1e4).astype(np.float32)  # mean >> spread
    mu, sigma = finalize_stats(stats_from_features(x, batch_size=100))
    want = np.cov(x.astype(np.float64), rowvar=False)
    assert sigma.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(sigma), want, atol=2e-3)
    naive = (x.T @ x / len(x) - np.outer(x.mean(0), x.mean(0))) * len(x) / (len(x) - 1)  # float32 raw moments
    assert np.abs(naive - want).max() > 100 * np.abs(np.asarray(sigma) - want).max()


def test_merge_is_order_independent():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((10, 3)), rng.standard_normal((25, 3)) + 2
    with jax.enable_x64(True):
        sa, sb = stats_from_features(a), stats_from_features(b)
        m1, m2 = finalize_stats(merge_stats(sa, sb)), finalize_stats(merge_stats(sb, sa))
        full = np.concatenate([a, b])
        for mu, sigma in (m1, m2):
            np.testing.assert_allclose(mu, full.mean(0), rtol=1e-12)
            np.testing.assert_allclose(sigma, np.cov(full, rowvar=False), rtol=1e-10)
        empty = merge_stats(init_stats(3), sa)
        np.testing.assert_allclose(finalize_stats(empty)[1], finalize_stats(sa)[1], rtol=1e-12)


def test_merge_across_devices_pmap():
    n_dev = jax.local_device_count()
    if n_dev < 2:
        pytest.skip("needs several (simulated) devices")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n_dev, 9, 5)) + np.arange(n_dev)[:, None, None]  # different mean per device

    @functools.partial(jax.pmap, axis_name="batch")
    def per_device(xb):
        return merge_across_devices(update_stats(init_stats(5), xb), "batch")

    out = per_device(x)
    mu, sigma = finalize_stats(jax.tree_util.tree_map(lambda t: t[0], out))
    flat = x.reshape(-1, 5)
    np.testing.assert_allclose(mu, flat.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sigma, np.cov(flat, rowvar=False), rtol=1e-4, atol=1e-5)


def test_npz_round_trip_pytorch_fid_format(tmp_path):
    mu, sigma = np.arange(3.0), np.eye(3) * 2
    p = tmp_path / "stats.npz"
    save_stats(p, mu, sigma, count=7, feature_network="x")
    with np.load(p) as f:  # what pytorch-fid reads
        np.testing.assert_array_equal(f["mu"], mu)
        np.testing.assert_array_equal(f["sigma"], sigma)
    mu2, sigma2, extra = load_stats(p)
    np.testing.assert_array_equal(sigma2, sigma)
    assert int(extra["count"]) == 7 and str(extra["feature_network"]) == "x"
    np.savez(tmp_path / "bad.npz", mean=mu)
    with pytest.raises(ValueError, match="keys 'mu' and 'sigma'"):
        load_stats(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="sigma"):
        save_stats(tmp_path / "x.npz", mu, np.eye(4))
