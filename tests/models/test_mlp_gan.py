"""MLP GAN for 2-D mixtures: shapes, BatchNorm option, boundary checks."""
import jax
import jax.numpy as jnp
import pytest

from jaxvision.models.gan.mlp_gan import MLPDiscriminator, MLPDiscriminatorTiny, MLPGenerator, MLPGeneratorTiny

KEY = jax.random.PRNGKey(0)


def test_shapes():
    z = jax.random.normal(KEY, (5, 3))
    x, _ = MLPGeneratorTiny().init_with_output(KEY, z)
    assert x.shape == (5, 2)
    logits, _ = MLPDiscriminatorTiny().init_with_output(KEY, x)
    assert logits.shape == (5,)


def test_batch_norm_variant_has_statistics_and_no_dead_biases():
    v = MLPGenerator(hidden=(4, 4), batch_norm=True).init(KEY, jnp.zeros((3, 2)), train=False)
    assert len(v["batch_stats"]) == 2
    assert "bias" not in v["params"]["Dense_0"] and "bias" in v["params"]["Dense_2"]
    v = MLPDiscriminator(hidden=(4, 4), batch_norm=True).init(KEY, jnp.zeros((3, 2)), train=False)
    assert len(v["batch_stats"]) == 1  # none after the input layer


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="x: expected shape"):
        MLPDiscriminatorTiny().init(KEY, jnp.zeros((3, 3)))
    with pytest.raises(ValueError, match="z: expected"):
        MLPGeneratorTiny().init(KEY, jnp.zeros((3,)))
