"""Detection losses: torch golden fixture, NumPy references, stability, grad/jit/vmap, bad inputs."""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.ops import sigmoid_focal_loss, smooth_l1, softmax_cross_entropy

FIX = pathlib.Path(__file__).parent / "fixtures"
BETAS = {"b1": 1.0, "b05": 0.5, "b0": 0.0, "b19": 1 / 9}
FOCAL = {"std": (0.25, 2.0), "noalpha": (-1, 2.0), "g0": (0.5, 0.0), "g15": (0.75, 1.5)}


@pytest.fixture(scope="module")
def fl():
    return np.load(FIX / "matching_losses.npz")


def ref_smooth_l1(x, y, beta):
    d = np.abs(x.astype(np.float64) - y)
    return d if beta == 0 else np.where(d < beta, 0.5 * d ** 2 / beta, d - 0.5 * beta)


def ref_focal(x, t, alpha, gamma):
    x, t = x.astype(np.float64), t.astype(np.float64)
    p = 1 / (1 + np.exp(-x))
    ce = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    return loss if alpha < 0 else (alpha * t + (1 - alpha) * (1 - t)) * loss


def ref_ce(logits, labels):
    z = logits.astype(np.float64)
    z = z - z.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    picked = np.take_along_axis(logp, np.maximum(labels, 0)[..., None], -1)[..., 0]
    return np.where(labels >= 0, -picked, 0.0)


