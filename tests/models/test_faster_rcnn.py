"""Faster R-CNN: RPN / RoI-head target assignment, losses and postprocessing against torchvision's (golden
fixture), and the TINY model end to end (jitted train step and predict, empty images, degenerate boxes)."""
import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from det_synth import synthetic_batch

from jaxvision.models.detection import Detections, faster_rcnn, roi_heads
from jaxvision.models.detection.common import make_loss_fn, multiclass_nms
from jaxvision.ops import anchor_grid

F = np.load(pathlib.Path(__file__).parent / "fixtures" / "faster_rcnn.npz")
C = 3


def test_rpn_targets_match_torchvision():
    anchors = anchor_grid([(8, 8)], [8], ((10, 18, 30),), ((0.5, 1.0, 2.0),))
    np.testing.assert_array_equal(anchors, F["anchors"])
    for i in range(2):
        matches, targets = jax.jit(faster_rcnn.rpn_targets)(anchors, F["boxes"][i], F["mask"][i])
        labels = np.where(matches >= 0, 1.0, np.where(matches == -1, 0.0, -1.0))
        np.testing.assert_array_equal(labels, F["rpn_labels"][i])
        pos = labels == 1
        assert pos.sum() >= int(F["mask"][i].sum())
        np.testing.assert_allclose(np.asarray(targets)[pos], F["rpn_targets"][i][pos], rtol=1e-5, atol=1e-6)


def test_rpn_loss_matches_torchvision_on_all_anchors():
    a = F["anchors"].shape[0]  # sample every labelled anchor: the loss no longer depends on the key
    obj, box, _ = jax.jit(functools.partial(faster_rcnn.rpn_loss, batch_size_per_image=a, positive_fraction=1.0))(
        F["objectness"], F["rpn_deltas"], F["anchors"], F["boxes"], F["mask"], jax.random.PRNGKey(0))
    np.testing.assert_allclose(obj, F["rpn_obj_loss"], rtol=1e-5)
    np.testing.assert_allclose(box, F["rpn_box_loss"], rtol=1e-5)


