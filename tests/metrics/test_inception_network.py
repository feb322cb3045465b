"""Flax FID InceptionV3 vs pytorch-fid's network, same deterministic random weights (golden fixture)."""
import importlib.util
import json
import pathlib

import numpy as np
import pytest

from jaxvision.metrics.generative.feature_networks import load_fid_inception
from jaxvision.metrics.generative.inception_weights import (
    FID_WEIGHTS_URL,
    convert_pth_to_npz,
    inception_template,
    read_state_dict,
    state_dict_to_variables,
)

FIX = pathlib.Path(__file__).parent / "fixtures"
MAX_ERROR_OF_SCALE = 5e-6  # max |ours - pytorch-fid| / max |pytorch-fid| over an output (pool3, logits)


def _fixture_module():
    spec = importlib.util.spec_from_file_location("make_inception_fixture", FIX / "make_inception_fixture.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def golden():
    mod = _fixture_module()
    with np.load(FIX / "inception_random.npz") as f:
        data = {k: f[k] for k in f.keys()}
    names_shapes = [(n, tuple(s)) for n, s in json.loads(str(data["names_shapes"]))]
    sd = mod.random_state_dict(names_shapes, int(data["seed"]))
    images = mod.random_images(int(data["seed"]))
    # The NumPy streams must regenerate exactly what the fixture script fed to torch.
    first = sd[names_shapes[0][0]].astype(np.float64).sum()
    np.testing.assert_allclose(first, data["check_first_weight_sum"], rtol=1e-12)
    np.testing.assert_allclose([im.astype(np.float64).sum() for im in images], data["check_image_sums"], rtol=1e-12)
    return sd, images, data


@pytest.fixture(scope="module")
def weights_npz(golden, tmp_path_factory):
    """The random state dict in this project's converted format (PyTorch names, NumPy arrays)."""
    path = tmp_path_factory.mktemp("w") / "random_inception.npz"
    np.savez(path, **golden[0])
    return path


def test_matches_pytorch_fid_with_random_weights(golden, weights_npz):
    _, images, data = golden
    net = load_fid_inception(weights_npz, check_hash=False)
    assert net.weights_sha256.startswith("npz:") and net.channels == 3
    pool3 = np.concatenate([np.asarray(net(im)["pool3"]) for im in images])
    logits = np.concatenate([np.asarray(net(im)["logits"]) for im in images])
    assert pool3.shape == (3, 2048) and logits.shape == (3, 1008)
    # Measured (XLA:CPU, float32, jax 0.10.2 and 0.8.0): max |ours - pytorch-fid| is 7.5e-7 (pool3) and at most
    # 1.75e-6 (logits) of the output's largest magnitude; docs/api.md states this. The bound keeps ~3x headroom for
    # other CPUs and jax versions, and no per-element relative term (near-zero entries differ most in float32).
    for got, want in ((pool3, data["pool3"]), (logits, data["logits"])):
        scale = np.abs(want).max()
        np.testing.assert_allclose(got, want, rtol=0, atol=MAX_ERROR_OF_SCALE * scale)


def test_state_dict_mismatch_is_value_error(golden):
    sd, _, _ = golden
    bad = dict(sd)
    bad["Mixed_5b.branch_pool.conv.weight"] = bad["Mixed_5b.branch_pool.conv.weight"][:16]
    with pytest.raises(ValueError, match="wrong shapes"):
        state_dict_to_variables(bad, inception_template())
    with pytest.raises(ValueError, match="unexpected entry"):
        state_dict_to_variables({"AuxLogits.fc.weight": np.zeros((3, 3))})


def test_hash_check_and_missing_file(weights_npz, tmp_path):
    with pytest.raises(ValueError, match="does not start with 6726825d"):
        load_fid_inception(weights_npz)  # random weights are not the known file
    with pytest.raises(ValueError, match="differs from the expected"):
        load_fid_inception(weights_npz, expected_sha256="0" * 64)
    with pytest.raises(FileNotFoundError) as e:
        load_fid_inception(tmp_path / "nope.pth")
    assert FID_WEIGHTS_URL in str(e.value) and "never downloads" in str(e.value)


def test_convert_pth_to_npz(golden, tmp_path):
    torch = pytest.importorskip("torch")
    sd = golden[0]
    pth = tmp_path / "random.pth"
    torch.save({k: torch.from_numpy(v) for k, v in sd.items()}, pth)
    with pytest.raises(ValueError, match="not pytorch-fid's"):
        convert_pth_to_npz(pth, tmp_path / "x.npz")
    sha = convert_pth_to_npz(pth, tmp_path / "random.npz", check_hash=False)
    back, recorded = read_state_dict(tmp_path / "random.npz", check_hash=False)
    assert recorded == sha and len(sha) == 64
    name = "Mixed_7c.branch_pool.conv.weight"
    np.testing.assert_array_equal(back[name], sd[name])


def test_readme_conversion_command_without_torch(golden, tmp_path, monkeypatch, capsys):
    """README's ``python -m jaxvision.metrics.generative.inception_weights IN.pth OUT.npz`` (its ``main``) end to
    end, with a stand-in for ``torch.load`` (torch is not a test dependency; the real torch read is
    test_convert_pth_to_npz): the hash check, the validation against the network and the written .npz."""
    import sys
    import types

    from jaxvision.metrics.generative import inception_weights as iw

    sd = golden[0]
    pth = tmp_path / "random.pth"
    with open(pth, "wb") as f:  # the stand-in's file format: an .npz under the .pth name
        np.savez(f, **sd)

    class Tensor:
        def __init__(self, a):
            self.a = a

        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return self.a

    def load(path, map_location=None, weights_only=False):
        assert map_location == "cpu" and weights_only  # never arbitrary unpickling
        with np.load(path) as f:
            return {k: Tensor(f[k]) for k in f.keys()}

    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(load=load))
    out = tmp_path / "cache" / "fid_inception.npz"
    with pytest.raises(ValueError, match="not pytorch-fid's"):
        iw.main([str(pth), str(out)])
    assert not out.exists()
    assert iw.main([str(pth), str(out), "--no-check-hash"]) == 0
    assert f"wrote {out} (source sha256 {iw.sha256_file(pth)})" in capsys.readouterr().out
    back, sha = read_state_dict(out, check_hash=False)
    assert sha == iw.sha256_file(pth) and back.keys() == sd.keys()
    for k in sd:
        np.testing.assert_array_equal(back[k], sd[k])
    broken = dict(sd)
    broken.pop("Mixed_7c.branch_pool.conv.weight")
    with open(pth, "wb") as f:
        np.savez(f, **broken)
    with pytest.raises(ValueError, match="missing .*Mixed_7c.*branch_pool"):  # validated before writing
        iw.main([str(pth), str(tmp_path / "broken.npz"), "--no-check-hash"])
    assert not (tmp_path / "broken.npz").exists()
