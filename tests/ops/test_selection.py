"""take_valid: gathering with -1-padded index arrays (nms / batched_nms / soft_nms results) never aliases a box."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import ops
from jaxvision.ops import take_valid


def _boxes(n, seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 50, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(5, 20, (n, 2))], 1).astype(np.float32), rng.random(n).astype(np.float32)


def test_padding_is_filled_not_aliased_to_the_last_box():
    boxes, scores = _boxes(30)
    keep, n = ops.nms(boxes, scores, 0.3, max_output_size=30)
    n = int(n)
    assert n < 30 and np.all(np.asarray(keep)[n:] == -1)
    naive = np.asarray(jnp.asarray(boxes)[keep])
    np.testing.assert_array_equal(naive[n:], np.broadcast_to(boxes[-1], (30 - n, 4)))  # the trap
    got = np.asarray(take_valid(boxes, keep))
    np.testing.assert_array_equal(got[:n], boxes[np.asarray(keep)[:n]])
    np.testing.assert_array_equal(got[n:], 0)
    np.testing.assert_array_equal(np.asarray(take_valid(scores, keep, -1.0))[n:], -1.0)


def test_batched_and_soft_nms_results():
    boxes, scores = _boxes(40, 1)
    classes = np.arange(40) % 3
    keep, n = ops.batched_nms(boxes, scores, classes, 0.5, max_output_size=40)
    got = np.asarray(take_valid(classes, keep, -1))
    np.testing.assert_array_equal(got[: int(n)], classes[np.asarray(keep)[: int(n)]])
    assert np.all(got[int(n):] == -1)
    order, _, new_scores = ops.soft_nms(boxes, scores, 0.3)
    sel = np.asarray(order) >= 0
    want = np.asarray(new_scores)[np.asarray(order)[sel]]
    np.testing.assert_array_equal(np.asarray(take_valid(new_scores, order))[sel], want)


def test_jit_vmap_grad_axis_and_out_of_range():
    x = jnp.arange(12.0).reshape(3, 4)
    idx = jnp.array([2, -1, 0, 7])  # 7 >= N is not selected either (JAX would clamp it to the last row)
    want = np.array([[8, 9, 10, 11], [0, 0, 0, 0], [0, 1, 2, 3], [0, 0, 0, 0]], np.float32)
    np.testing.assert_array_equal(jax.jit(take_valid)(x, idx), want)
    np.testing.assert_array_equal(take_valid(x, jnp.array([3, 1, -1]), fill=-5, axis=1),
                                  [[3, 1, -5], [7, 5, -5], [11, 9, -5]])
    batched = jax.vmap(take_valid)(jnp.stack([x, x + 100]), jnp.stack([idx, idx[::-1]]))
    np.testing.assert_array_equal(batched[1], take_valid(x + 100, idx[::-1]))
    grad = jax.grad(lambda x: take_valid(x, idx).sum())(x)
    np.testing.assert_array_equal(grad, [[1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]])
    assert take_valid(x, idx.reshape(2, 2)).shape == (2, 2, 4)


@pytest.mark.parametrize("call, message", [
    (lambda: take_valid(np.zeros(3), np.array([0.0])), "indices: expected an integer array"),
    (lambda: take_valid(np.zeros(3), np.array([0]), axis=1), r"axis: expected an int in \[-1, 1\)"),
    (lambda: take_valid(np.zeros(3), np.array([0]), fill=np.zeros(2)), r"fill: expected a scalar, got shape \(2,\)"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
