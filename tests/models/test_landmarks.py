"""Landmarks: soft-argmax geometry, training signal, NME/PCK definitions."""
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


def test_soft_argmax_reads_peak_cell_centre():
    model = landmarks.LandmarkNetTiny(num_landmarks=1)
    x = jnp.zeros((1, 32, 32, 3))
    v = model.init(jax.random.PRNGKey(0), x)
    # zero the heatmap conv and put a huge bias: uniform heatmap -> expectation = image centre
    v = jax.tree_util.tree_map(lambda a: a, v)
    v["params"]["heatmap"]["kernel"] = jnp.zeros_like(v["params"]["heatmap"]["kernel"])
    out = model.apply(v, x)
    np.testing.assert_allclose(out["landmarks"][0, 0], [16.0, 16.0], atol=1e-4)


def test_metrics_normalized_by_box_size():
    batch = {"landmarks": jnp.array([[[[10.0, 10.0], [20.0, 10.0]]]]), "landmarks_mask": jnp.array([[[True, False]]]),
             "mask": jnp.array([[True]]), "boxes": jnp.array([[[0.0, 0.0, 40.0, 20.0]]])}
    pred = jnp.array([[[13.0, 14.0], [0.0, 0.0]]])  # error 5 px, box size max(40, 20) = 40 -> 0.125
    m = landmarks.landmark_metrics(pred, batch, alpha=0.1)
    np.testing.assert_allclose(m["error"][0, 0], 0.125)
    assert m["correct"][0, 0] == 0 and list(np.asarray(m["valid"][0])) == [True, False]
    assert landmarks.landmark_metrics(pred, batch, alpha=0.15)["correct"][0, 0] == 1
