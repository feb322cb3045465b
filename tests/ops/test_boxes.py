"""Box utilities: box_convert, box_area, clip_boxes_to_image, small_box_mask against NumPy references
(torchvision semantics), round trips, dtypes, jit/vmap/grad and input checks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import ops

FORMATS = ("xyxy", "xywh", "cxcywh")


def np_to_xyxy(b, fmt):
    b = np.asarray(b, np.float64)
    if fmt == "xywh":
        return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:]], -1)
    if fmt == "cxcywh":
        return np.concatenate([b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2], -1)
    return b


def np_from_xyxy(b, fmt):
    if fmt == "xywh":
        return np.concatenate([b[..., :2], b[..., 2:] - b[..., :2]], -1)
    if fmt == "cxcywh":
        return np.concatenate([(b[..., :2] + b[..., 2:]) / 2, b[..., 2:] - b[..., :2]], -1)
    return b


def random_boxes(rng, shape):
    xy = rng.uniform(-20, 100, shape + (2,))
    wh = rng.uniform(0, 50, shape + (2,))
    return np.concatenate([xy, xy + wh], -1).astype(np.float32)


@pytest.mark.parametrize("in_fmt", FORMATS)
@pytest.mark.parametrize("out_fmt", FORMATS)
def test_box_convert_matches_numpy_and_round_trips(in_fmt, out_fmt):
    rng = np.random.default_rng(0)
    src = np_from_xyxy(random_boxes(rng, (3, 5)).astype(np.float64), in_fmt).astype(np.float32)
    got = ops.box_convert(src, in_fmt, out_fmt)
    assert got.shape == (3, 5, 4) and got.dtype == jnp.float32
    np.testing.assert_allclose(got, np_from_xyxy(np_to_xyxy(src, in_fmt), out_fmt), rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(ops.box_convert(got, out_fmt, in_fmt), src, rtol=1e-6, atol=1e-4)


def test_box_area_clip_and_small_mask():
    boxes = np.array([[0, 0, 10, 5], [-5, -5, 5, 5], [8, 2, 30, 40], [3, 3, 3.5, 9], [5, 5, 2, 2]], np.float32)
    np.testing.assert_allclose(ops.box_area(boxes), [50, 100, 22 * 38, 3, 9])  # inverted box: (-3)*(-3)
    clipped = ops.clip_boxes_to_image(boxes, (20, 25))  # H=20, W=25: x in [0, 25], y in [0, 20]
    np.testing.assert_allclose(clipped, [[0, 0, 10, 5], [0, 0, 5, 5], [8, 2, 25, 20], [3, 3, 3.5, 9], [5, 5, 2, 2]])
    np.testing.assert_array_equal(ops.small_box_mask(boxes, 1.0), [True, True, True, False, False])
    np.testing.assert_array_equal(ops.small_box_mask(boxes, 0.5), [True, True, True, True, False])


def test_live_torchvision_parity():
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision.ops")
    rng = np.random.default_rng(1)
    boxes = random_boxes(rng, (40,))
    t = torch.from_numpy(boxes)
    for in_fmt in FORMATS:
        for out_fmt in FORMATS:
            want = tv.box_convert(t, in_fmt, out_fmt).numpy()
            np.testing.assert_allclose(ops.box_convert(boxes, in_fmt, out_fmt), want, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(ops.box_area(boxes), tv.box_area(t).numpy(), rtol=1e-6)
    np.testing.assert_allclose(ops.clip_boxes_to_image(boxes, (30, 60)), tv.clip_boxes_to_image(t, (30, 60)).numpy())
    keep = tv.remove_small_boxes(t, 20.0).numpy()
    np.testing.assert_array_equal(np.flatnonzero(np.asarray(ops.small_box_mask(boxes, 20.0))), keep)


def test_dtypes_jit_vmap_grad():
    rng = np.random.default_rng(2)
    boxes = random_boxes(rng, (2, 6))
    bf = jnp.asarray(boxes, jnp.bfloat16)
    assert ops.box_convert(bf, "xyxy", "cxcywh").dtype == jnp.bfloat16
    assert ops.box_area(bf).dtype == jnp.bfloat16
    f = jax.jit(jax.vmap(lambda b: ops.box_convert(b, "xyxy", "xywh")))
    np.testing.assert_allclose(f(boxes), ops.box_convert(boxes, "xyxy", "xywh"))
    g = jax.jit(jax.grad(lambda b: ops.box_area(ops.box_convert(b, "cxcywh", "xyxy")).sum()))(boxes)
    np.testing.assert_allclose(g[..., 2], boxes[..., 3], rtol=1e-6)  # d(w*h)/dw = h
    np.testing.assert_allclose(g[..., :2], 0, atol=1e-6)


def test_bad_inputs():
    b = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"in_fmt: expected one of \('xyxy', 'xywh', 'cxcywh'\), got 'xyhw'"):
        ops.box_convert(b, "xyhw", "xyxy")
    with pytest.raises(ValueError, match="out_fmt: expected one of"):
        ops.box_convert(b, "xyxy", "yxyx")
    with pytest.raises(ValueError, match=r"boxes: expected shape \[\.\.\., 4\], got \(3, 5\)"):
        ops.box_area(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="size: expected values > 0"):
        ops.clip_boxes_to_image(b, (0, 10))
    with pytest.raises(ValueError, match="size: expected an int or a pair"):
        ops.clip_boxes_to_image(b, (1, 2, 3))
    with pytest.raises(ValueError, match="boxes"):
        ops.small_box_mask(np.zeros((4,)).reshape(1, 1, 4)[..., :3], 1.0)
