"""IoU family and IoU losses: NumPy references, torchvision parity (golden file + live when torch exists),
properties, zero-area/NaN safety, dtypes, jit/vmap/grad and input checks."""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxvision import ops

GOLDEN = pathlib.Path(__file__).parent / "fixtures" / "nms_golden.npz"
PAIRWISE = ("box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou")
LOSSES = ("generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss")
# jitted once per function: op-by-op eager dispatch is far slower than a compiled call on a busy 2-core box
J = {name: jax.jit(getattr(ops, name)) for name in PAIRWISE}
J.update({name: jax.jit(getattr(ops, name), static_argnames=("reduction", "eps")) for name in LOSSES})


# ------------------------------------------------------------------------------ NumPy references (float64)


def np_pairwise(name, b1, b2, eps=1e-7):
    b1, b2 = np.asarray(b1, np.float64), np.asarray(b2, np.float64)
    a1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    a2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    lt = np.maximum(b1[:, None, :2], b2[None, :, :2])
    rb = np.minimum(b1[:, None, 2:], b2[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = a1[:, None] + a2[None, :] - inter
    iou = inter / union
    if name == "box_iou":
        return iou
    elt = np.minimum(b1[:, None, :2], b2[None, :, :2])
    erb = np.maximum(b1[:, None, 2:], b2[None, :, 2:])
    ewh = np.clip(erb - elt, 0, None)
    if name == "generalized_box_iou":
        area_c = ewh[..., 0] * ewh[..., 1]
        return iou - (area_c - union) / area_c
    c1 = (b1[:, :2] + b1[:, 2:]) / 2
    c2 = (b2[:, :2] + b2[:, 2:]) / 2
    d2 = ((c1[:, None] - c2[None]) ** 2).sum(-1)
    diou = iou - d2 / ((ewh**2).sum(-1) + eps)
    if name == "distance_box_iou":
        return diou
    at1 = np.arctan((b1[:, 2] - b1[:, 0]) / (b1[:, 3] - b1[:, 1]))
    at2 = np.arctan((b2[:, 2] - b2[:, 0]) / (b2[:, 3] - b2[:, 1]))
    v = 4 / np.pi**2 * (at1[:, None] - at2[None]) ** 2
    alpha = v / (1 - iou + v + eps)
    return diou - alpha * v


def np_loss(name, b1, b2, reduction="none", eps=1e-7):
    """Elementwise losses: the diagonal of the pairwise functions, with torchvision's eps placement."""
    b1, b2 = np.asarray(b1, np.float64), np.asarray(b2, np.float64)
    w = np.minimum(b1[:, 2], b2[:, 2]) - np.maximum(b1[:, 0], b2[:, 0])
    h = np.minimum(b1[:, 3], b2[:, 3]) - np.maximum(b1[:, 1], b2[:, 1])
    inter = np.where((w > 0) & (h > 0), w * h, 0)
    union = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1]) + (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1]) - inter
    iou = inter / (union + eps)
    ew = np.maximum(b1[:, 2], b2[:, 2]) - np.minimum(b1[:, 0], b2[:, 0])
    eh = np.maximum(b1[:, 3], b2[:, 3]) - np.minimum(b1[:, 1], b2[:, 1])
    if name == "generalized_box_iou_loss":
        loss = 1 - (iou - (ew * eh - union) / (ew * eh + eps))
    else:
        d2 = ((b1[:, :2] + b1[:, 2:]) / 2 - (b2[:, :2] + b2[:, 2:]) / 2) ** 2
        loss = 1 - iou + d2.sum(-1) / (ew**2 + eh**2 + eps)
        if name == "complete_box_iou_loss":
            at1 = np.arctan((b1[:, 2] - b1[:, 0]) / (b1[:, 3] - b1[:, 1]))
            at2 = np.arctan((b2[:, 2] - b2[:, 0]) / (b2[:, 3] - b2[:, 1]))
            v = 4 / np.pi**2 * (at2 - at1) ** 2
            loss = loss + v / (1 - iou + v + eps) * v
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


