"""multiclass_nms / batched_postprocess: torchvision SSD postprocess semantics with fixed shapes."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from jaxvision.models.detection import batched_postprocess, make_loss_fn, multiclass_nms

BOXES = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
SCORES = np.array([[0.9, 0.05], [0.8, 0.7], [0.005, 0.6], [0.3, 0.02]], np.float32)


def test_hand_example():
    det = jax.jit(lambda b, s: multiclass_nms(b, s, 0.01, 0.45, max_detections=5))(BOXES, SCORES)
    assert int(det.num_valid) == 3
    np.testing.assert_allclose(det.scores, [0.9, 0.7, 0.6, 0, 0])
    assert list(np.asarray(det.classes)) == [0, 1, 1, -1, -1]
    np.testing.assert_allclose(det.boxes[:3], BOXES[[0, 1, 2]])
    assert np.all(np.asarray(det.boxes[3:]) == 0)


def test_topk_candidates_and_class_specific_boxes():
    det = multiclass_nms(BOXES, SCORES, 0.01, 0.45, max_detections=5, topk_candidates=1)
    assert int(det.num_valid) == 2 and list(np.asarray(det.classes[:2])) == [0, 1]
    per_class = np.stack([BOXES, BOXES + 100], 1)  # [A, C, 4]: class 1 boxes shifted
    det = multiclass_nms(per_class, SCORES, 0.01, 0.45, max_detections=5)
    np.testing.assert_allclose(det.boxes[1], BOXES[1] + 100)


def test_batched_fixed_shapes():
    det = batched_postprocess(jnp.stack([BOXES, BOXES]), jnp.stack([SCORES, SCORES * 0]), max_detections=7)
    assert det.boxes.shape == (2, 7, 4) and det.scores.shape == (2, 7) and det.classes.shape == (2, 7)
    assert list(np.asarray(det.num_valid)) == [3, 0]
    with pytest.raises(ValueError, match="scores"):
        batched_postprocess(jnp.stack([BOXES]), jnp.asarray(SCORES))


def test_matches_torchvision_postprocess():
    torch = pytest.importorskip("torch")
    from torchvision.ops import batched_nms as tv_batched_nms

    rng = np.random.RandomState(0)
    a, c = 300, 4
    xy = rng.uniform(0, 80, (a, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (a, 2))], 1).astype(np.float32)
    scores = rng.dirichlet(np.ones(c + 1), a)[:, 1:].astype(np.float32)
    det = multiclass_nms(boxes, scores, 0.01, 0.45, max_detections=50, topk_candidates=100)
    # torchvision SSD.postprocess_detections
    tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
    ib, isc, il = [], [], []
    for k in range(c):
        s = ts[:, k]
        keep = s > 0.01
        s, b = s[keep], tb[keep]
        s, idx = s.topk(min(100, s.numel()))
        ib.append(b[idx]), isc.append(s), il.append(torch.full_like(s, k, dtype=torch.int64))
    b, s, lab = torch.cat(ib), torch.cat(isc), torch.cat(il)
    keep = tv_batched_nms(b, s, lab, 0.45)[:50]
    n = int(det.num_valid)
    assert n == len(keep)
    np.testing.assert_allclose(det.scores[:n], s[keep].numpy(), rtol=1e-6)
    np.testing.assert_array_equal(det.classes[:n], lab[keep].numpy())
    np.testing.assert_allclose(det.boxes[:n], b[keep].numpy(), rtol=1e-6)


class _Sampler(nn.Module):
    """A toy two-stage forward: a learned scale times one random draw from the 'sample' stream."""

    @nn.compact
    def __call__(self, images, train=False, targets=None):
        scale = self.param("scale", nn.initializers.ones, ())
        out = {"value": scale * jnp.mean(images)}
        if targets is not None:
            out["draw"] = jax.random.uniform(self.make_rng("sample"), ())
            out["num_gt"] = jnp.sum(targets["mask"])
        return out


def test_make_loss_fn_two_stage_options():
    model = _Sampler()
    batch = {"image": jnp.ones((2, 4, 4, 3)), "mask": jnp.array([[True, False], [True, True]])}
    params = model.init(jax.random.PRNGKey(0), batch["image"])["params"]
    seen = {}

    def head_loss(outputs, batch, rng=None):
        seen["rng"] = rng
        extra = outputs.get("draw", 0.0) + outputs.get("num_gt", 0) + (0.0 if rng is None else
                                                                      jax.random.uniform(rng, ()))
        return outputs["value"] + extra, {}

    one_stage = make_loss_fn(model, head_loss)(params, {}, batch, jax.random.PRNGKey(1))[0]
    assert seen["rng"] is None and float(one_stage) == pytest.approx(1.0)
    k0, k1, k2 = jax.random.split(jax.random.PRNGKey(1), 3)
    value = make_loss_fn(model, head_loss, targets=True, loss_rng=True)(params, {}, batch, jax.random.PRNGKey(1))[0]
    draw = model.apply({"params": params}, batch["image"], targets=batch, rngs={"sample": k1})["draw"]
    assert float(value) == pytest.approx(1.0 + float(draw) + 3 + float(jax.random.uniform(k2, ())))
    assert seen["rng"] is not None
