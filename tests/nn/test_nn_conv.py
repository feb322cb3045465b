"""jaxvision.nn.Conv is interchangeable with flax.linen.Conv: same parameter tree and init values, same outputs
and gradients; bad features raise."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.nn import Conv


class Two(nn.Module):
    """Two strided convs, auto-named Conv_0 / Conv_1, from the given layer class."""
    layer: type

    @nn.compact
    def __call__(self, x):
        x = nn.relu(self.layer(8, (4, 4), strides=(2, 2), padding=1)(x))
        return self.layer(4, (3, 3), strides=(2, 1), padding=(0, 1), use_bias=False)(x)


def test_matches_flax_conv_params_outputs_and_gradients():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 17, 16, 3)).astype(np.float32))
    ours, theirs = Two(Conv), Two(nn.Conv)
    v = ours.init(jax.random.PRNGKey(1), x)
    v_ref = theirs.init(jax.random.PRNGKey(1), x)
    assert jax.tree_util.tree_structure(v) == jax.tree_util.tree_structure(v_ref)
    for a, b in zip(jax.tree_util.tree_leaves(v), jax.tree_util.tree_leaves(v_ref)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(ours.apply(v, x), theirs.apply(v, x), rtol=1e-5, atol=1e-5)
    loss = lambda m: lambda v, x: jnp.sum(m.apply(v, x) ** 2)
    g, g_ref = jax.grad(loss(ours), (0, 1))(v, x), jax.grad(loss(theirs), (0, 1))(v, x)
    for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_bad_features_raise():
    with pytest.raises(ValueError, match="features: expected > 0, got 0"):
        Conv(0).init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 3)))
