"""Flax FID InceptionV3 vs pytorch-fid's network, same deterministic random weights (golden fixture)."""
import importlib.util
import json
import pathlib

import jax
import numpy as np
import pytest

from jaxvision.metrics.feature_networks import inception_network
from jaxvision.metrics.inception_weights import inception_template, state_dict_to_variables

FIX = pathlib.Path(__file__).parent / "fixtures"


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
    np.testing.assert_allclose(sd[names_shapes[0][0]].astype(np.float64).sum(), data["check_first_weight_sum"], rtol=1e-12)
    np.testing.assert_allclose([im.astype(np.float64).sum() for im in images], data["check_image_sums"], rtol=1e-12)
    return sd, images, data


def test_matches_pytorch_fid_with_random_weights(golden):
    sd, images, data = golden
    variables = state_dict_to_variables(sd, inception_template())
    net = inception_network(variables)
    pool3 = np.concatenate([np.asarray(net(im)["pool3"]) for im in images])
    logits = np.concatenate([np.asarray(net(im)["logits"]) for im in images])
    assert pool3.shape == (3, 2048) and logits.shape == (3, 1008)
    for got, want in ((pool3, data["pool3"]), (logits, data["logits"])):
        scale = np.abs(want).max()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * scale)


def test_state_dict_mismatch_is_value_error(golden):
    sd, _, _ = golden
    bad = dict(sd)
    bad["Mixed_5b.branch_pool.conv.weight"] = bad["Mixed_5b.branch_pool.conv.weight"][:16]
    with pytest.raises(ValueError, match="wrong shapes"):
        state_dict_to_variables(bad, inception_template())
    with pytest.raises(ValueError, match="unexpected entry"):
        state_dict_to_variables({"AuxLogits.fc.weight": np.zeros((3, 3))})
