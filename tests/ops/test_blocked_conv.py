"""space_to_depth_conv equals lax's "same" convolution; thin_output_conv has lax's values and gradients (to any
reverse order) and takes the blocked VJP only on the CPU and only where asked."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxvision.ops import space_to_depth_conv, thin_output_conv
from jaxvision.ops.blocked_conv import blocked_kernel, prefers_blocked_gradients

DN = ("NHWC", "HWIO", "NHWC")


def _same(x, k):
    return lax.conv_general_dilated(x, k, (1, 1), (((k.shape[0] - 1) // 2,) * 2, ((k.shape[1] - 1) // 2,) * 2),
                                    dimension_numbers=DN, precision="highest")


def _arrays(seed, x_shape, k_shape, dtype=np.float64):
    r = np.random.RandomState(seed)
    return jnp.asarray(r.randn(*x_shape).astype(dtype)), jnp.asarray(r.randn(*k_shape).astype(dtype))


@pytest.mark.parametrize("x_shape,k_shape,block", [
    ((2, 8, 12, 2), (3, 5, 2, 3), 2), ((2, 8, 8, 3), (9, 9, 3, 2), 4), ((1, 12, 16, 1), (7, 3, 1, 1), 4),
    ((2, 9, 9, 2), (3, 3, 2, 2), 3), ((1, 8, 8, 2), (1, 1, 2, 2), 4), ((1, 4, 8, 2), (11, 11, 2, 2), 4),
    ((1, 3, 3, 1), (3, 3, 1, 1), 1), ((1, 16, 16, 4), (9, 9, 4, 3), 8),
])
def test_space_to_depth_conv_equals_lax(x_shape, k_shape, block):
    with jax.enable_x64():
        x, k = _arrays(0, x_shape, k_shape)
        np.testing.assert_allclose(space_to_depth_conv(x, k, block), _same(x, k), rtol=1e-12, atol=1e-12)


def test_blocked_kernel_holds_every_tap():
    k = jnp.arange(1, 9 * 9 * 2 + 1, dtype=jnp.float32).reshape(9, 9, 1, 2)
    b = np.asarray(blocked_kernel(k, 4))  # [3, 3, 16, 32]
    assert b.shape == (3, 3, 16, 32)
    # every tap of the kernel is somewhere in the blocked kernel, and nothing else is but zeros
    assert set(np.unique(b)) - {0.0} == set(np.asarray(k).ravel())


def test_space_to_depth_conv_errors():
    x, k = _arrays(1, (1, 8, 8, 2), (3, 3, 2, 1), np.float32)
    with pytest.raises(ValueError, match="odd spatial sizes"):
        space_to_depth_conv(x, jnp.zeros((4, 3, 2, 1)))
    with pytest.raises(ValueError, match="divisible by block=3"):
        space_to_depth_conv(x, k, 3)
    with pytest.raises(ValueError, match="C_in = 2"):
        space_to_depth_conv(x, jnp.zeros((3, 3, 5, 1)))
    with pytest.raises(ValueError, match="block"):
        space_to_depth_conv(x, k, 0)
    with pytest.raises(ValueError, match=r"\[N, H, W, C_in\]"):
        space_to_depth_conv(x[0], k)


def test_prefers_blocked_gradients_only_large_thin_same_kernels():
    pad9 = ((4, 4), (4, 4))
    assert prefers_blocked_gradients((4, 96, 96, 32), (9, 9, 32, 3), pad9)
    assert prefers_blocked_gradients((4, 96, 96, 32), (7, 7, 32, 4), ((3, 3), (3, 3)))
    assert not prefers_blocked_gradients((4, 96, 96, 32), (3, 3, 32, 3), ((1, 1), (1, 1)))   # small kernel
    assert not prefers_blocked_gradients((4, 96, 96, 32), (9, 9, 32, 16), pad9)              # many outputs
    assert not prefers_blocked_gradients((4, 98, 96, 32), (9, 9, 32, 3), pad9)               # H not / 4
    assert not prefers_blocked_gradients((4, 96, 96, 32), (9, 9, 32, 3), ((0, 0), (0, 0)))   # not "same"


def _loss(conv):
    return lambda x, k: jnp.sum(jnp.sin(conv(x, k, (1, 1), ((4, 4), (4, 4)), dimension_numbers=DN)))


def test_thin_output_conv_values_and_gradients_equal_lax():
    with jax.enable_x64():
        x, k = _arrays(2, (2, 16, 12, 5), (9, 9, 5, 3))
        ours, ref = _loss(thin_output_conv), _loss(lax.conv_general_dilated)
        np.testing.assert_array_equal(  # the forward is the library's
            thin_output_conv(x, k, (1, 1), ((4, 4), (4, 4)), dimension_numbers=DN),
            lax.conv_general_dilated(x, k, (1, 1), ((4, 4), (4, 4)), dimension_numbers=DN))
        for a, b in zip(jax.jit(jax.grad(ours, (0, 1)))(x, k), jax.grad(ref, (0, 1))(x, k)):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)
        second = [jax.grad(lambda x, k, f=f: jnp.sum(jax.grad(f, 1)(x, k) ** 2), (0, 1))(x, k) for f in (ours, ref)]
        for a, b in zip(*second):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_thin_output_conv_takes_the_blocked_vjp_on_cpu_only_where_asked():
    x, k = _arrays(3, (2, 16, 16, 5), (9, 9, 5, 3), np.float32)
    hlo = jax.jit(jax.grad(_loss(thin_output_conv), 1)).lower(x, k).as_text()
    if jax.default_backend() == "cpu":
        assert "4x4x80" in hlo  # the 16 x 5-channel blocks of x, on the 4x4 block grid
    k3 = jnp.zeros((3, 3, 5, 3))
    small = jax.jit(jax.grad(lambda x, k: jnp.sum(thin_output_conv(x, k, (1, 1), ((1, 1), (1, 1)),
                                                                   dimension_numbers=DN)), 1)).lower(x, k3)
    assert "4x4x80" not in small.as_text()


def test_thin_output_conv_as_flax_conv_keeps_params_and_falls_back_to_lax():
    x, _ = _arrays(4, (1, 8, 8, 6), (1, 1, 1, 1), np.float32)
    plain = nn.Conv(3, (9, 9), padding=4)
    fast = nn.Conv(3, (9, 9), padding=4, conv_general_dilated=thin_output_conv)
    v = plain.init(jax.random.PRNGKey(0), x)
    assert jax.tree.structure(fast.init(jax.random.PRNGKey(0), x)) == jax.tree.structure(v)
    np.testing.assert_array_equal(fast.apply(v, x), plain.apply(v, x))
    w = jnp.asarray(np.random.RandomState(5).randn(9, 9, 6, 3).astype(np.float32))
    for kwargs in (dict(padding="SAME"), dict(padding=((4, 4), (4, 4)), rhs_dilation=(2, 2)),
                   dict(padding=((4, 4), (4, 4)), window_strides=(2, 2))):
        kwargs = {"window_strides": (1, 1), **kwargs}
        np.testing.assert_array_equal(thin_output_conv(x, w, dimension_numbers=DN, **kwargs),
                                      lax.conv_general_dilated(x, w, dimension_numbers=DN, **kwargs))
