"""Localization: output shapes and ranges, both multitask losses train, predict + metrics."""
import jax.numpy as jnp
import numpy as np
import pytest
from det_synth import synthetic_batch, train_steps

from jaxvision.models.detection import Detections, localization


@pytest.mark.parametrize("box_loss", ["smooth_l1", "giou"])
def test_loss_decreases_and_outputs(box_loss):
    batch = synthetic_batch(size=32, num_valid=(1,))
    model = localization.LocalizerTiny(num_classes=3)
    head = lambda o, b: localization.loss_fn(o, b, box_loss=box_loss)  # noqa: E731
    losses, variables, finite = train_steps(model, head, batch, steps=6, lr=3e-3)
    assert finite and losses[-1] < 0.7 * losses[0], losses
    out = model.apply(variables, batch["image"])
    assert out["logits"].shape == (2, 3) and out["boxes"].shape == (2, 4)
    assert np.all(np.asarray(out["boxes"][:, 2:] >= out["boxes"][:, :2]))
    det = localization.predict_fn(model)(variables, jnp.asarray(batch["image"]))
    assert np.all((np.asarray(det.boxes) >= 0) & (np.asarray(det.boxes) <= 32))
    assert isinstance(det, Detections) and det.boxes.shape == (2, 1, 4) and list(det.num_valid) == [1, 1]
    m = localization.localization_metrics(det, batch)
    assert m["iou"].shape == (2,) and np.all((m["iou"] >= 0) & (m["iou"] <= 1))


def test_metrics_values():
    batch = {"boxes": jnp.array([[[0.0, 0.0, 10.0, 10.0]], [[0.0, 0.0, 10.0, 10.0]]]),
             "labels": jnp.array([[1], [2]]), "mask": jnp.array([[True], [True]])}
    det = Detections(boxes=jnp.array([[[0.0, 0.0, 10.0, 10.0]], [[5.0, 0.0, 15.0, 10.0]]]),
                     scores=jnp.ones((2, 1)), classes=jnp.array([[1], [0]]), num_valid=jnp.ones(2, jnp.int32))
    m = localization.localization_metrics(det, batch)
    np.testing.assert_allclose(m["accuracy"], [1.0, 0.0])
    np.testing.assert_allclose(m["iou"], [1.0, 50 / 150], rtol=1e-6)


def test_bad_box_loss():
    batch = synthetic_batch(size=32, num_valid=(1,))
    out = {"logits": jnp.zeros((2, 3)), "boxes": jnp.zeros((2, 4))}
    with pytest.raises(ValueError, match="box_loss"):
        localization.loss_fn(out, batch, box_loss="l2")
