"""BoxCoder: torchvision golden fixture, NumPy reference, round trips, jit/vmap/grad, bad inputs."""
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jaxvision.ops import BoxCoder

FIX = pathlib.Path(__file__).parent / "fixtures"
CODERS = {"w1": ((1.0, 1.0, 1.0, 1.0), math.log(1000.0 / 16)),
          "w10": ((10.0, 10.0, 5.0, 5.0), math.log(1000.0 / 16)),
          "wodd": ((2.0, 0.5, 3.0, 1.5), 1.0)}


def ref_encode(anchors, boxes, weights):
    a, b = anchors.astype(np.float64), boxes.astype(np.float64)
    aw, ah = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    acx, acy = a[:, 0] + aw / 2, a[:, 1] + ah / 2
    bcx, bcy = b[:, 0] + bw / 2, b[:, 1] + bh / 2
    wx, wy, ww, wh = weights
    return np.stack([wx * (bcx - acx) / aw, wy * (bcy - acy) / ah, ww * np.log(bw / aw), wh * np.log(bh / ah)], 1)


def ref_decode(anchors, deltas, weights, clip):
    a, d = anchors.astype(np.float64), deltas.astype(np.float64)
    aw, ah = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    acx, acy = a[:, 0] + aw / 2, a[:, 1] + ah / 2
    wx, wy, ww, wh = weights
    cx, cy = d[:, 0] / wx * aw + acx, d[:, 1] / wy * ah + acy
    w, h = np.exp(np.minimum(d[:, 2] / ww, clip)) * aw, np.exp(np.minimum(d[:, 3] / wh, clip)) * ah
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


@pytest.fixture(scope="module")
def fx():
    return np.load(FIX / "coding_boxcoder.npz")


