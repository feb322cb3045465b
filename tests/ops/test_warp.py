"""crop_and_resize against scipy's bilinear map_coordinates (border replicated); degenerate and outside boxes stay
finite; gradients reach the image; bad inputs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from jaxvision.ops import crop_and_resize


def _reference(image, box, oh, ow):
    x0, y0, x1, y1 = box
    ys = y0 + (np.arange(oh) + 0.5) * (y1 - y0) / oh - 0.5
    xs = x0 + (np.arange(ow) + 0.5) * (x1 - x0) / ow - 0.5
    yy, xx = np.meshgrid(np.clip(ys, 0, image.shape[0] - 1), np.clip(xs, 0, image.shape[1] - 1), indexing="ij")
    return np.stack([ndimage.map_coordinates(image[..., c].astype(np.float64), [yy, xx], order=1, mode="nearest")
                     for c in range(image.shape[-1])], -1)


def test_matches_bilinear_reference():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (2, 20, 24, 3)).astype(np.float32)
    xy = rng.uniform(-4, 18, (2, 6, 2))
    wh = rng.uniform(0, 12, (2, 6, 2))
    boxes = np.concatenate([xy, xy + wh], -1).astype(np.float32)
    boxes[0, 0] = (3, 3, 3, 3)          # degenerate: one sample point
    boxes[1, 1] = (-30, -30, -10, -5)   # outside: border pixel
    out = np.asarray(jax.jit(crop_and_resize, static_argnums=2)(images, boxes, (5, 7)))
    assert out.shape == (2, 6, 5, 7, 3) and np.all(np.isfinite(out))
    for b in range(2):
        for r in range(6):
            np.testing.assert_allclose(out[b, r], _reference(images[b], boxes[b, r], 5, 7), atol=1e-5)
    np.testing.assert_allclose(out[1, 1], np.broadcast_to(images[1, 0, 0], (5, 7, 3)), atol=1e-6)


def test_gradient_flows_to_the_image():
    img = jnp.ones((1, 8, 8, 1))
    g = jax.grad(lambda x: crop_and_resize(x, jnp.array([[[1.0, 1.0, 5.0, 5.0]]]), 4).sum())(img)
    assert float(g.sum()) == pytest.approx(16.0) and float(g[0, 7, 7, 0]) == 0.0


def test_bad_inputs():
    img = jnp.zeros((2, 8, 8, 3))
    with pytest.raises(ValueError, match="images"):
        crop_and_resize(img[0], jnp.zeros((2, 1, 4)), 4)
    with pytest.raises(ValueError, match="boxes"):
        crop_and_resize(img, jnp.zeros((2, 4)), 4)
    with pytest.raises(ValueError, match="boxes"):
        crop_and_resize(img, jnp.zeros((3, 1, 4)), 4)
    with pytest.raises(ValueError, match="output_size"):
        crop_and_resize(img, jnp.zeros((2, 1, 4)), 0)
