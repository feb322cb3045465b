"""Backbones: output shapes, and exact agreement with torchvision after weight import (golden fixture)."""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.models.backbones import torchvision_weights as tw
from jaxvision.models.backbones.resnet import BasicBlock, Bottleneck, ResNet, ResNet18, ResNetTiny
from jaxvision.models.backbones.vgg import VGG, VGG16, VGGTiny, adaptive_avg_pool

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "backbones.npz"


def _fixture(name):
    data = np.load(FIXTURE)
    prefix = f"{name}/sd/"
    sd = {k[len(prefix):]: data[k] for k in data.files if k.startswith(prefix)}
    return sd, data[f"{name}/input"], data[f"{name}/logits"]


def test_vgg_tiny_stage_shapes():
    net = VGGTiny()
    x = jnp.zeros((2, 64, 64, 3))
    v = net.init(jax.random.PRNGKey(0), x)
    stages = net.apply(v, x)
    assert [s.shape for s in stages] == [(2, 64, 64, 16), (2, 32, 32, 32), (2, 16, 16, 64), (2, 8, 8, 128)]


def test_vgg16_shapes_abstract():
    # eval_shape: no compute, checks the real VGG16 wiring (13 convs, 5 pools, 138M params).
    net = VGG16(num_classes=1000)
    x = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
    v = jax.eval_shape(net.init, jax.random.PRNGKey(0), x)
    assert sum(int(np.prod(a.shape)) for a in jax.tree.leaves(v)) == 138_357_544  # torchvision vgg16
    assert jax.eval_shape(net.apply, v, x).shape == (1, 1000)


@pytest.mark.parametrize("net,n_params", [(ResNet18(num_classes=1000), 11_689_512)])
def test_resnet_param_count_abstract(net, n_params):
    x = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
    v = jax.eval_shape(net.init, jax.random.PRNGKey(0), x)
    assert sum(int(np.prod(a.shape)) for a in jax.tree.leaves(v["params"])) == n_params  # torchvision resnet18


def test_resnet_tiny_stage_shapes():
    net = ResNetTiny()
    x = jnp.zeros((2, 32, 32, 3))
    v = net.init(jax.random.PRNGKey(0), x)
    assert [s.shape for s in net.apply(v, x)] == [(2, 32, 32, 16), (2, 16, 16, 32), (2, 8, 8, 64), (2, 4, 4, 128)]


def test_adaptive_avg_pool_matches_torch_bins():
    x = jnp.arange(2 * 5 * 5 * 1, dtype=jnp.float32).reshape(2, 5, 5, 1)
    y = adaptive_avg_pool(x, (3, 3))
    # torch bins for 5 -> 3: [0, 2), [1, 4), [3, 5)
    assert np.isclose(y[0, 1, 2, 0], x[0, 1:4, 3:5, 0].mean())


def test_vgg_bn_matches_torchvision_fixture():
    sd, x, ref = _fixture("vgg")
    net = VGG(cfg=(8, "M", 16, "M", 32, "M"), batch_norm=True, num_classes=5, hidden=16)
    v = net.init(jax.random.PRNGKey(0), x[:1])
    v, skipped = tw.merge_pretrained(v, tw.vgg_variables_from_torch(sd, batch_norm=True), strict=True)
    assert skipped == []
    np.testing.assert_allclose(net.apply(v, x), ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name,block", [("basic", BasicBlock), ("bottleneck", Bottleneck)])
def test_resnet_matches_torchvision_fixture(name, block):
    sd, x, ref = _fixture(name)
    net = ResNet(stage_sizes=(1, 1, 1, 1), block=block, width=4, num_classes=5)
    v = net.init(jax.random.PRNGKey(0), x[:1])
    v, skipped = tw.merge_pretrained(v, tw.resnet_variables_from_torch(sd), strict=True)
    assert skipped == []
    np.testing.assert_allclose(net.apply(v, x), ref, atol=1e-4, rtol=1e-4)


def test_merge_pretrained_shape_mismatch():
    sd, x, _ = _fixture("basic")
    net = ResNet(stage_sizes=(1, 1, 1, 1), block=BasicBlock, width=4, num_classes=7)  # other head size
    v = net.init(jax.random.PRNGKey(0), x[:1])
    conv = tw.resnet_variables_from_torch(sd)
    _, skipped = tw.merge_pretrained(v, conv)
    assert skipped == ["params/fc/kernel", "params/fc/bias"]
    with pytest.raises(ValueError, match="params/fc/kernel"):
        tw.merge_pretrained(v, conv, strict=True)


def test_load_state_dict_weights_only(tmp_path):
    torch = pytest.importorskip("torch")
    sd, _, _ = _fixture("basic")
    path = tmp_path / "w.pth"
    torch.save({k: torch.from_numpy(v) for k, v in sd.items()}, path)
    loaded = tw.load_state_dict(str(path))
    assert set(loaded) == set(sd) and all(np.array_equal(loaded[k], sd[k]) for k in sd)
