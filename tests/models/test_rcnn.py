"""R-CNN and Fast R-CNN: the losses against hand computations, training forward / decode of tiny models (images
without objects, padding proposals), bad inputs. (Their region sampling is roi_heads.sample_rois, tested with
Faster R-CNN.)"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.models.detection import fast_rcnn, rcnn
from jaxvision.ops import BoxCoder, smooth_l1

GT = np.array([[10, 10, 30, 30], [40, 40, 60, 56], [0, 0, 0, 0]], np.float32)
GT_LABELS = np.array([2, 5, -1], np.int32)
GT_MASK = np.array([True, True, False])


def _proposals():
    props = np.array([[10, 10, 30, 31],     # IoU ~0.95 with gt0
                      [40, 40, 60, 50],     # 0.625 with gt1
                      [12, 12, 40, 40],     # ~0.33 with gt0: background [0.1, 0.5)
                      [0, 0, 64, 64],       # ~0.1 with gt0
                      [60, 0, 64, 4],       # 0: background only for R-CNN
                      [1, 1, 2, 2]], np.float32)  # padding below
    return props, np.array([True, True, True, True, True, False])


def _outputs(rng, weights):
    b, r, k = 2, 5, 3
    rois = np.concatenate([rng.uniform(0, 20, (b, r, 2)), rng.uniform(25, 40, (b, r, 2))], -1).astype(np.float32)
    gt = rois + rng.uniform(-3, 3, rois.shape).astype(np.float32)
    gt[1, 4] = rois[1, 4] + [0, 0, rois[1, 4, 2] - rois[1, 4, 0], 0]  # twice as wide: IoU 0.5, below R-CNN's 0.6
    labels = np.array([[1, 0, 3, 2, 0], [0, 0, 2, 1, 3]], np.int32)
    targets = np.where((labels > 0)[..., None], np.asarray(BoxCoder(weights).encode(rois, gt)), 0.0)
    return {"cls_logits": rng.normal(size=(b, r, k + 1)).astype(np.float32),
            "box_deltas": rng.normal(size=(b, r, k + 1, 4)).astype(np.float32), "rois": rois,
            "roi_mask": np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool), "roi_labels": labels,
            "roi_targets": targets.astype(np.float32)}, gt


def _ce(logits, label):
    z = logits - logits.max()
    return float(np.log(np.exp(z).sum()) - z[label])


def test_fast_rcnn_loss_matches_hand_computation():
    o, gt = _outputs(np.random.default_rng(0), fast_rcnn.BOX_WEIGHTS)
    loss, m = fast_rcnn.loss_fn(o, None)
    cls = box = 0.0
    n = 0
    for i in range(2):
        for j in range(5):
            if not o["roi_mask"][i, j]:
                continue
            n += 1
            lab = o["roi_labels"][i, j]
            cls += _ce(o["cls_logits"][i, j], lab)
            if lab > 0:
                t = BoxCoder(fast_rcnn.BOX_WEIGHTS).encode(o["rois"][i, j], gt[i, j])
                box += float(jnp.sum(smooth_l1(o["box_deltas"][i, j, lab], t, beta=1.0)))
    np.testing.assert_allclose([m["cls_loss"], m["box_loss"], loss], [cls / n, box / n, (cls + box) / n],
                               rtol=1e-5)
    assert float(m["fg_fraction"]) == pytest.approx(5 / 8)


def test_rcnn_loss_regresses_only_iou_06_foreground():
    o, gt = _outputs(np.random.default_rng(1), rcnn.REGRESSION_WEIGHTS)
    loss, m = rcnn.loss_fn(o, None, regression_iou=0.6)
    sq = []
    ces = [_ce(o["cls_logits"][i, j], o["roi_labels"][i, j]) for i, j in zip(*np.nonzero(o["roi_mask"]))]
    for i, j in zip(*np.nonzero(o["roi_mask"] & (o["roi_labels"] > 0))):
        if rcnn._pairwise_iou(o["rois"][i, j], gt[i, j]) >= 0.6:
            t = rcnn.REGRESSION_CODER.encode(o["rois"][i, j], gt[i, j])
            sq.append(float(jnp.sum((o["box_deltas"][i, j, o["roi_labels"][i, j]] - t) ** 2)))
    assert len(sq) == 4  # foreground (0, 0), (0, 2), (1, 2), (1, 3); not (1, 4) (IoU 0.5) nor the padding (0, 3)
    np.testing.assert_allclose([m["cls_loss"], m["box_loss"], loss], [np.mean(ces), np.mean(sq),
                                                                      np.mean(ces) + np.mean(sq)], rtol=1e-5)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    props, pmask = _proposals()
    img = rng.uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    return {"image": img, "boxes": np.stack([GT, GT]), "labels": np.stack([GT_LABELS, GT_LABELS]),
            "mask": np.stack([GT_MASK, np.zeros(3, bool)]),  # the second image has no objects
            "proposals": np.stack([props, props]), "proposal_mask": np.stack([pmask, np.zeros(6, bool)])}


@pytest.mark.parametrize("module, factory", [(rcnn, rcnn.RCNNTiny), (fast_rcnn, fast_rcnn.FastRCNNTiny)])
def test_tiny_training_loss_and_decode(module, factory, batch):
    """Training forward + loss (an image without objects and proposals included) and test-time decode (no
    proposals: all scores 0, so ``multiclass_nms`` keeps nothing). The train step and predict are compiled by the
    experiments' TINY runs (tests/experiments/test_proposal_experiments.py)."""
    model = factory(num_classes=6)
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))

    @jax.jit
    def train_loss(variables):
        out, _ = model.apply(variables, batch["image"], train=True, targets=batch,
                             rngs={"sample": jax.random.PRNGKey(1)}, mutable=["batch_stats"])
        return module.loss_fn(out, batch), out["roi_mask"]

    (value, metrics), roi_mask = train_loss(variables)
    assert np.isfinite(float(value)) and all(np.isfinite(float(v)) for v in metrics.values())
    assert int(roi_mask[0].sum()) > 0
    assert int(roi_mask[1].sum()) == 0  # no objects, no proposals: nothing to train on, and no NaN

    @jax.jit
    def decoded(variables):
        out = model.apply(variables, batch["image"], proposals=batch["proposals"],
                          proposal_mask=batch["proposal_mask"])
        return module.decode(out, (64, 64))

    boxes, scores = decoded(variables)
    assert boxes.shape == (2, 6, 6, 4) and scores.shape == (2, 6, 6)  # K = 6 classes, background dropped
    assert np.all(np.isfinite(np.asarray(boxes))) and float(jnp.abs(scores[1]).max()) == 0.0
    assert float(scores[0, 5].max()) == 0.0  # the padding proposal
    with pytest.raises(ValueError, match="proposals"):
        model.apply(variables, batch["image"])
    with pytest.raises(ValueError, match="proposal_mask"):
        model.apply(variables, batch["image"], proposals=batch["proposals"])
    with pytest.raises(ValueError, match="proposals"):
        model.apply(variables, batch["image"], proposals=batch["proposals"][0], proposal_mask=batch["mask"])
