"""SSD's device-side photometric distortion: HSV conversions against colorsys, the distortion against the host's
uint8 / OpenCV version with the same parameters, neutral parameters exact, determinism, per-image draws, errors."""
import colorsys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.data.augment import photometric_distort as host_distort
from jaxvision.ops import distort_colors, hsv_to_rgb, photometric_distort, rgb_to_hsv

_distort = jax.jit(distort_colors)


def _image(seed=0, h=24, w=20):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h, w, 3))
    base[:4] = base[:4, :, :1]  # grey rows (hue undefined: 0)
    return base.astype(np.uint8)


def test_hsv_matches_colorsys_and_round_trips():
    rgb = np.random.default_rng(1).random((200, 3)).astype(np.float32)
    rgb[:5] = rgb[:5, :1]
    want = np.array([colorsys.rgb_to_hsv(*c) for c in rgb.astype(np.float64)])
    got = np.asarray(jax.jit(rgb_to_hsv)(jnp.asarray(rgb)))
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(np.asarray(jax.jit(hsv_to_rgb)(jnp.asarray(want, jnp.float32))), rgb, atol=1e-5)


class _Scripted:
    """A numpy-Generator stand-in returning scripted ``random()`` / ``uniform()`` values in call order."""

    def __init__(self, randoms, uniforms):
        self.randoms, self.uniforms = list(randoms), list(uniforms)

    def random(self):
        return self.randoms.pop(0)

    def uniform(self, lo, hi):
        return self.uniforms.pop(0)


@pytest.mark.parametrize("first, delta, contrast, sat, hue", [
    (True, 20.0, 1.3, 0.7, 10.0), (False, -25.0, 0.6, 1.4, -16.0), (True, 0.0, 1.0, 1.0, 12.0),
    (False, 31.0, 1.45, 1.0, 0.0)])
def test_device_distortion_matches_the_host_version(first, delta, contrast, sat, hue):
    img = _image()
    do = [delta != 0, contrast != 1, sat != 1, hue != 0]
    # host draw order: contrast-first, brightness?, delta, contrast?, contrast, saturation?, sat, hue?, hue
    randoms = [0.1 if first else 0.9] + [0.1 if d else 0.9 for d in do]
    uniforms = ([delta] if do[0] else []) + ([contrast] if do[1] else []) + [sat, hue]
    want = host_distort(img, _Scripted(randoms, uniforms)).astype(np.float64) / 255
    got = _distort(jnp.asarray(img[None], jnp.float32) / 255, jnp.array([delta / 255]), jnp.array([contrast]),
                         jnp.array([sat]), jnp.array([hue / 360]), jnp.array([first]))[0]
    diff = np.abs(np.asarray(got, np.float64) - want)
    # the host rounds to uint8 between steps and uses OpenCV's 8-bit HSV (hue in 2-degree steps)
    assert diff.mean() < 1.5 / 255 and np.quantile(diff, 0.99) <= 4.5 / 255, (diff.mean() * 255, diff.max() * 255)


def test_neutral_parameters_are_exact_and_the_draws_are_per_image():
    x = jnp.asarray(np.stack([_image(k) for k in range(4)] + [_image(0)] * 12), jnp.float32) / 255
    one, zero = jnp.ones(1), jnp.zeros(1)
    np.testing.assert_array_equal(np.asarray(_distort(x[:1], zero, one, one, zero, zero.astype(bool))),
                                  np.asarray(x[:1]))
    fn = jax.jit(photometric_distort)
    a, b = fn(x, jax.random.PRNGKey(0)), fn(x, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert a.dtype == jnp.float32 and a.shape == x.shape and float(a.min()) >= 0 and float(a.max()) <= 1
    assert not np.array_equal(np.asarray(a), np.asarray(fn(x, jax.random.PRNGKey(1))))
    same = np.asarray(a)[4:]  # 12 copies of one image: each row draws its own parameters
    assert len({o.tobytes() for o in same}) > 6


def test_bad_shape_names_the_argument():
    with pytest.raises(ValueError, match=r"images: expected \[B, H, W, 3\], got shape \(4, 4, 3\)"):
        photometric_distort(jnp.zeros((4, 4, 3)), jax.random.PRNGKey(0))
