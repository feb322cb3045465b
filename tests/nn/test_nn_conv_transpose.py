"""jaxvision.nn.ConvTranspose: PyTorch ConvTranspose2d drop-in (shapes, params, torch golden values), bias,
dtypes, and gradients against XLA's autodiff of lax.conv_transpose in float64."""
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.nn import ConvTranspose

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


def test_bfloat16_compute_float32_params():
    m = ConvTranspose(2, dtype=jnp.bfloat16)
    x = jax.random.normal(jax.random.PRNGKey(1), (1, 4, 4, 3))
    v = m.init(jax.random.PRNGKey(0), x)
    assert v["params"]["kernel"].dtype == jnp.float32 and m.apply(v, x).dtype == jnp.bfloat16


def _xla_conv_transpose(x, kernel, strides, padding, output_padding):
    """PyTorch ConvTranspose2d from XLA's own op: the input dilated by the stride, correlated with the spatially
    flipped scatter kernel, padded by ``k - 1 - p`` (plus ``output_padding`` after). Differentiated by XLA."""
    (kh, kw), (ph, pw), (oh, ow) = kernel.shape[:2], padding, output_padding
    return jax.lax.conv_transpose(x, kernel[::-1, ::-1], strides,
                                  [(kh - 1 - ph, kh - 1 - ph + oh), (kw - 1 - pw, kw - 1 - pw + ow)],
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


CONFIGS = [  # kernel, strides, padding, output_padding: DCGAN's and a general one (non-square, uneven)
    ((4, 4), (2, 2), (1, 1), (0, 0)),
    ((5, 3), (3, 2), (2, 0), (2, 1)),
]


@pytest.mark.parametrize("k, s, p, op", CONFIGS)
def test_xla_reference_matches_torch_golden(k, s, p, op):
    """The gradient reference below is PyTorch's ConvTranspose2d (the committed golden values)."""
    key = case_key(k, s, p, op)
    np.testing.assert_allclose(_xla_conv_transpose(GOLD[f"x_{key}"], GOLD[f"w_{key}"], s, p, op),
                               GOLD[f"y_{key}"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k, s, p, op", CONFIGS)
def test_gradients_match_xla_autodiff_float64(k, s, p, op):
    """d/dx, d/dkernel, d/dbias of the layer (its custom VJP) against XLA's autodiff of lax.conv_transpose."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.standard_normal((2, 5, 4, 3)))
        params = {"kernel": jnp.asarray(rng.standard_normal((*k, 3, 4))), "bias": jnp.asarray(rng.standard_normal(4))}
        m = ConvTranspose(4, kernel_size=k, strides=s, padding=p, output_padding=op, param_dtype=jnp.float64)
        y_shape = jax.eval_shape(m.apply, {"params": params}, x).shape
        cot = jnp.asarray(rng.standard_normal(y_shape))  # a generic cotangent: every output weighted differently
        loss = lambda pr, x: jnp.sum(jnp.sin(m.apply({"params": pr}, x)) * cot)
        ref = lambda pr, x: jnp.sum(jnp.sin(_xla_conv_transpose(x, pr["kernel"], s, p, op) + pr["bias"]) * cot)
        got, want = jax.jit(jax.grad(loss, (0, 1)))(params, x), jax.jit(jax.grad(ref, (0, 1)))(params, x)
        assert got[1].dtype == jnp.float64 and got[0]["kernel"].dtype == jnp.float64
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError, match="x"):
        ConvTranspose(2).init(jax.random.PRNGKey(0), jnp.ones((4, 4)))
    with pytest.raises(ValueError, match="features"):
        ConvTranspose(0).init(jax.random.PRNGKey(0), jnp.ones((1, 4, 4, 3)))