def random_boxes(rng, n, size=100.0, max_wh=50.0):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(1, max_wh, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


# -------------------------------------------------------------------------------------------- values


@pytest.mark.parametrize("name", PAIRWISE)
def test_pairwise_matches_numpy(name):
    rng = np.random.default_rng(0)
    b1, b2 = random_boxes(rng, 13), random_boxes(rng, 9)
    got = J[name](b1, b2)
    assert got.shape == (13, 9) and got.dtype == jnp.float32
    np.testing.assert_allclose(got, np_pairwise(name, b1, b2), atol=2e-6)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name", LOSSES)
def test_losses_match_numpy(name, reduction):
    rng = np.random.default_rng(1)
    b1, b2 = random_boxes(rng, 21), random_boxes(rng, 21)
    got = J[name](b1, b2, reduction=reduction)
    np.testing.assert_allclose(got, np_loss(name, b1, b2, reduction), rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("name", PAIRWISE)
def test_pairwise_golden_torchvision(name):
    d = np.load(GOLDEN)
    got = J[name](d["pair_boxes1"], d["pair_boxes2"])
    np.testing.assert_allclose(got, d[f"pair_{name}"], atol=1e-6)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name", LOSSES)
def test_losses_golden_torchvision(name, reduction):
    d = np.load(GOLDEN)
    got = J[name](d["loss_boxes1"], d["loss_boxes2"], reduction=reduction)
    np.testing.assert_allclose(got, d[f"loss_{name}_{reduction}"], rtol=1e-6, atol=1e-6)


def test_live_torchvision_parity():
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision.ops")
    rng = np.random.default_rng(7)
    b1, b2 = random_boxes(rng, 40), random_boxes(rng, 30)
    for name in PAIRWISE:
        want = getattr(tv, name)(torch.from_numpy(b1), torch.from_numpy(b2)).numpy()
        np.testing.assert_allclose(getattr(ops, name)(b1, b2), want, atol=1e-6)
    for name in LOSSES:
        for red in ("none", "mean", "sum"):
            want = getattr(tv, name)(torch.from_numpy(b1[:30]), torch.from_numpy(b2), reduction=red).numpy()
            np.testing.assert_allclose(getattr(ops, name)(b1[:30], b2, reduction=red), want, rtol=1e-6, atol=1e-6)


def test_batched_leading_axes_and_single_box_losses():
    rng = np.random.default_rng(2)
    b1, b2 = random_boxes(rng, 12).reshape(2, 6, 4), random_boxes(rng, 10).reshape(2, 5, 4)
    got = J["complete_box_iou"](b1, b2)
    assert got.shape == (2, 6, 5)
    for i in range(2):
        np.testing.assert_allclose(got[i], np_pairwise("complete_box_iou", b1[i], b2[i]), atol=2e-6)
    loss = J["distance_box_iou_loss"](b1[0, 0], b2[0, 0])  # [4] x [4] -> scalar
    assert loss.shape == ()
    np.testing.assert_allclose(loss, np_loss("distance_box_iou_loss", b1[0, :1], b2[0, :1])[0], rtol=1e-5)


def test_empty_inputs():
    e = np.zeros((0, 4), np.float32)
    assert ops.generalized_box_iou(e, random_boxes(np.random.default_rng(0), 3)).shape == (0, 3)
    assert float(ops.generalized_box_iou_loss(e, e, reduction="mean")) == 0.0
    assert float(ops.complete_box_iou_loss(e, e, reduction="sum")) == 0.0


# ------------------------------------------------------------------------------ degenerate boxes, grads


DEGENERATE = np.array(
    [[5, 5, 5, 5], [0, 0, 0, 0], [1, 2, 8, 2], [3, 1, 3, 9], [0, 0, 10, 10], [2, 2, 4, 6]], np.float32
)


@pytest.mark.parametrize("name", PAIRWISE)
def test_zero_area_boxes_no_nan_values_or_grads(name):
    f = getattr(ops, name)
    out = J[name](DEGENERATE, DEGENERATE)
    assert np.isfinite(np.asarray(out)).all()
    if name == "box_iou":
        assert float(out[0, 0]) == 0.0 and float(out[1, 1]) == 0.0  # zero union -> 0, not NaN
        assert float(out[4, 4]) == 1.0
    g = jax.jit(jax.grad(lambda b: f(b, b[::-1]).sum()))(jnp.asarray(DEGENERATE))
    assert np.isfinite(np.asarray(g)).all()


@pytest.mark.parametrize("name", LOSSES)
def test_losses_degenerate_no_nan(name):
    f = getattr(ops, name)
    for eps in (1e-7, 0.0):
        out = J[name](DEGENERATE, DEGENERATE, eps=eps)
        assert np.isfinite(np.asarray(out)).all()
        g = jax.jit(jax.grad(lambda b: f(b, DEGENERATE[::-1], reduction="sum", eps=eps)))(jnp.asarray(DEGENERATE))
        assert np.isfinite(np.asarray(g)).all()


def test_loss_gradients_match_finite_differences():
    rng = np.random.default_rng(3)
    b1, b2 = random_boxes(rng, 4).astype(np.float64), random_boxes(rng, 4).astype(np.float64)
    for name in ("generalized_box_iou_loss", "distance_box_iou_loss"):
        f = getattr(ops, name)
        grad = jax.jit(jax.grad(lambda b: f(b, jnp.asarray(b2, jnp.float32), reduction="sum")))
        g = np.asarray(grad(jnp.asarray(b1, jnp.float32)))
        h = 1e-2
        num = np.zeros_like(b1)
        for idx in np.ndindex(*b1.shape):
            bp, bm = b1.copy(), b1.copy()
            bp[idx] += h
            bm[idx] -= h
            num[idx] = (np_loss(name, bp, b2, "sum") - np_loss(name, bm, b2, "sum")) / (2 * h)
        np.testing.assert_allclose(g, num, rtol=2e-2, atol=2e-4)


def test_ciou_alpha_is_constant_under_grad():
    """torchvision computes alpha under no_grad: d/dv of (alpha * v) is alpha, not alpha + v * dalpha/dv."""
    b1 = jnp.asarray([[0.0, 0.0, 10.0, 4.0]])
    b2 = jnp.asarray([[1.0, 1.0, 6.0, 9.0]])
    g_c = jax.jit(jax.grad(lambda b: ops.complete_box_iou_loss(b, b2, "sum")))(b1)
    g_d = jax.jit(jax.grad(lambda b: ops.distance_box_iou_loss(b, b2, "sum")))(b1)
    iou = float(J["box_iou"](b1, b2)[0, 0])
    w, h = 10.0, 4.0
    at = np.arctan(5 / 8) - np.arctan(w / h)  # atan(w_gt/h_gt) - atan(w/h)
    v = 4 / np.pi**2 * at**2
    alpha = v / (1 - iou + v + 1e-7)
    # dv/dx2 = dv/dw = 8/pi^2 * at * (-(1/h) / (1 + (w/h)^2))
    dv_dw = 8 / np.pi**2 * at * (-(1 / h) / (1 + (w / h) ** 2))
    np.testing.assert_allclose(float(g_c[0, 2] - g_d[0, 2]), alpha * dv_dw, rtol=1e-4)


# ----------------------------------------------------------------------------------------- properties


coords = st.floats(0, 100, width=32, allow_subnormal=False)
sides = st.one_of(st.just(0.0), st.floats(0.0625, 60, width=32))  # XLA flushes subnormals: keep away from them
box_st = st.tuples(coords, coords, sides, sides).map(
    lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]]
)
boxes_st = st.lists(box_st, min_size=6, max_size=6).map(lambda b: np.asarray(b, np.float32))  # fixed shape