@pytest.mark.parametrize("tag", sorted(CODERS))
def test_encode_decode_match_torchvision(fx, tag):
    coder = BoxCoder(*CODERS[tag])
    enc = np.asarray(coder.encode(fx["anchors"], fx["boxes"]))
    np.testing.assert_allclose(enc, fx[f"enc_{tag}"], rtol=1e-5, atol=1e-5)
    dec = np.asarray(coder.decode(fx["anchors"], fx["deltas"]))
    np.testing.assert_allclose(dec, fx[f"dec_{tag}"], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("tag", sorted(CODERS))
def test_encode_decode_match_numpy_reference(fx, tag):
    weights, clip = CODERS[tag]
    coder = BoxCoder(weights, clip)
    np.testing.assert_allclose(np.asarray(coder.encode(fx["anchors"], fx["boxes"])),
                               ref_encode(fx["anchors"], fx["boxes"], weights), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(coder.decode(fx["anchors"], fx["deltas"])),
                               ref_decode(fx["anchors"], fx["deltas"], weights, clip), rtol=1e-4, atol=1e-3)


def test_decode_clamps_large_dw_dh(fx):
    coder = BoxCoder()
    anchors = np.asarray([[0.0, 0.0, 16.0, 16.0]], np.float32)
    out = np.asarray(coder.decode(anchors, np.asarray([[0.0, 0.0, 100.0, 100.0]], np.float32)))
    # exp(log(1000/16)) * 16 = 1000 wide, centred at 8.
    np.testing.assert_allclose(out, [[-492.0, -492.0, 508.0, 508.0]], rtol=1e-5)
    assert np.isfinite(np.asarray(coder.decode(anchors, np.full((1, 4), 1e6, np.float32)))).all()
    # only the upper side is clamped: very negative dw shrinks the box towards a point.
    tiny = np.asarray(coder.decode(anchors, np.asarray([[0.0, 0.0, -50.0, -50.0]], np.float32)))
    np.testing.assert_allclose(tiny, [[8.0, 8.0, 8.0, 8.0]], atol=1e-6)


def test_round_trip_and_identity(fx):
    for weights, _clip in CODERS.values():
        coder = BoxCoder(weights, 10.0)  # large clip so the round trip is exact for these boxes
        deltas = coder.encode(fx["anchors"], fx["boxes"])
        np.testing.assert_allclose(np.asarray(coder.decode(fx["anchors"], deltas)), fx["boxes"], rtol=1e-5, atol=1e-3)
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    np.testing.assert_allclose(np.asarray(coder.encode(fx["anchors"], fx["anchors"])), 0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(coder.decode(fx["anchors"], np.zeros((300, 4), np.float32))),
                               fx["anchors"], atol=1e-4)


_coord = st.floats(-200, 200, width=32)
_size = st.floats(2, 100, width=32)


@settings(max_examples=30, deadline=None)
@given(xy=hnp.arrays(np.float32, (2, 8, 2), elements=_coord), wh=hnp.arrays(np.float32, (2, 8, 2), elements=_size),
       weights=st.sampled_from([w for w, _ in CODERS.values()]))  # weights are static: few compiles
def test_round_trip_property(xy, wh, weights):
    anchors, boxes = np.concatenate([xy[0], xy[0] + wh[0]], -1), np.concatenate([xy[1], xy[1] + wh[1]], -1)
    coder = BoxCoder(weights)  # log(100 / 2) < log(1000 / 16): the clamp never bites here
    deltas = np.asarray(coder.encode(anchors, boxes))
    np.testing.assert_allclose(deltas, ref_encode(anchors, boxes, coder.weights), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(coder.decode(anchors, deltas)), boxes, rtol=1e-5, atol=2e-4)


def test_broadcasting_per_class_deltas(fx):
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    anchors = fx["anchors"][:20]
    deltas = fx["deltas"][:60].reshape(20, 3, 4)  # [N, K classes, 4]
    out = np.asarray(coder.decode(anchors[:, None], deltas))
    assert out.shape == (20, 3, 4)
    # encode broadcasts too: shared anchors [N, 4] against per-image boxes [B, N, 4]
    boxes = np.stack([fx["boxes"][:20], fx["boxes"][20:40]])
    enc = np.asarray(coder.encode(anchors, boxes))
    np.testing.assert_allclose(enc[1], np.asarray(coder.encode(anchors, boxes[1])), rtol=1e-5, atol=1e-6)
    for k in range(3):
        np.testing.assert_allclose(out[:, k], np.asarray(coder.decode(anchors, deltas[:, k])), rtol=1e-6)


def test_jit_vmap_grad(fx):
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    anchors = jnp.asarray(fx["anchors"][:40]).reshape(2, 20, 4)
    boxes = jnp.asarray(fx["boxes"][:40]).reshape(2, 20, 4)
    enc = jax.jit(jax.vmap(coder.encode))(anchors, boxes)
    np.testing.assert_allclose(np.asarray(enc), np.asarray(coder.encode(anchors, boxes)), rtol=1e-6, atol=1e-6)
    dec = jax.jit(jax.vmap(coder.decode))(anchors, enc)
    np.testing.assert_allclose(np.asarray(dec), np.asarray(boxes), rtol=1e-5, atol=1e-3)
    # gradient through decode (e.g. an IoU loss on decoded boxes) is finite.
    g = jax.grad(lambda d: jnp.sum(coder.decode(anchors, d) ** 2))(enc)
    assert np.isfinite(np.asarray(g)).all()
    # the coder is hashable: usable as a static argument.
    f = jax.jit(lambda c, a, d: c.decode(a, d), static_argnums=0)
    np.testing.assert_allclose(np.asarray(f(coder, anchors, enc)), np.asarray(dec), rtol=1e-6, atol=1e-4)


def test_dtypes(fx):
    coder = BoxCoder()
    a16 = jnp.asarray(fx["anchors"][:10], jnp.bfloat16)
    d16 = jnp.asarray(fx["deltas"][:10] / 10, jnp.bfloat16)
    assert coder.decode(fx["anchors"][:10], d16).dtype == jnp.bfloat16  # anchors follow the deltas
    assert coder.encode(a16, a16).dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(coder.decode(a16, d16), np.float32),
                               np.asarray(coder.decode(np.asarray(a16, np.float32), np.asarray(d16, np.float32))),
                               rtol=2e-2, atol=1.0)
    assert coder.decode(fx["anchors"][:2], np.zeros((2, 4), np.int32)).dtype == jnp.float32


def test_degenerate_target_gives_inf_like_torchvision():
    coder = BoxCoder()
    d = np.asarray(coder.encode(np.asarray([[0.0, 0, 10, 10]]), np.asarray([[5.0, 5, 5, 5]])))
    assert np.isneginf(d[0, 2:]).all() and np.isfinite(d[0, :2]).all()


@pytest.mark.parametrize("call, match", [
    (lambda: BoxCoder((1.0, 1.0, 1.0)), "weights: expected 4 values"),
    (lambda: BoxCoder((1.0, 0.0, 1.0, 1.0)), "weights: expected values > 0"),
    (lambda: BoxCoder().encode(np.zeros((3, 5)), np.zeros((3, 4))), r"anchors: expected shape \[..., 4\]"),
    (lambda: BoxCoder().encode(np.zeros((3, 4)), np.zeros((3, 2))), r"boxes: expected shape \[..., 4\]"),
    (lambda: BoxCoder().decode(np.zeros((3, 4)), np.zeros((3, 8))), r"deltas: expected shape \[..., 4\]"),
    (lambda: BoxCoder().decode(np.zeros(()), np.zeros((3, 4))), r"anchors: expected shape \[..., 4\]"),
])
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()
