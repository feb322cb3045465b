"""im2col_conv / small_map_conv equal lax.conv_general_dilated; small_map_conv picks the matmul only where asked."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxvision.ops import im2col_conv, small_map_conv
from jaxvision.ops.im2col import prefers_matmul

DN = ("NHWC", "HWIO", "NHWC")


def _lax(x, k, strides, padding):
    return lax.conv_general_dilated(x, k, strides, padding, dimension_numbers=DN)


@pytest.mark.parametrize("hw,k,strides,padding", [
    ((7, 9), (3, 3), (1, 1), ((1, 1), (1, 1))),
    ((8, 8), (3, 2), (2, 1), ((0, 2), (1, 0))),
    ((5, 6), (1, 1), (2, 2), ((0, 0), (0, 0))),
    ((6, 6), (5, 5), (1, 2), ((2, 2), (2, 2))),
])
def test_im2col_conv_equals_lax(hw, k, strides, padding):
    r = np.random.RandomState(0)
    x = jnp.asarray(r.randn(2, *hw, 5).astype(np.float32))
    w = jnp.asarray(r.randn(*k, 5, 4).astype(np.float32))
    np.testing.assert_allclose(im2col_conv(x, w, strides, padding), _lax(x, w, strides, padding), rtol=1e-5,
                               atol=1e-5)


def test_im2col_conv_symmetric_padding_and_errors():
    r = np.random.RandomState(1)
    x, w = jnp.asarray(r.randn(1, 4, 4, 3), jnp.float32), jnp.asarray(r.randn(3, 3, 3, 2), jnp.float32)
    np.testing.assert_allclose(im2col_conv(x, w, 1, 1), _lax(x, w, (1, 1), ((1, 1), (1, 1))), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="kernel: expected C_in = 3"):
        im2col_conv(x, jnp.zeros((3, 3, 2, 2)))
    with pytest.raises(ValueError, match="kernel: expected a spatial size"):
        im2col_conv(x, jnp.zeros((7, 7, 3, 2)))
    with pytest.raises(ValueError, match="padding"):
        im2col_conv(x, w, 1, ((1, -1), (0, 0)))


def test_prefers_matmul_only_small_channel_heavy_maps():
    assert prefers_matmul((1, 10, 10, 2048), (3, 3, 2048, 2048), (10, 10))
    assert prefers_matmul((1, 16, 16, 1024), (3, 3, 1024, 256), (16, 16))
    assert not prefers_matmul((1, 20, 20, 2048), (3, 3, 2048, 2048), (20, 20))   # too many positions
    assert not prefers_matmul((1, 10, 10, 512), (3, 3, 512, 512), (10, 10))      # too few channels
    assert not prefers_matmul((1, 10, 10, 2048), (1, 1, 2048, 512), (10, 10))    # 1x1: already a matmul


def test_small_map_conv_matches_lax_and_takes_the_matmul_on_cpu():
    r = np.random.RandomState(2)
    x = jnp.asarray(r.randn(2, 4, 4, 1024).astype(np.float32))
    w = jnp.asarray(r.randn(3, 3, 1024, 8).astype(np.float32) * 0.03)
    pad = ((1, 1), (1, 1))
    got = jax.jit(lambda x, w: small_map_conv(x, w, (1, 1), pad, dimension_numbers=DN))(x, w)
    np.testing.assert_allclose(got, _lax(x, w, (1, 1), pad), rtol=1e-4, atol=1e-4)
    hlo = jax.jit(lambda x, w: small_map_conv(x, w, (1, 1), pad, dimension_numbers=DN)).lower(x, w).as_text()
    if jax.default_backend() == "cpu":
        assert "concatenate" in hlo  # the im2col patches


def test_small_map_conv_as_flax_conv_keeps_params_and_values():
    r = np.random.RandomState(3)
    x = jnp.asarray(r.randn(1, 3, 3, 1024).astype(np.float32))
    plain, fast = nn.Conv(4, (3, 3), padding=1), nn.Conv(4, (3, 3), padding=1, conv_general_dilated=small_map_conv)
    v = plain.init(jax.random.PRNGKey(0), x)
    assert jax.tree.structure(fast.init(jax.random.PRNGKey(0), x)) == jax.tree.structure(v)
    np.testing.assert_allclose(fast.apply(v, x), plain.apply(v, x), rtol=1e-4, atol=1e-4)
    # anything it does not handle goes to lax unchanged: dilation, string padding, groups
    w = jnp.asarray(r.randn(3, 3, 1024, 4).astype(np.float32))
    np.testing.assert_array_equal(
        small_map_conv(x, w, (1, 1), "SAME", dimension_numbers=DN),
        lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=DN))
    np.testing.assert_array_equal(
        small_map_conv(x, w, (1, 1), ((2, 2), (2, 2)), rhs_dilation=(2, 2), dimension_numbers=DN),
        lax.conv_general_dilated(x, w, (1, 1), ((2, 2), (2, 2)), rhs_dilation=(2, 2), dimension_numbers=DN))
