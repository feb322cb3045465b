"""Landmarks: soft-argmax geometry, training signal, NME/PCK definitions."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from det_synth import synthetic_batch, train_steps

from jaxvision.models.detection import landmarks


def test_shapes_and_loss_decreases():
    batch = synthetic_batch(size=32, num_valid=(1,))
    model = landmarks.LandmarkNetTiny(num_landmarks=4)
    losses, variables, finite = train_steps(model, landmarks.loss_fn, batch, steps=6, lr=3e-3)
    assert finite and losses[-1] < 0.8 * losses[0], losses
    out = model.apply(variables, batch["image"])
    assert out["landmarks"].shape == (2, 4, 2) and out["heatmaps"].shape == (2, 8, 8, 4)  # stride 4 at 32 px
    pred = landmarks.predict_fn(model)(variables, jnp.asarray(batch["image"]))
    assert pred.shape == (2, 4, 2) and np.all((pred >= 0) & (pred <= 32))


class _ZeroMaps(nn.Module):
    dtype: object = jnp.float32

    def __call__(self, x, train=False):
        b, h, w, _ = x.shape
        return [jnp.zeros((b, h // 4, w // 4, 2), self.dtype), jnp.zeros((b, h // 8, w // 8, 2), self.dtype)]


def _landmarks_from_heatmap(heat, image_hw):
    """Run LandmarkNetTiny on a zero image of ``image_hw`` with its heatmap conv's output replaced by ``heat``."""
    # the readout under test sees only the heatmap: a stand-in backbone (two zero maps, strides 4 and 8) keeps it cheap
    model = landmarks.LandmarkNet(num_landmarks=heat.shape[-1], backbone=_ZeroMaps, width=4)
    x = jnp.zeros((1, *image_hw, 3))
    v = model.init(jax.random.PRNGKey(0), x)

    def replace_heatmap(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if context.module.name == "heatmap" and context.method_name == "__call__":
            assert out.shape == heat.shape, (out.shape, heat.shape)
            return jnp.asarray(heat, out.dtype)
        return out

    with nn.intercept_methods(replace_heatmap):
        out = model.apply(v, x)
    np.testing.assert_array_equal(out["heatmaps"], heat)  # the readout saw our heatmap
    return np.asarray(out["landmarks"][0])


def test_soft_argmax_reads_peak_cell_centre():
    """Asymmetric peaks on a non-square image: an x/y swap (grid or image size) moves every landmark."""
    hgt, wid = 32, 48  # stride 4: an 8 x 12 grid of 4 px cells, centres at 4 * (index + 0.5)
    heat = np.zeros((1, 8, 12, 3), np.float32)
    heat[0, 1, 9, 0] = 100.0  # row 1, column 9: (x, y) = (38, 6)
    heat[0, 6, 2, 1] = 100.0  # row 6, column 2: (10, 26)
    heat[0, 2, 3, 2] = heat[0, 2, 11, 2] = 100.0  # two equal peaks in row 2: the mean, (30, 10)
    got = _landmarks_from_heatmap(heat, (hgt, wid))
    np.testing.assert_allclose(got, [[38.0, 6.0], [10.0, 26.0], [30.0, 10.0]], atol=1e-3)


def test_soft_argmax_of_a_uniform_heatmap_is_the_image_centre():
    got = _landmarks_from_heatmap(np.zeros((1, 8, 12, 1), np.float32), (32, 48))
    np.testing.assert_allclose(got, [[24.0, 16.0]], atol=1e-4)


def test_metrics_normalized_by_box_size():
    batch = {"landmarks": jnp.array([[[[10.0, 10.0], [20.0, 10.0]]]]), "landmarks_mask": jnp.array([[[True, False]]]),
             "mask": jnp.array([[True]]), "boxes": jnp.array([[[0.0, 0.0, 40.0, 20.0]]])}
    pred = jnp.array([[[13.0, 14.0], [0.0, 0.0]]])  # error 5 px, box size max(40, 20) = 40 -> 0.125
    m = landmarks.landmark_metrics(pred, batch, alpha=0.1)
    np.testing.assert_allclose(m["error"][0, 0], 0.125)
    assert m["correct"][0, 0] == 0 and list(np.asarray(m["valid"][0])) == [True, False]
    assert landmarks.landmark_metrics(pred, batch, alpha=0.15)["correct"][0, 0] == 1
