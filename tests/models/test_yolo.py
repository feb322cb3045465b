"""YOLO v1: decode geometry, the paper's loss on a hand-built prediction, training signal, jit predict."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from det_synth import synthetic_batch, train_steps

from jaxvision.models.detection import yolo

LOGIT = lambda p: np.log(np.clip(p, 1e-6, 1 - 1e-6)) - np.log1p(-np.clip(p, 1e-6, 1 - 1e-6))  # noqa: E731


def _raw_for(boxes_xyxy, labels, s=4, nb=2, c=3, size=32, conf=0.999, other_conf=0.1):
    """Raw output whose responsible predictor (index 0) reproduces each box exactly, class prob ~1."""
    raw = np.zeros((1, s, s, 5 * nb + c), np.float32)
    raw[..., 4::5][..., :nb] = LOGIT(other_conf)
    for (x0, y0, x1, y1), lab in zip(boxes_xyxy, labels):
        cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
        j, i = int(cx / size * s), int(cy / size * s)
        tx, ty = cx / size * s - j, cy / size * s - i
        raw[0, i, j, 0:5] = LOGIT(np.array([tx, ty, np.sqrt(w / size), np.sqrt(h / size), conf]))
        raw[0, i, j, 5:10] = LOGIT(np.array([0.5, 0.5, 0.05, 0.05, other_conf]))  # tiny box, IoU ~ 0
        raw[0, i, j, 5 * nb:] = -20.0
        raw[0, i, j, 5 * nb + lab] = 20.0
    return raw


def test_decode_places_boxes():
    gt = np.array([[4.0, 6.0, 14.0, 20.0], [18.0, 17.0, 30.0, 31.0]], np.float32)
    raw = _raw_for(gt, [0, 2])
    boxes, scores = yolo.decode(jnp.asarray(raw), (32, 32), boxes_per_cell=2)
    assert boxes.shape == (1, 4 * 4 * 2, 4) and scores.shape == (1, 32, 3)
    top = np.argsort(-np.asarray(scores[0]).max(-1))[:2]
    np.testing.assert_allclose(np.sort(np.asarray(boxes[0, top]), 0), np.sort(gt, 0), atol=1e-3)


def test_paper_loss_on_exact_prediction():
    gt = np.array([[4.0, 6.0, 14.0, 20.0], [18.0, 17.0, 30.0, 31.0]], np.float32)
    raw = _raw_for(gt, [0, 2])
    batch = {"image": np.zeros((1, 32, 32, 3), np.float32), "boxes": np.concatenate([gt, np.zeros((1, 4))])[None],
             "labels": np.array([[0, 2, -1]], np.int32), "mask": np.array([[True, True, False]])}
    total, parts = yolo.loss_fn(jnp.asarray(raw), batch, boxes_per_cell=2)
    assert float(parts["coord"]) < 1e-8 and float(parts["cls"]) < 1e-8
    # responsible boxes are exact (IoU 1) with confidence 0.999 -> obj = 2 * 0.001^2;
    # noobj: 30 non-responsible predictors at 0.1 -> 30 * 0.01 (the responsible ones do not count).
    np.testing.assert_allclose(parts["obj"], 2 * 0.001**2, rtol=1e-2)
    np.testing.assert_allclose(parts["noobj"], 30 * 0.1**2, rtol=1e-4)
    np.testing.assert_allclose(total, 0.5 * 30 * 0.01 + 2e-6, rtol=1e-2)
    # lambda_coord weights the sqrt-w/h error: shrink the first box's sqrt(w) by 0.1.
    raw2 = raw.copy()
    i, j = 13 // 8, 9 // 8
    sw = 1 / (1 + np.exp(-raw2[0, i, j, 2]))
    raw2[0, i, j, 2] = LOGIT(sw - 0.1)
    _, parts2 = yolo.loss_fn(jnp.asarray(raw2), batch, boxes_per_cell=2, rescore=False)
    np.testing.assert_allclose(parts2["coord"], 0.01, rtol=1e-3)


@pytest.fixture(scope="module")
def trained():
    batch = synthetic_batch(size=32)
    model = yolo.YOLOTiny(num_classes=3, grid_size=4)
    losses, variables, finite = train_steps(model, yolo.loss_fn, batch, steps=6, lr=3e-3)
    return model, variables, batch, losses, finite


def test_shapes_and_loss_decreases(trained):
    model, variables, batch, losses, finite = trained
    assert model.apply(variables, batch["image"]).shape == (2, 4, 4, 5 * 2 + 3)
    assert finite and losses[-1] < 0.7 * losses[0], losses


def test_fc_head_shape():
    model = yolo.YOLOTiny(num_classes=3, grid_size=2, head="fc", fc_hidden=8)
    x = jnp.zeros((1, 32, 32, 3))
    v = model.init(jax.random.PRNGKey(0), x)
    assert model.apply(v, x).shape == (1, 2, 2, 13)


def test_predict_jit_fixed_shape(trained):
    model, variables, batch, _, _ = trained
    predict = yolo.predict_fn(model, max_detections=10)
    det = predict(variables, jnp.asarray(batch["image"]))
    assert det.boxes.shape == (2, 10, 4) and det.scores.shape == (2, 10) and det.num_valid.shape == (2,)
    for i in range(2):
        n = int(det.num_valid[i])
        assert np.all(det.classes[i, n:] == -1) and np.all(det.classes[i, :n] >= 0)
