"""jaxvision.nn.ConvTranspose: PyTorch ConvTranspose2d drop-in (shapes, params, torch golden values), bias,
dtypes and gradients."""
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.nn import ConvTranspose
from jaxvision.ops import conv_transpose

FIX = pathlib.Path(__file__).parents[1] / "ops" / "fixtures"
sys.path.insert(0, str(FIX))
from make_upsample import case_key  # noqa: E402

GOLD = np.load(FIX / "upsample_conv_transpose.npz")


def test_dcgan_default_doubles_resolution():
    m = ConvTranspose(8)
    x = jnp.ones((2, 16, 16, 3))
    v = m.init(jax.random.PRNGKey(0), x)
    assert jax.tree.map(jnp.shape, v) == {"params": {"kernel": (4, 4, 3, 8), "bias": (8,)}}
    assert m.apply(v, x).shape == (2, 32, 32, 8)
    assert m.apply(v, x[0]).shape == (32, 32, 8)  # unbatched


def test_matches_torch_golden_with_bias():
    key = case_key((4, 4), (2, 2), (1, 1), (0, 0))
    x, w = GOLD[f"x_{key}"], GOLD[f"w_{key}"]
    bias = np.arange(4, dtype=np.float32)
    m = ConvTranspose(4, kernel_size=4, strides=2, padding=1)
    y = m.apply({"params": {"kernel": w, "bias": bias}}, x)
    np.testing.assert_allclose(y, GOLD[f"y_{key}"] + bias, rtol=1e-5, atol=1e-5)


def test_general_config_and_no_bias():
    key = case_key((5, 3), (3, 2), (2, 0), (2, 1))
    x, w = GOLD[f"x_{key}"], GOLD[f"w_{key}"]
    m = ConvTranspose(4, kernel_size=(5, 3), strides=(3, 2), padding=(2, 0), output_padding=(2, 1), use_bias=False)
    v = m.init(jax.random.PRNGKey(0), x)
    assert set(v["params"]) == {"kernel"}
    np.testing.assert_allclose(m.apply({"params": {"kernel": w}}, x), GOLD[f"y_{key}"], rtol=1e-5, atol=1e-5)


def test_param_gradients_and_bfloat16():
    m = ConvTranspose(2, dtype=jnp.bfloat16)
    x = jax.random.normal(jax.random.PRNGKey(1), (1, 4, 4, 3))
    v = m.init(jax.random.PRNGKey(0), x)
    assert v["params"]["kernel"].dtype == jnp.float32 and m.apply(v, x).dtype == jnp.bfloat16
    m32 = ConvTranspose(2)
    g = jax.grad(lambda p: (m32.apply({"params": p}, x) ** 2).sum())(v["params"])
    want = jax.grad(lambda k: ((conv_transpose(x, k, 2, 1) + v["params"]["bias"]) ** 2).sum())(v["params"]["kernel"])
    np.testing.assert_allclose(g["kernel"], want, rtol=1e-5, atol=1e-5)
    assert np.all(np.isfinite(g["bias"]))


def test_bad_inputs():
    with pytest.raises(ValueError, match="x"):
        ConvTranspose(2).init(jax.random.PRNGKey(0), jnp.ones((4, 4)))
    with pytest.raises(ValueError, match="features"):
        ConvTranspose(0).init(jax.random.PRNGKey(0), jnp.ones((1, 4, 4, 3)))