@settings(max_examples=40, deadline=None)
@given(boxes_st, boxes_st)
def test_iou_properties(b1, b2):
    iou12 = np.asarray(J["box_iou"](b1, b2))
    iou21 = np.asarray(J["box_iou"](b2, b1))
    np.testing.assert_allclose(iou12, iou21.T, atol=1e-6)
    assert np.isfinite(iou12).all() and (iou12 >= 0).all() and (iou12 <= 1 + 1e-6).all()
    self_iou = np.diag(np.asarray(J["box_iou"](b1, b1)))
    area = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    np.testing.assert_allclose(self_iou[area > 0], 1.0, atol=1e-6)
    assert (self_iou[area == 0] == 0).all()
    for name in ("generalized_box_iou", "distance_box_iou"):
        v = np.asarray(J[name](b1, b2))
        assert np.isfinite(v).all() and (v >= -1 - 1e-6).all() and (v <= 1 + 1e-6).all()
        np.testing.assert_allclose(v, np.asarray(J[name](b2, b1)).T, atol=1e-5)


# ------------------------------------------------------------------------------- dtypes and transforms


@pytest.mark.parametrize("name", PAIRWISE)
def test_bfloat16(name):
    rng = np.random.default_rng(4)
    b1, b2 = random_boxes(rng, 6), random_boxes(rng, 5)
    b1h, b2h = jnp.asarray(b1, jnp.bfloat16), jnp.asarray(b2, jnp.bfloat16)
    got = J[name](b1h, b2h)
    assert got.dtype == jnp.bfloat16
    want = np_pairwise(name, np.asarray(b1h, np.float32), np.asarray(b2h, np.float32))
    np.testing.assert_allclose(np.asarray(got, np.float32), want, atol=1e-2)  # bf16 output rounding only
    loss = J["complete_box_iou_loss"](b1h, b1h[::-1])
    assert loss.dtype == jnp.bfloat16 and np.isfinite(np.asarray(loss, np.float32)).all()


