"""The train step's side of the input pipeline: uint8 training images made float on the device (bit for bit the
host's float32 / 255) and SSD's colour distortion applied there (augment='ssd_geometric')."""
import jax
import jax.numpy as jnp
import numpy as np

from experiments._detection import float_images, with_augmentation


def test_float_images_and_device_colours_in_the_loss():

    seen = {}

    def loss_fn(params, batch_stats, batch, rng):
        seen["image"] = batch["image"]
        return jnp.mean(batch["image"]), (batch_stats, {})

    u8 = np.random.default_rng(0).integers(0, 256, (4, 6, 5, 3), dtype=np.uint8)
    with_augmentation(loss_fn, None)({}, {}, {"image": jnp.asarray(u8)}, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(np.asarray(seen["image"]), u8.astype(np.float32) / 255.0)  # bit for bit
    np.testing.assert_array_equal(np.asarray(jax.jit(float_images)({"image": u8})["image"]),
                                  u8.astype(np.float32) / 255.0)
    floats = {"image": jnp.asarray(u8, jnp.float32)}
    assert float_images(floats) is floats
    with_augmentation(loss_fn, None, colors=True)({}, {}, {"image": jnp.asarray(u8)}, jax.random.PRNGKey(0))
    coloured = np.asarray(seen["image"])
    assert coloured.dtype == np.float32 and 0 <= coloured.min() and coloured.max() <= 1
    assert not np.array_equal(coloured, u8.astype(np.float32) / 255.0)
