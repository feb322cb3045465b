"""fid() end to end with a tiny random Flax CNN as the feature network (the digits-classifier route),
folders of PNGs, saved stats, the CLI, provenance and bad input."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxvision.metrics import fid, frechet_distance, inception_score, kernel_inception_distance
from jaxvision.metrics.generative.feature_networks import feature_fn_from_flax
from jaxvision.metrics.generative.fid_pipeline import compute_statistics, extract_features, main
from jaxvision.metrics.generative.stats import load_stats, save_stats


class TinyCNN(nn.Module):
    """Stands in for a domain classifier returning features and logits."""

    tuple_output: bool = False

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Conv(4, (3, 3), strides=(2, 2))(x))
        x = nn.BatchNorm(use_running_average=not train)(x)
        feats = jnp.mean(x, axis=(1, 2))  # [N, 4]
        feats = jnp.concatenate([feats, nn.Dense(4)(feats)], -1)  # [N, 8]
        logits = nn.Dense(10)(feats)
        return (feats, logits) if self.tuple_output else {"features": feats, "logits": logits}


def _net(channels=3, tuple_output=False):
    model = TinyCNN(tuple_output)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, channels)))
    return feature_fn_from_flax(model.apply, variables, apply_kwargs={"train": False}, channels=channels,
                                name="tiny-cnn"), model, variables


def _images(n, seed, channels=3, shift=0.0):
    rng = np.random.default_rng(seed)
    return np.clip(rng.random((n, 16, 16, channels)) * 0.8 + shift, 0, 1).astype(np.float32)


def test_adapter_outputs_and_input_range():
    net, model, variables = _net()
    x = _images(5, 0)
    out = net(x)
    ref = model.apply(variables, x)
    np.testing.assert_allclose(out["features"], ref["features"], rtol=1e-6)
    np.testing.assert_allclose(out["logits"], ref["logits"], rtol=1e-5, atol=1e-7)
    tnet, _, _ = _net(tuple_output=True)
    np.testing.assert_allclose(tnet(x)["features"], ref["features"], rtol=1e-6)
    gan = feature_fn_from_flax(model.apply, variables, input_range=(-1.0, 1.0))
    np.testing.assert_allclose(gan(x)["logits"], model.apply(variables, x * 2 - 1)["logits"], rtol=1e-5, atol=1e-6)
    assert len(net.weights_sha256) == 64 and net.weights_sha256 == _net()[0].weights_sha256
    with pytest.raises(ValueError, match="no 'feats'"):
        feature_fn_from_flax(model.apply, variables, features_key="feats")(x)


def test_fid_from_arrays_equals_numpy_pipeline():
    net, _, _ = _net()
    a, b = _images(23, 1), _images(17, 2, shift=0.2)
    with pytest.warns(RuntimeWarning, match="only 5 samples for 8-dimensional"):
        warnings_probe = fid(a, b[:5], network=net, batch_size=8)
    assert np.isfinite(warnings_probe.value)
    res = fid(a, b, network=net, batch_size=8, quantize=False)  # the float images themselves
    fa, fb = (np.asarray(net(x)["features"], np.float64) for x in (a, b))
    want = float(frechet_distance(fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False), x64=True))
    np.testing.assert_allclose(res.value, want, rtol=1e-5)
    assert res.num_samples == (23, 17)
    p = res.provenance
    assert p["feature_network"] == "tiny-cnn" and p["weights_sha256"] == net.weights_sha256
    assert p["feature_dim"] == 8 and p["precision"] == "float64" and "resize" in p
    # IS and KID from the same network's outputs
    feats = extract_features(b, net, batch_size=8)
    assert feats["features"].shape == (17, 8) and feats["logits"].shape == (17, 10)
    is_mean, _ = inception_score(feats["logits"], splits=2)
    assert 1.0 <= is_mean <= 10.0
    assert np.isfinite(kernel_inception_distance(fa, fb, subsets=3, subset_size=10).mean)


def test_folders_and_stats_files(tmp_path):
    net, _, _ = _net()
    a = (_images(12, 3) * 255).round().astype(np.uint8)
    d = tmp_path / "imgs"
    d.mkdir()
    for i, im in enumerate(a):
        Image.fromarray(im).save(d / f"{i:03d}.png")
    (d / "notes.txt").write_text("ignored")
    b = _images(15, 4, shift=0.1)
    from_folder = fid(str(d), b, network=net, batch_size=5)
    from_array = fid(a.astype(np.float32) / 255, b, network=net, batch_size=5)
    np.testing.assert_allclose(from_folder.value, from_array.value, rtol=1e-6)
    assert from_folder.provenance["a"]["source"].startswith("folder")
    mu, sigma, count = compute_statistics(str(d), net, batch_size=5)
    save_stats(tmp_path / "a.npz", mu, sigma, count=count, **net.provenance())
    from_stats = fid(str(tmp_path / "a.npz"), b, network=net, batch_size=5)
    np.testing.assert_allclose(from_stats.value, from_array.value, rtol=1e-9)
    assert from_stats.provenance["a"]["weights_sha256"] == net.weights_sha256
    assert load_stats(tmp_path / "a.npz")[0].shape == (8,)


def test_cli_with_stats_and_missing_weights(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(0)
    for name, shift in (("x.npz", 0.0), ("y.npz", 1.0)):
        f = rng.standard_normal((50, 4)) + shift
        save_stats(tmp_path / name, f.mean(0), np.cov(f, rowvar=False))
    assert main([str(tmp_path / "x.npz"), str(tmp_path / "y.npz")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("FID: ")
    x, y = load_stats(tmp_path / "x.npz"), load_stats(tmp_path / "y.npz")
    want = float(frechet_distance(x[0], x[1], y[0], y[1], x64=True))
    np.testing.assert_allclose(float(out.split()[1]), want, rtol=1e-9)
    # a folder side needs the Inception weights: missing -> exit 2 and a message saying where to get them
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("JAXVISION_FID_WEIGHTS", raising=False)
    monkeypatch.delenv("TORCH_HOME", raising=False)
    (tmp_path / "imgs").mkdir()
    assert main([str(tmp_path / "imgs"), str(tmp_path / "y.npz")]) == 2
    err = capsys.readouterr().err
    assert "github.com/mseitzer/pytorch-fid" in err and "never downloads" in err


def test_bad_input():
    net, _, _ = _net()
    a = _images(10, 5)
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        fid(a * 2 - 1, a, network=net)
    with pytest.raises(ValueError, match="expected 3 channels"):
        fid(a[..., :1], a, network=net)
    with pytest.raises(ValueError, match="expected the same feature dim"):
        fid((np.zeros(3), np.eye(3)), (np.zeros(4), np.eye(4)))
    with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
        fid(a[0], a, network=net)
    with pytest.raises(ValueError, match="at least 2 images"):
        fid(a[:1], a, network=net)
    with pytest.raises(ValueError, match="does not exist"):
        fid("missing.npz", a, network=net)
