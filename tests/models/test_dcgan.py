"""DCGAN: shapes for 16/32/64 px and every upsampling mode, layer layout, init, and equality with PyTorch."""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import ops
from jaxvision.models.gan.dcgan import (
    UPSAMPLING,
    DCGANDiscriminator,
    DCGANDiscriminatorTiny,
    DCGANGenerator,
    DCGANGeneratorTiny,
)

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "dcgan_torch.npz"
KEY = jax.random.PRNGKey(0)


@pytest.mark.parametrize("size,mode", [(16, m) for m in UPSAMPLING] + [(32, "bed_of_nails"), (64, "transposed")])
def test_generator_shapes_and_range(size, mode):
    g = DCGANGenerator(size=size, nz=6, ngf=2, channels=3, upsampling=mode)
    z = jax.random.normal(KEY, (3, 6))
    out, v = g.init_with_output(KEY, z, train=False)
    assert out.shape == (3, size, size, 3)
    assert float(jnp.max(jnp.abs(out))) <= 1.0
    # BatchNorm after the projection and every hidden stage, none on the output: n = log2(size / 4) of them
    assert len(v["batch_stats"]) == int(np.log2(size // 4))


@pytest.mark.parametrize("size", [16, 32, 64])
def test_discriminator_shapes_and_layout(size):
    d = DCGANDiscriminator(size=size, ndf=2, channels=3)
    x = jax.random.uniform(KEY, (3, size, size, 3), minval=-1, maxval=1)
    out, v = d.init_with_output(KEY, x, train=False)
    assert out.shape == (3,)
    n = int(np.log2(size // 4))
    assert len(v["batch_stats"]) == n - 1  # no BatchNorm after the input layer
    convs = [k for k in v["params"] if k.startswith("Conv")]
    assert len(convs) == n + 1 and all(set(v["params"][c]) == {"kernel"} for c in convs)  # no biases


def test_init_is_normal_002():
    v = DCGANDiscriminator(size=16, ndf=64, channels=3).init(KEY, jnp.zeros((1, 16, 16, 3)), train=False)
    k = np.asarray(v["params"]["Conv_1"]["kernel"])
    assert abs(k.std() - 0.02) < 1e-3 and abs(k.mean()) < 1e-3
    s = np.asarray(v["params"]["BatchNorm_0"]["scale"])
    assert abs(s.mean() - 1.0) < 0.01 and 0.01 < s.std() < 0.03


def test_matches_pytorch_dcgan_in_train_mode():
    f = np.load(FIXTURE)
    g, d = DCGANGeneratorTiny(), DCGANDiscriminatorTiny()
    w0 = f["G.0.weight"]  # [nz, C, 4, 4] ConvTranspose2d on a 1x1 input == Dense to (4, 4, C)
    g_params = {
        "Dense_0": {"kernel": w0.transpose(0, 2, 3, 1).reshape(w0.shape[0], -1)},
        "BatchNorm_0": {"scale": f["G.1.weight"], "bias": f["G.1.bias"]},
        "Upsample2x_0": {"ConvTranspose_0": {"kernel": f["G.3.weight"].transpose(2, 3, 0, 1)}},
        "BatchNorm_1": {"scale": f["G.4.weight"], "bias": f["G.4.bias"]},
        "Upsample2x_1": {"ConvTranspose_0": {"kernel": f["G.6.weight"].transpose(2, 3, 0, 1)}},
    }
    g_vars = g.init(KEY, jnp.zeros((2, 8)), train=False)
    out, _ = g.apply({"params": g_params, "batch_stats": g_vars["batch_stats"]}, f["z"], train=True,
                     mutable=["batch_stats"])
    np.testing.assert_allclose(out, f["g_out"], atol=2e-5)

    d_params = {
        "Conv_0": {"kernel": f["D.0.weight"].transpose(2, 3, 1, 0)},
        "Conv_1": {"kernel": f["D.2.weight"].transpose(2, 3, 1, 0)},
        "BatchNorm_0": {"scale": f["D.3.weight"], "bias": f["D.3.bias"]},
        "Conv_2": {"kernel": f["D.5.weight"].transpose(2, 3, 1, 0)},
    }
    d_vars = d.init(KEY, jnp.zeros((2, 16, 16, 1)), train=False)
    logits, _ = d.apply({"params": d_params, "batch_stats": d_vars["batch_stats"]}, f["x"], train=True,
                        mutable=["batch_stats"])
    np.testing.assert_allclose(logits, f["d_out"], atol=2e-5)


def test_bed_of_nails_conv_is_a_transposed_conv():
    x = jax.random.normal(KEY, (2, 5, 5, 3))
    k = jax.random.normal(jax.random.PRNGKey(1), (4, 4, 3, 2))  # scatter kernel of the transposed conv
    want = ops.conv_transpose(x, k, (2, 2), 1)
    up = ops.bed_of_nails_unpool(x, 2)
    got = jax.lax.conv_general_dilated(up, k[::-1, ::-1], (1, 1), ((2, 1), (2, 1)),
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_bad_inputs_raise():
    g, d = DCGANGeneratorTiny(), DCGANDiscriminatorTiny()
    with pytest.raises(ValueError, match="z: expected shape"):
        g.init(KEY, jnp.zeros((2, 5)))
    with pytest.raises(ValueError, match="x: expected shape"):
        d.init(KEY, jnp.zeros((2, 32, 32, 1)))
    with pytest.raises(ValueError, match="size"):
        DCGANGenerator(size=48).init(KEY, jnp.zeros((1, 100)))
    with pytest.raises(ValueError, match="upsampling"):
        DCGANGeneratorTiny(upsampling="bilinear").init(KEY, jnp.zeros((1, 8)))
