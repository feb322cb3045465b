"""SSD: torchvision-exact loss, output shapes, the SSD300 layout, training signal, jit fixed-shape predict."""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from det_synth import synthetic_batch, train_steps

from jaxvision.models.detection import Detections, ssd

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "ssd_loss.npz"


def test_loss_matches_torchvision_compute_loss():
    f = np.load(FIXTURE)
    outputs = {"cls_logits": jnp.asarray(f["cls_logits"]), "bbox_regression": jnp.asarray(f["bbox_regression"]),
               "anchors": jnp.asarray(f["anchors"])}
    batch = {"boxes": f["boxes"], "labels": f["labels"], "mask": f["mask"]}
    loss, parts = jax.jit(ssd.loss_fn)(outputs, batch)
    np.testing.assert_allclose(parts["bbox_regression"], f["bbox_loss"], rtol=1e-5)
    np.testing.assert_allclose(parts["classification"], f["cls_loss"], rtol=1e-5)
    assert int(parts["num_pos"]) == int(f["num_pos"])
    np.testing.assert_allclose(loss, f["bbox_loss"] + f["cls_loss"], rtol=1e-5)


def test_ssd300_matches_torchvision_layout():
    model = ssd.SSD300(num_classes=20)
    x = jax.ShapeDtypeStruct((1, 300, 300, 3), jnp.float32)
    out, variables = jax.eval_shape(lambda im: model.init_with_output(jax.random.PRNGKey(0), im), x)
    assert out["anchors"].shape == (8732, 4)
    assert out["cls_logits"].shape == (1, 8732, 21) and out["bbox_regression"].shape == (1, 8732, 4)
    # torchvision.models.detection.ssd300_vgg16(num_classes=21) has exactly this many parameters.
    assert sum(int(np.prod(a.shape)) for a in jax.tree.leaves(variables["params"])) == 26_285_486


@pytest.fixture(scope="module")
def trained():
    batch = synthetic_batch(size=32)
    model = ssd.SSDTiny(num_classes=3)
    losses, variables, finite = train_steps(model, ssd.loss_fn, batch, steps=6, lr=3e-3)
    return model, variables, batch, losses, finite


def test_tiny_shapes_and_loss_decreases(trained):
    model, variables, batch, losses, finite = trained
    out = model.apply(variables, batch["image"])
    a = out["anchors"].shape[0]
    assert a == 8 * 8 * 4 + 4 * 4 * 6 + 2 * 2 * 6 + 1 * 4  # maps 8, 4, 2, 1 at 32 px
    assert out["cls_logits"].shape == (2, a, 4) and out["bbox_regression"].shape == (2, a, 4)
    assert finite and losses[-1] < 0.7 * losses[0], losses


def test_predict_is_jitted_and_fixed_shape(trained):
    model, variables, batch, _, _ = trained
    predict = ssd.predict_fn(model, max_detections=20)
    det = predict(variables, jnp.asarray(batch["image"]))
    assert isinstance(det, Detections)
    assert det.boxes.shape == (2, 20, 4) and det.scores.shape == (2, 20) and det.classes.shape == (2, 20)
    assert det.num_valid.shape == (2,) and det.classes.dtype == jnp.int32
    for i in range(2):
        n = int(det.num_valid[i])
        assert np.all(det.classes[i, n:] == -1) and np.all(det.scores[i, n:] == 0)
        assert np.all(det.scores[i, :n] > 0.01) and np.all(np.diff(det.scores[i, :n]) <= 0)
        assert np.all((det.boxes[i, :n] >= 0) & (det.boxes[i, :n] <= 32))
    # a second batch of the same shape reuses the compiled executable
    predict(variables, jnp.asarray(batch["image"][::-1]))
    assert predict._cache_size() == 1
