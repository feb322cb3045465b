"""conv2d: forward and both gradients equal XLA's own convolution and its autodiff (float64, randomized shapes,
strides, paddings incl. sizes the stride does not divide), jit / vmap, and bad inputs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxvision.ops import conv2d


def lax_conv(x, w, s, p):
    return lax.conv_general_dilated(x, w, s, ((p[0], p[0]), (p[1], p[1])), dimension_numbers=("NHWC", "HWIO", "NHWC"))


CASES = [  # (N, H, W, Cin, Cout, kh, kw, strides, padding)
    (2, 16, 16, 3, 8, 4, 4, (2, 2), (1, 1)),    # DCGAN discriminator layer
    (1, 9, 7, 2, 3, 3, 3, (2, 2), (1, 1)),      # odd sizes: the last input row is never read
    (2, 10, 11, 4, 5, 3, 2, (3, 2), (0, 1)),    # anisotropic
    (1, 8, 8, 3, 4, 1, 1, (2, 2), (0, 0)),      # 1x1 strided
    (2, 6, 6, 2, 3, 3, 3, (1, 1), (1, 1)),      # stride 1
    (1, 5, 5, 2, 2, 5, 5, (1, 1), (2, 2)),      # kernel = input
    (1, 4, 4, 1, 1, 4, 4, (1, 1), (0, 0)),      # DCGAN's last (valid) layer
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:7])) + f"_s{c[7]}_p{c[8]}")
def test_forward_and_gradients_equal_xla(case):
    n, h, w, ci, co, kh, kw, s, p = case
    rng = np.random.default_rng(sum(case[:7]))
    with jax.enable_x64():
        x = jnp.asarray(rng.normal(size=(n, h, w, ci)))
        k = jnp.asarray(rng.normal(size=(kh, kw, ci, co)))
        y_ref, vjp_ref = jax.vjp(lambda x, k: lax_conv(x, k, s, p), x, k)
        y, vjp = jax.vjp(lambda x, k: conv2d(x, k, s, p), x, k)
        np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
        g = jnp.asarray(rng.normal(size=y.shape))
        for got, want in zip(vjp(g), vjp_ref(g)):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


def test_float32_jit_vmap_and_second_use():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(3, 2, 12, 12, 4)).astype(np.float32))
    k = jnp.asarray(rng.normal(size=(4, 4, 4, 6)).astype(np.float32) * 0.1)
    f = jax.jit(jax.vmap(lambda x: conv2d(x, k, 2, 1)))
    np.testing.assert_allclose(f(x), jax.vmap(lambda x: lax_conv(x, k, (2, 2), (1, 1)))(x), rtol=1e-5, atol=1e-5)
    loss = lambda x, k: jnp.sum(jnp.tanh(conv2d(x, k, 2, 1)) ** 2)
    loss_ref = lambda x, k: jnp.sum(jnp.tanh(lax_conv(x, k, (2, 2), (1, 1))) ** 2)
    for a, b in zip(jax.jit(jax.grad(loss, (0, 1)))(x[0], k), jax.grad(loss_ref, (0, 1))(x[0], k)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("x_shape, k_shape, kw, match", [
    ((8, 8, 3), (3, 3, 3, 4), {}, r"x: expected \[N, H, W, C_in\], got shape \(8, 8, 3\)"),
    ((1, 8, 8, 3), (3, 3, 2, 4), {}, "kernel: expected C_in = 3"),
    ((1, 8, 8, 3), (3, 3, 3, 4), {"strides": 0}, "strides"),
    ((1, 8, 8, 3), (3, 3, 3, 4), {"padding": -1}, "padding"),
    ((1, 4, 4, 3), (7, 3, 3, 4), {"padding": 1}, "kernel: expected a spatial size <= the padded input along axis H"),
])
def test_bad_inputs_raise(x_shape, k_shape, kw, match):
    with pytest.raises(ValueError, match=match):
        conv2d(jnp.zeros(x_shape), jnp.zeros(k_shape), **kw)


def test_second_order_reverse_mode_matches_xla():
    """Reverse-over-reverse (e.g. a WGAN-GP / R1 gradient penalty) differentiates through the custom backward."""
    rng = np.random.default_rng(3)
    with jax.enable_x64():
        x = jnp.asarray(rng.normal(size=(2, 8, 8, 3)))
        k = jnp.asarray(rng.normal(size=(4, 4, 3, 5)))

        def penalty(conv):
            grad_x = jax.grad(lambda x, k: jnp.sum(jnp.tanh(conv(x, k)) ** 2))
            return jax.grad(lambda k: jnp.sum(grad_x(x, k) ** 2))(k)

        np.testing.assert_allclose(penalty(lambda x, k: conv2d(x, k, 2, 1)),
                                   penalty(lambda x, k: lax_conv(x, k, (2, 2), (1, 1))), rtol=1e-10, atol=1e-10)