def test_proposals_match_torchvision_filter_proposals():
    boxes, scores, valid = jax.jit(jax.vmap(lambda o, d: faster_rcnn.propose(o, d, F["anchors"], (64, 64), 200, 50)))(
        F["objectness"], F["rpn_deltas"])
    for i in range(2):
        n = int(F["num_proposals"][i])
        assert int(valid[i].sum()) == n
        np.testing.assert_allclose(boxes[i, :n], F["proposals"][i, :n], rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(scores[i, :n], F["proposal_scores"][i, :n], rtol=1e-5)


@pytest.fixture(scope="module")
def head_samples():
    cands = F["candidates"]
    s = cands.shape[1] + F["boxes"].shape[1]  # every candidate sampled (ground truth appended)
    fn = jax.jit(jax.vmap(functools.partial(roi_heads.sample_rois, num_samples=s, positive_fraction=1.0)))
    return fn(jax.random.split(jax.random.PRNGKey(0), 2), cands, np.ones(cands.shape[:2], bool), F["boxes"],
              F["labels"], F["mask"])


def test_roi_sampling_matches_torchvision(head_samples):
    labels = np.where(head_samples.valid, head_samples.labels, -1)
    np.testing.assert_array_equal(labels, F["head_labels"])
    fg = F["head_labels"] > 0
    assert fg.sum() > 4
    np.testing.assert_allclose(np.asarray(head_samples.targets)[fg], F["head_targets"][fg], rtol=1e-5, atol=1e-5)


def test_box_head_loss_matches_torchvision(head_samples):
    valid = np.asarray(head_samples.valid)
    logits = np.zeros(valid.shape + (C + 1,), np.float32)
    deltas = np.zeros(valid.shape + (C + 1, 4), np.float32)
    logits[valid] = F["class_logits"]
    deltas[valid] = F["box_regression"].reshape(-1, C + 1, 4)
    cls, box = jax.jit(roi_heads.box_head_loss)(logits, deltas, head_samples.labels, head_samples.targets, valid)
    np.testing.assert_allclose(cls, F["head_cls_loss"], rtol=1e-5)
    np.testing.assert_allclose(box, F["head_box_loss"], rtol=1e-5)


def test_head_decode_and_nms_match_torchvision_postprocess():
    p = F["candidates"].shape[1]
    logits = (F["class_logits"][:2 * p] * 3).reshape(2, p, C + 1)
    deltas = F["box_regression"][:2 * p].reshape(2, p, C + 1, 4)

    @jax.jit
    def post(logits, deltas, rois):
        boxes, scores = roi_heads.decode_head(logits, deltas, rois, jnp.ones((2, p), bool), (64, 64))
        return jax.vmap(lambda b, s: multiclass_nms(b, s, 0.05, 0.5, 100, p))(boxes, scores)

    det = post(logits, deltas, F["candidates"])
    for i in range(2):
        n = int(F["num_det"][i])
        assert int(det.num_valid[i]) == n
        np.testing.assert_allclose(det.scores[i, :n], F["post_scores"][i, :n], rtol=1e-5)
        np.testing.assert_array_equal(det.classes[i, :n], F["post_labels"][i, :n])
        np.testing.assert_allclose(det.boxes[i, :n], F["post_boxes"][i, :n], rtol=1e-5, atol=1e-4)


def test_fast_rcnn_background_range_ignores_low_iou():
    gt = np.array([[10, 10, 30, 30]], np.float32)
    props = np.array([[10, 10, 30, 30], [15, 10, 35, 30], [40, 40, 60, 60], [0, 0, 4, 4]], np.float32)
    m = roi_heads.match_proposals(props, np.array([True, True, True, False]), gt, np.array([True]),
                                  bg_iou_low=0.1)
    assert list(np.asarray(m)) == [0, 0, -2, -2]  # IoU 1, 0.6 fg; 0 < 0.1 ignored; padding ignored
    m = roi_heads.match_proposals(props, np.ones(4, bool), gt, np.array([True]))
    assert list(np.asarray(m)) == [0, 0, -1, -1]


@pytest.fixture(scope="module")
def tiny():
    """FasterRCNNTiny, one jitted train step and the jitted predict, shared by the end-to-end tests."""
    model = faster_rcnn.FasterRCNNTiny(num_classes=C)
    batch = synthetic_batch(size=32, max_boxes=3, num_valid=(2, 1), num_classes=C)
    batch = {k: batch[k] for k in ("image", "boxes", "labels", "mask")}
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.asarray(batch["image"]))
    loss = make_loss_fn(model, faster_rcnn.loss_fn, targets=True, loss_rng=True)
    tx = optax.adam(3e-3)

    @jax.jit
    def step(params, stats, opt, batch, key):
        (value, (stats, parts)), grads = jax.value_and_grad(loss, has_aux=True)(params, stats, batch, key)
        finite = jax.tree.reduce(lambda a, g: a & jnp.all(jnp.isfinite(g)), grads, True)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), stats, opt, value, parts, finite

    return model, variables, batch, step, tx, faster_rcnn.predict_fn(model, max_detections=10)


def test_tiny_trains_and_predicts_fixed_shapes(tiny):
    model, variables, batch, step, tx, predict = tiny
    params, stats = variables["params"], variables["batch_stats"]
    opt = tx.init(params)
    losses = []
    for i in range(6):
        params, stats, opt, value, parts, finite = step(params, stats, opt, batch, jax.random.PRNGKey(i))
        assert bool(finite) and np.isfinite(float(value))
        losses.append(float(value))
    assert float(parts["rpn_num_pos"]) >= 3 and float(parts["roi_num_fg"]) >= 3  # GT are appended to proposals
    assert losses[-1] < losses[0]
    # fixed output shapes, traced without compiling (the TINY experiment test runs the compiled predict)
    det = jax.eval_shape(predict, {"params": params, "batch_stats": stats}, jnp.asarray(batch["image"]))
    assert isinstance(det, Detections) and det.boxes.shape == (2, 10, 4) and det.classes.shape == (2, 10)
    assert det.num_valid.shape == (2,) and det.scores.shape == (2, 10)


def test_tiny_empty_images_and_degenerate_boxes_are_finite(tiny):
    model, variables, batch, step, tx, _ = tiny
    bad = dict(batch)
    bad["mask"] = np.zeros_like(batch["mask"])
    bad["mask"][1, 0] = True
    bad["boxes"] = np.array(batch["boxes"])
    bad["boxes"][1, 0] = [5, 5, 5, 12]  # zero width: ignored, like an image without objects
    opt = tx.init(variables["params"])
    _, _, _, value, parts, finite = step(variables["params"], variables["batch_stats"], opt, bad, jax.random.PRNGKey(0))
    assert bool(finite) and np.isfinite(float(value))
    assert float(parts["rpn_num_pos"]) == 0 and float(parts["roi_num_fg"]) == 0
    assert float(parts["loss_box_reg"]) == 0 and float(parts["loss_rpn_box_reg"]) == 0


