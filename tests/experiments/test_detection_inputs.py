"""The train step's side of the input pipeline: uint8 training images made float on the device (bit for bit the
host's float32 / 255) and SSD's colour distortion applied there (augment='ssd_geometric')."""
import jax
import jax.numpy as jnp
import numpy as np

from experiments._detection import float_images, with_augmentation


def test_float_images_and_device_colours_in_the_loss():
    def loss_fn(params, batch_stats, batch, rng):
        return jnp.mean(batch["image"]), (batch_stats, {"image": batch["image"]})

    def seen(colors):
        loss = jax.jit(with_augmentation(loss_fn, None, colors=colors))
        return np.asarray(loss({}, {}, {"image": jnp.asarray(u8)}, jax.random.PRNGKey(0))[1][1]["image"])

    u8 = np.random.default_rng(0).integers(0, 256, (4, 6, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(seen(False), u8.astype(np.float32) / 255.0)  # bit for bit the host's
    coloured = seen(True)
    assert coloured.dtype == np.float32 and 0 <= coloured.min() and coloured.max() <= 1
    assert not np.array_equal(coloured, u8.astype(np.float32) / 255.0)
    floats = {"image": jnp.asarray(u8, jnp.float32)}
    assert float_images(floats) is floats


def test_augmented_training_sets_are_uint8_and_the_voc_preset_colours_on_the_device(tmp_path):
    import pathlib
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "data"))
    from folder_fixtures import write_coco

    import experiments
    from experiments import _detection as D

    ssd = experiments.get("ssd_shapes")
    data_dir = write_coco(str(tmp_path / "d"), "train", copies=3)
    for augment, dtype in (("none", np.float32), ("ssd", np.uint8), ("ssd_geometric", np.uint8)):
        cfg = experiments.make_config(ssd, {"dataset": "coco_json", "data_dir": data_dir, "augment": augment},
                                      tiny=True)
        batch = D.train_split(D.dataset_spec(cfg), cfg).batch(0)
        assert batch["image"].dtype == dtype and batch["image"].shape == (8, 32, 32, 3), augment
    assert ssd.PRESETS["ssd300_voc"]["augment"] == "ssd_geometric"
