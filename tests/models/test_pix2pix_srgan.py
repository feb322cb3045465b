"""Pix2Pix U-Net / PatchGAN and SRGAN's SRResNet / discriminator: shapes, layer counts, receptive field, pixel
shuffle semantics, bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.models.gan import (
    PatchGANDiscriminator,
    SRGANDiscriminator,
    SRResNet,
    UNetGenerator,
    patchgan_receptive_field,
    pixel_shuffle,
    unet_depth,
    vgg54_variables,
)

KEY = jax.random.PRNGKey(0)


def _count(params, name):
    return sum(name in jax.tree_util.keystr(p) and p[-1].key == "kernel"
               for p, _ in jax.tree_util.tree_leaves_with_path(params))


def test_unet_shapes_depth_skips_and_dropout():
    g = UNetGenerator(size=32, ngf=4, out_channels=3)
    x = jax.random.uniform(KEY, (2, 32, 32, 1), minval=-1, maxval=1)
    v = g.init(KEY, x, train=False)
    assert unet_depth(32) == 5 and unet_depth(256) == 8
    assert _count(v["params"], "Conv_") == 5 and _count(v["params"], "ConvTranspose_") == 5
    y = g.apply(v, x, train=False)
    assert y.shape == (2, 32, 32, 3) and float(jnp.max(jnp.abs(y))) <= 1.0
    # 64 px: one dropout level (depth - 5), so train mode is stochastic through the 'dropout' stream
    g64 = UNetGenerator(size=64, ngf=2)
    x64 = jnp.zeros((2, 64, 64, 3)) + 0.1
    v64 = g64.init(KEY, x64, train=False)
    run = lambda k: g64.apply(v64, x64, train=True, rngs={"dropout": k}, mutable=["batch_stats"])[0]  # noqa: E731
    assert not np.allclose(run(jax.random.PRNGKey(1)), run(jax.random.PRNGKey(2)))
    with pytest.raises(ValueError, match="size: expected a power of two"):
        unet_depth(48)
    with pytest.raises(ValueError, match=r"condition: expected shape \[B, 32, 32, C\]"):
        g.apply(v, jnp.zeros((1, 16, 16, 1)), train=False)


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_patchgan_receptive_field_measured(n_layers):
    size = 96
    d = PatchGANDiscriminator(n_layers=n_layers, ndf=2)
    x = jnp.zeros((1, size, size, 3))
    v = d.init(KEY, x, x[..., :1], train=False)
    out = d.apply(v, x, x[..., :1], train=False)
    i = out.shape[1] // 2
    # receptive field: the input pixels one logit depends on (eval mode: no batch-statistics coupling)
    grad = jax.grad(lambda im: d.apply(v, im, x[..., :1], train=False)[0, i, i])(
        jax.random.normal(KEY, x.shape))
    rows = np.nonzero(np.abs(np.asarray(grad[0])).sum((1, 2)))[0]
    assert rows.max() - rows.min() + 1 == patchgan_receptive_field(n_layers)
    assert {1: 16, 2: 34, 3: 70}[n_layers] == patchgan_receptive_field(n_layers)
    assert _count(v["params"], "Conv_") == n_layers + 2


def test_pixel_shuffle_matches_torch_layout():
    # torch.nn.PixelShuffle(2) on NCHW: out[c, 2h + i, 2w + j] = in[c * 4 + i * 2 + j, h, w]
    x = np.arange(2 * 3 * 8, dtype=np.float32).reshape(1, 2, 3, 8)  # NHWC, C = 2 * 4
    y = np.asarray(pixel_shuffle(jnp.asarray(x), 2))
    assert y.shape == (1, 4, 6, 2)
    for c in range(2):
        for i in range(2):
            for j in range(2):
                np.testing.assert_array_equal(y[0, i::2, j::2, c], x[0, :, :, c * 4 + i * 2 + j])


def test_srresnet_and_discriminator_shapes_and_layer_counts():
    g = SRResNet(scale=4, num_blocks=2, nf=8)
    lr = jnp.zeros((2, 6, 6, 3))
    gv = g.init(KEY, lr, train=False)
    assert g.apply(gv, lr, train=False).shape == (2, 24, 24, 3)
    # 9x9 in, 2 per block, 1 after the blocks, one per x2 stage, 9x9 out
    assert _count(gv["params"], "Conv_") == 1 + 2 * 2 + 1 + 2 + 1
    assert len([k for k in gv["params"] if k.startswith("PReLU")]) == 1 + 2 + 2
    d = SRGANDiscriminator(ndf=4)
    hr = jnp.zeros((2, 32, 32, 3))
    dv = d.init(KEY, hr, train=False)
    assert d.apply(dv, hr, train=False).shape == (2,)
    assert _count(dv["params"], "Conv_") == 8 and _count(dv["params"], "Dense_") == 2
    with pytest.raises(ValueError, match="divisible by 16"):
        d.apply(dv, jnp.zeros((1, 24, 24, 3)))
    with pytest.raises(ValueError, match="scale"):
        SRResNet(scale=3).init(KEY, lr)
    # bicubic_skip: the last conv starts at zero, so the untrained G is exactly bicubic upsampling (a random last
    # layer put the first SRResNet steps ~6-10 dB below bicubic); without the skip it is a random (non-zero) conv
    gs = SRResNet(scale=2, num_blocks=1, nf=4, bicubic_skip=True)
    x = jax.random.uniform(KEY, (1, 5, 5, 3), minval=-1, maxval=1)
    sv = gs.init(KEY, x, train=False)
    np.testing.assert_allclose(gs.apply(sv, x, train=False), jax.image.resize(x, (1, 10, 10, 3), "cubic"),
                               atol=1e-6)
    pv = SRResNet(scale=2, num_blocks=1, nf=4).init(KEY, x, train=False)["params"]
    last = sorted((k for k in pv if k.startswith("Conv_")), key=lambda k: int(k.split("_")[1]))[-1]
    assert float(jnp.abs(pv[last]["kernel"]).max()) > 0


def test_vgg54_weights_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="vgg_weights: expected a torchvision vgg19 state_dict file"):
        vgg54_variables(str(tmp_path / "vgg19.pth"))


def test_srresnet_gradients_with_the_blocked_last_conv_equal_the_library_ones(monkeypatch):
    """SRResNet's last conv is ``ops.thin_output_conv`` (on the CPU its VJP runs over 4x4 pixel blocks): its
    gradients equal those of the library convolution, jitted and pmapped over 2 devices."""
    from jax import lax

    from jaxvision.models.gan import srgan

    g = SRResNet(scale=4, num_blocks=1, nf=8, bicubic_skip=True)
    lr = jax.random.uniform(KEY, (2, 4, 4, 3), minval=-1, maxval=1)  # HR 16 px: blocks of 4 apply
    hr = jax.random.uniform(jax.random.PRNGKey(1), (2, 16, 16, 3), minval=-1, maxval=1)
    v = g.init(KEY, lr, train=False)
    params = jax.tree.map(lambda p: p + 0.01, v["params"])  # a non-zero last layer

    def run():  # new functions each time: jit / pmap caches are keyed on the function
        def grads(p, x, y):
            def loss(p):
                out, _ = g.apply({"params": p, "batch_stats": v["batch_stats"]}, x, train=True,
                                 mutable=["batch_stats"])
                return jnp.mean((out - y) ** 2)
            return jax.grad(loss)(p)
        pmapped = jax.pmap(grads, in_axes=(None, 0, 0), devices=jax.devices()[:2])
        return jax.jit(grads)(params, lr, hr), pmapped(params, lr[:, None], hr[:, None])

    ours, pmapped = run()
    monkeypatch.setattr(srgan, "thin_output_conv", lax.conv_general_dilated)
    library, library_pmapped = run()
    for a, b in zip(jax.tree.leaves(ours) + jax.tree.leaves(pmapped),
                    jax.tree.leaves(library) + jax.tree.leaves(library_pmapped)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6)