def test_loss_needs_a_forward_with_targets(tiny):
    model, variables, batch, *_ = tiny
    outputs = jax.eval_shape(model.apply, variables, jnp.asarray(batch["image"]))
    with pytest.raises(ValueError, match="outputs: .*targets=True"):
        faster_rcnn.loss_fn(outputs, batch, jax.random.PRNGKey(0))


def test_classify_valid_rois_bucketed_equals_dense_and_zeroes_padding():
    """The CPU's bucketed head (the valid RoIs of all images moved to the front, one pass over the smallest bucket
    holding them) == all RoIs at once, on valid rows; padding rows are zero on both; valid RoIs not a prefix, one
    image without any, totals (of 63 slots) between bucket sizes, the last bucket, none at all."""
    rng = np.random.RandomState(0)
    features = jnp.asarray(rng.randn(3, 8, 8, 5).astype(np.float32))
    xy = rng.uniform(0, 24, (3, 21, 2))
    rois = jnp.asarray(np.concatenate([xy, xy + rng.uniform(2, 8, (3, 21, 2))], -1).astype(np.float32))
    valid = np.zeros((3, 21), bool)
    valid[0, :5] = True
    valid[1, [2, 17, 20]] = True  # image 2 has none
    head = roi_heads.RoIBoxHead(num_classes=C, representation_size=16)
    pooled = roi_heads.pool_rois(features, rois, 3, 0.25, 2)
    params = head.init(jax.random.PRNGKey(0), pooled)

    def classify(strategy, valid):
        return jax.jit(lambda v: roi_heads.classify_valid_rois(
            lambda p: head.apply(params, p), features, rois, v, strategy=strategy, output_size=3, spatial_scale=0.25,
            sampling_ratio=2))(jnp.asarray(valid))

    want_logits, want_deltas = head.apply(params, pooled)
    assert roi_heads.bucket_sizes(21) == (4, 8, 12, 16, 21)
    assert roi_heads.bucket_sizes(63) == (4, 8, 12, 16, 24, 32, 48, 63)
    crowded = np.ones((3, 21), bool)
    crowded[2, 13:] = False  # 55 valid: the last bucket (63 rows)
    middle = np.zeros((3, 21), bool)
    middle[1, ::2] = True  # 11 valid: the bucket of 12
    for mask in (valid, crowded, middle, np.zeros((3, 21), bool)):
        for strategy in ("bucketed", "dense", None):
            logits, deltas = classify(strategy, mask)
            assert logits.shape == (3, 21, C + 1) and deltas.shape == (3, 21, C + 1, 4)
            np.testing.assert_allclose(np.asarray(logits)[mask], np.asarray(want_logits)[mask], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(np.asarray(deltas)[mask], np.asarray(want_deltas)[mask], rtol=1e-5, atol=1e-6)
            assert not np.asarray(logits)[~mask].any() and not np.asarray(deltas)[~mask].any()
    with pytest.raises(ValueError, match="strategy"):
        classify("sparse", valid)
    with pytest.raises(ValueError, match="roi_valid"):
        roi_heads.classify_valid_rois(lambda p: head.apply(params, p), features, rois, jnp.asarray(valid[:, :4]))


def test_tiny_predict_head_strategies_agree(tiny):
    """At test time the model's head outputs on the CPU (bucketed) equal the accelerators' (all RoIs at once)."""
    model, variables, batch, *_ = tiny
    images = jnp.asarray(batch["image"])
    out = jax.jit(model.apply)(variables, images)
    dense = jax.jit(model.clone(head_strategy="dense").apply)(variables, images)
    valid = np.asarray(out["roi_valid"])
    assert valid.any() and (np.asarray(dense["roi_valid"]) == valid).all()
    for key in ("class_logits", "box_regression"):
        np.testing.assert_allclose(np.asarray(out[key])[valid], np.asarray(dense[key])[valid], rtol=1e-4, atol=1e-5)
