"""StackGAN: G/D shapes for both stages and both factors, the text encoder's padding invariance, the
conditioning-augmentation formula, precomputed embeddings as text, Stage I frozen inside Stage II, errors."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision.models.gan.stackgan import (
    ConditioningAugmentation,
    StageIGenerator,
    StageIIGenerator,
    TextEncoder,
    TextImageDiscriminator,
    freeze_stage1,
)

V, NZ, C = 12, 3, 2


def _tokens(b=3, length=6):
    rng = np.random.default_rng(0)
    words = rng.integers(1, V, (b, length))
    n = np.array([length, 2, 4])[:b]
    return jnp.asarray(np.where(np.arange(length) < n[:, None], words, 0), jnp.int32)


@pytest.fixture(scope="module")
def stages():
    g1 = StageIGenerator(V, size=8, nz=NZ, c_dim=C, ngf=4, embed_dim=4, text_hidden=5)
    t, z = _tokens(), jax.random.normal(jax.random.PRNGKey(0), (3, NZ + C))
    v1 = jax.jit(g1.init)(jax.random.PRNGKey(1), t, z)
    return g1, v1, t, z


def test_stage1_generator_and_discriminator_shapes(stages):
    g1, v1, t, z = stages
    d = TextImageDiscriminator(V, size=8, ndf=4, text_dim=3, embed_dim=4, text_hidden=5)

    @jax.jit
    def run(v1):
        (img, aux), mut = g1.apply(v1, t, z, train=True, mutable=["batch_stats"])
        return img, aux, mut, d.apply(d.init(jax.random.PRNGKey(2), img, t), img, t)

    img, aux, mut, logits = run(v1)
    assert img.shape == (3, 8, 8, 3) and float(jnp.abs(img).max()) <= 1.0
    assert aux["mu"].shape == aux["logvar"].shape == (3, C) and "batch_stats" in mut
    assert logits.shape == (3,)


def test_stage2_shapes_for_both_factors(stages):
    g1, _, t, z = stages
    for factor in (2, 4):
        g2 = StageIIGenerator(stage1=g1, factor=factor, ngf=4, num_residual=1)
        v2 = jax.eval_shape(g2.init, jax.random.PRNGKey(3), t, z)
        img, aux = jax.eval_shape(lambda v: g2.apply(v, t, z), v2)
        assert img.shape == (3, 8 * factor, 8 * factor, 3) and aux["low_res"].shape == (3, 8, 8, 3)
        d = TextImageDiscriminator(V, size=8 * factor, ndf=4)
        vd = jax.eval_shape(d.init, jax.random.PRNGKey(2), img, t)
        assert jax.eval_shape(d.apply, vd, img, t).shape == (3,)


def test_stage2_refines_the_frozen_stage1_image(stages):
    g1, v1, t, z = stages
    g2 = StageIIGenerator(stage1=g1, factor=2, ngf=4, num_residual=1)
    v2 = jax.jit(g2.init)(jax.random.PRNGKey(3), t, z)
    v2 = {"params": {**v2["params"], "stage1": v1["params"]}, "batch_stats": {**v2["batch_stats"],
                                                                               "stage1": v1["batch_stats"]}}

    @jax.jit
    def run(v):
        (img, aux), mut = g2.apply(v, t, z, train=True, mutable=["batch_stats"])
        grads = jax.grad(lambda p: jnp.sum(g2.apply({**v, "params": p}, t, z)[0] ** 2))(v["params"])
        return aux["low_res"], mut["batch_stats"]["stage1"], grads["stage1"], g1.apply(v1, t, z)[0]

    low, stats1, grads1, want = run(v2)
    np.testing.assert_allclose(low, want, atol=1e-6)  # Stage I in inference mode
    jax.tree_util.tree_map(np.testing.assert_array_equal, stats1, v1["batch_stats"])
    assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree_util.tree_leaves(grads1))  # no gradient reaches it
    tx = freeze_stage1(optax.sgd(0.1), v2["params"])  # and its update is zero while the rest trains
    ones = jax.tree_util.tree_map(jnp.ones_like, v2["params"])
    updates, _ = tx.update(ones, tx.init(v2["params"]), v2["params"])
    assert all(float(jnp.abs(u).max()) == 0 for u in jax.tree_util.tree_leaves(updates["stage1"]))
    assert all(float(jnp.abs(u).max()) > 0 for u in jax.tree_util.tree_leaves(updates["ca"]))


def test_text_encoder_reads_only_the_words():
    enc = TextEncoder(V, embed_dim=4, hidden=5)
    t = _tokens()
    v = jax.jit(enc.init)(jax.random.PRNGKey(0), t)
    apply = jax.jit(enc.apply)
    out = apply(v, t)
    longer = jnp.pad(t, ((0, 0), (0, 3)))  # more padding: same features
    np.testing.assert_allclose(jax.jit(enc.apply)(v, longer), out, atol=1e-6)
    changed = apply(v, t.at[1, 1].set(t[1, 1] % (V - 1) + 1))  # another last word of row 1 (2 words)
    assert not np.allclose(changed[1], out[1])
    np.testing.assert_allclose(changed[0], out[0], atol=1e-6)


def test_conditioning_augmentation_formula():
    ca = ConditioningAugmentation(c_dim=3)
    t = jax.random.normal(jax.random.PRNGKey(0), (4, 5))
    eps = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
    v = ca.init(jax.random.PRNGKey(2), t, eps)
    c, mu, logvar = jax.jit(ca.apply)(v, t, eps)
    h = t @ v["params"]["Dense_0"]["kernel"] + v["params"]["Dense_0"]["bias"]
    np.testing.assert_allclose(mu, h[:, :3], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logvar, h[:, 3:], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c, mu + np.exp(0.5 * logvar) * eps, rtol=1e-5, atol=1e-6)


def test_precomputed_embeddings_as_text():
    g1 = StageIGenerator(V, size=8, nz=NZ, c_dim=C, ngf=4)
    emb = jax.random.normal(jax.random.PRNGKey(0), (2, 7))
    z = jnp.zeros((2, NZ + C))
    v = jax.eval_shape(g1.init, jax.random.PRNGKey(1), emb, z)
    assert "text_encoder" not in v["params"] and v["params"]["ca"]["Dense_0"]["kernel"].shape == (7, 2 * C)
    assert jax.eval_shape(g1.apply, v, emb, z)[0].shape == (2, 8, 8, 3)


def test_bad_inputs_name_the_argument(stages):
    g1, v1, t, z = stages
    with pytest.raises(ValueError, match=r"z: expected \[B, nz \+ c_dim = 5\]"):
        g1.apply(v1, t, z[:, :4])
    with pytest.raises(ValueError, match="text"):
        g1.apply(v1, t[0], z)
    with pytest.raises(ValueError, match="size: expected a power of two"):
        StageIGenerator(V, size=12).init(jax.random.PRNGKey(0), t, jnp.zeros((3, 48)))
    d = TextImageDiscriminator(V, size=8, ndf=4)
    with pytest.raises(ValueError, match=r"image: expected \[B, 8, 8, 3\]"):
        d.init(jax.random.PRNGKey(0), jnp.zeros((3, 16, 16, 3)), t)
    with pytest.raises(ValueError, match="factor"):
        StageIIGenerator(stage1=g1, factor=3).init(jax.random.PRNGKey(0), t, z)