@pytest.mark.parametrize("tag", sorted(BETAS))
def test_smooth_l1(fl, tag):
    got = np.asarray(smooth_l1(fl["sl1_x"], fl["sl1_y"], BETAS[tag]))
    np.testing.assert_allclose(got, fl[f"sl1_{tag}"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got, ref_smooth_l1(fl["sl1_x"], fl["sl1_y"], BETAS[tag]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("tag", sorted(FOCAL))
def test_sigmoid_focal_loss(fl, tag):
    alpha, gamma = FOCAL[tag]
    got = np.asarray(sigmoid_focal_loss(fl["focal_x"], fl["focal_t"], alpha, gamma))
    np.testing.assert_allclose(got, fl[f"focal_{tag}"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, ref_focal(fl["focal_x"], fl["focal_t"], alpha, gamma), rtol=1e-4, atol=1e-6)
    assert np.isfinite(got).all()


def test_softmax_cross_entropy(fl):
    got = np.asarray(softmax_cross_entropy(fl["ce_logits"], fl["ce_labels"]))
    np.testing.assert_allclose(got, fl["ce"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, ref_ce(fl["ce_logits"], fl["ce_labels"]), rtol=1e-5, atol=1e-6)
    assert (got[:, :3] == 0).all()  # label -1 is ignored


def test_large_logits_are_stable():
    x = jnp.asarray([[1000.0, -1000.0, 0.0]])
    ce = softmax_cross_entropy(x, jnp.asarray([1]))
    np.testing.assert_allclose(np.asarray(ce), [2000.0])
    f = sigmoid_focal_loss(jnp.asarray([100.0, -100.0]), jnp.asarray([0.0, 1.0]))
    np.testing.assert_allclose(np.asarray(f), [0.75 * 100.0, 0.25 * 100.0], rtol=1e-6)


def test_grads_match_torch_semantics():
    # smooth_l1: gradient d/beta inside, sign(d) outside; beta = 0 is L1.
    x = jnp.asarray([0.2, -0.3, 2.0, -5.0])
    g = jax.grad(lambda v: jnp.sum(smooth_l1(v, 0.0, 1.0)))(x)
    np.testing.assert_allclose(np.asarray(g), [0.2, -0.3, 1.0, -1.0], rtol=1e-6)
    g = jax.grad(lambda v: jnp.sum(smooth_l1(v, 0.0, 0.5)))(x)
    np.testing.assert_allclose(np.asarray(g), [0.4, -0.6, 1.0, -1.0], rtol=1e-6)
    g = jax.grad(lambda v: jnp.sum(smooth_l1(v, 0.0, 0.0)))(x)
    np.testing.assert_allclose(np.asarray(g), [1, -1, 1, -1])
    # an infinite target (encode against a zero-size padding box) masked out by jnp.where: gradient stays finite.
    target = jnp.asarray([0.5, -jnp.inf, jnp.inf, 1.0])
    g = jax.grad(lambda v: jnp.sum(jnp.where(jnp.isfinite(target), smooth_l1(v, target), 0.0)))(x)
    np.testing.assert_allclose(np.asarray(g), [-0.3, 0, 0, -1.0], rtol=1e-6)
    # cross-entropy: softmax - onehot, zero for ignored rows.
    logits = jnp.asarray([[1.0, 2.0, 0.5], [0.1, 0.2, 0.3]])
    g = jax.grad(lambda z: jnp.sum(softmax_cross_entropy(z, jnp.asarray([2, -1]))))(logits)
    want = np.asarray(jax.nn.softmax(logits[0])) - np.eye(3)[2]
    np.testing.assert_allclose(np.asarray(g[0]), want, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(g[1]), 0)
    # focal: finite everywhere incl. gamma = 0 and saturated logits.
    for alpha, gamma in FOCAL.values():
        g = jax.grad(lambda z: jnp.sum(sigmoid_focal_loss(z, jnp.asarray([1.0, 0, 1, 0]), alpha, gamma)))(
            jnp.asarray([0.0, 3.0, -60.0, 60.0]))
        assert np.isfinite(np.asarray(g)).all()


def test_focal_reduces_to_bce_and_down_weights_easy():
    x = jnp.asarray([-2.0, 0.5, 3.0])
    t = jnp.asarray([0.0, 1.0, 1.0])
    bce = -(t * jax.nn.log_sigmoid(x) + (1 - t) * jax.nn.log_sigmoid(-x))
    np.testing.assert_allclose(np.asarray(sigmoid_focal_loss(x, t, -1, 0.0)), np.asarray(bce), rtol=1e-6)
    ratio = np.asarray(sigmoid_focal_loss(x, t, -1, 2.0) / bce)
    assert ratio[2] < ratio[1] < 1  # the confident correct prediction is down-weighted the most


def test_jit_vmap_and_broadcast(fl):
    logits, labels = fl["ce_logits"], fl["ce_labels"]
    got = jax.jit(jax.vmap(softmax_cross_entropy))(logits, labels)
    np.testing.assert_allclose(np.asarray(got), fl["ce"], rtol=1e-5, atol=1e-6)
    f = jax.jit(lambda a, b: sigmoid_focal_loss(a, b))(fl["focal_x"], fl["focal_t"])
    np.testing.assert_allclose(np.asarray(f), fl["focal_std"], rtol=1e-5, atol=1e-6)
    assert smooth_l1(jnp.zeros((3, 4)), jnp.zeros(4)).shape == (3, 4)
    assert smooth_l1(jnp.zeros(3, jnp.bfloat16), jnp.ones(3, jnp.bfloat16)).dtype == jnp.bfloat16
    assert softmax_cross_entropy(jnp.zeros((2, 3), jnp.bfloat16), jnp.zeros(2, jnp.int32)).dtype == jnp.bfloat16


@pytest.mark.parametrize("call, match", [
    (lambda: smooth_l1(np.zeros(3), np.zeros(3), -1.0), "beta: expected values >= 0"),
    (lambda: sigmoid_focal_loss(np.zeros(3), np.zeros(3), alpha=1.5), r"alpha: expected a float in \[0, 1\] or -1"),
    (lambda: sigmoid_focal_loss(np.zeros(3), np.zeros(3), gamma=-1.0), "gamma: expected values >= 0"),
    (lambda: softmax_cross_entropy(np.zeros((4, 3)), np.zeros(5, np.int32)), r"labels: expected shape \(4,\)"),
    (lambda: softmax_cross_entropy(np.zeros((4, 3)), np.zeros(4, np.float32)), "labels: expected an integer dtype"),
    (lambda: softmax_cross_entropy(np.zeros(()), np.zeros((), np.int32)), r"logits: expected \[..., C\]"),
])
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_ssd_style_loss_pipeline_has_finite_gradients_with_and_without_ground_truth():
    from jaxvision.ops import BoxCoder, box_iou, hard_negative_mask, ssd_default_boxes, ssd_match

    anchors = ssd_default_boxes([4, 2], 32, [[2], [2]])  # [A, 4]
    a = anchors.shape[0]
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    gt = jnp.asarray([[[4.0, 4, 20, 18], [0, 0, 0, 0]], [[0.0, 0, 0, 0], [0, 0, 0, 0]]])  # image 1: no objects
    mask = jnp.asarray([[True, False], [False, False]])
    labels = jnp.asarray([[2, -1], [-1, -1]])

    def loss(reg, logits):
        def one(reg, logits, gt, mask, labels):
            matches = ssd_match(box_iou(gt, anchors), mask)
            pos = matches >= 0
            idx = jnp.maximum(matches, 0)
            target = coder.encode(anchors, gt[idx])  # -inf dw/dh against the zero padding box
            box = jnp.sum(jnp.where(pos[:, None], smooth_l1(reg, target), 0.0))
            ce = softmax_cross_entropy(logits, jnp.where(pos, labels[idx] + 1, 0))
            neg = hard_negative_mask(ce, pos, 3)
            return box + jnp.sum(jnp.where(pos | neg, ce, 0.0)), jnp.sum(pos)

        total, npos = jax.vmap(one)(reg, logits, gt, mask, labels)
        return jnp.sum(total) / jnp.maximum(jnp.sum(npos), 1)

    reg = jnp.full((2, a, 4), 0.1)
    logits = jnp.zeros((2, a, 4)).at[..., 0].set(0.5)
    value, grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(reg, logits)
    assert np.isfinite(float(value))
    assert all(np.isfinite(np.asarray(g)).all() for g in grads)
    assert np.abs(np.asarray(grads[0][0])).sum() > 0  # image 0's positives get a box gradient
    assert np.abs(np.asarray(grads[0][1])).sum() == 0  # image 1 has no positives: no box gradient


def test_gaussian_kl_closed_form_and_shape_check():
    from jaxvision.ops import gaussian_kl

    r = np.random.default_rng(0)
    mu, logvar = r.normal(size=(3, 4)), r.normal(size=(3, 4))
    s = np.exp(0.5 * logvar)
    want = np.log(1.0 / s) + (s**2 + mu**2) / 2 - 0.5   # KL(N(mu, s^2) || N(0, 1))
    np.testing.assert_allclose(gaussian_kl(mu, logvar), want, rtol=1e-5, atol=1e-6)
    assert float(gaussian_kl(np.zeros(2), np.zeros(2)).sum()) == 0.0
    with pytest.raises(ValueError, match="logvar: expected the shape of mu"):
        gaussian_kl(np.zeros(2), np.zeros(3))