def test_integer_boxes_promote_to_float32():
    b = np.array([[0, 0, 10, 10], [5, 5, 15, 15]], np.int32)
    got = ops.box_iou(b, b)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got[0, 1], 25 / 175, rtol=1e-6)


def test_jit_and_vmap():
    rng = np.random.default_rng(5)
    b1, b2 = random_boxes(rng, 12).reshape(3, 4, 4), random_boxes(rng, 15).reshape(3, 5, 4)
    for name in PAIRWISE:
        f = getattr(ops, name)
        np.testing.assert_allclose(jax.jit(jax.vmap(f))(b1, b2), J[name](b1, b2), atol=1e-6)
    for name in LOSSES:
        f = getattr(ops, name)
        got = jax.jit(jax.vmap(lambda a, b: f(a, b, reduction="sum")))(b1[:, :4], b2[:, :4])
        want = J[name](b1[:, :4], b2[:, :4]).sum(-1)
        np.testing.assert_allclose(got, want, rtol=1e-6)


# ----------------------------------------------------------------------------------------- bad inputs


def test_bad_inputs():
    good = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"boxes1: expected shape \[\.\.\., 4\], got \(3, 5\)"):
        ops.generalized_box_iou(np.zeros((3, 5)), good)
    with pytest.raises(ValueError, match="boxes2"):
        ops.complete_box_iou(good, np.zeros((4,)).reshape(2, 2))
    with pytest.raises(ValueError, match="reduction: expected one of"):
        ops.generalized_box_iou_loss(good, good, reduction="avg")
    with pytest.raises(ValueError, match=r"boxes1 and boxes2: expected equal shapes"):
        ops.distance_box_iou_loss(good, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="eps"):
        ops.distance_box_iou(good, good, eps=-1.0)
    with pytest.raises(ValueError, match="boxes1"):
        ops.box_iou(np.float32(3.0), good)
