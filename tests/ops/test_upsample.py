"""Unpooling ops of the lecture: the slide examples, NumPy references, torch golden indices, jit / vmap / grad
and bad inputs."""
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.ops import bed_of_nails_unpool, max_pool_with_argmax, max_unpool, nearest_unpool

FIX = pathlib.Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIX))
from make_upsample import POOL_CASES  # noqa: E402

GOLD = np.load(FIX / "upsample_max_pool.npz")
SLIDE = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)[None, :, :, None]  # [1, 2, 2, 1]


def test_slide_examples():
    np.testing.assert_array_equal(
        nearest_unpool(SLIDE, 2)[0, :, :, 0], [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    )
    np.testing.assert_array_equal(
        bed_of_nails_unpool(SLIDE, 2)[0, :, :, 0], [[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]
    )
    # max unpooling: values go back where the maxima were
    x = np.array([[1, 2, 6, 3], [3, 5, 2, 1], [1, 2, 2, 1], [7, 3, 4, 8]], np.float32)[None, :, :, None]
    pooled, argmax = max_pool_with_argmax(x, 2, 2)
    np.testing.assert_array_equal(pooled[0, :, :, 0], [[5, 6], [7, 8]])
    np.testing.assert_array_equal(argmax[0, :, :, 0], [[5, 2], [12, 15]])
    np.testing.assert_array_equal(
        max_unpool(pooled, argmax, (4, 4))[0, :, :, 0], [[0, 0, 6, 0], [0, 5, 0, 0], [0, 0, 0, 0], [7, 0, 0, 8]]
    )


@pytest.mark.parametrize("factor", [1, 3, (2, 3)])
def test_unpool_against_numpy(factor):
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32)
    fh, fw = (factor, factor) if isinstance(factor, int) else factor
    np.testing.assert_array_equal(nearest_unpool(x, factor), np.repeat(np.repeat(x, fh, 1), fw, 2))
    want = np.zeros((2, 3 * fh, 4 * fw, 5), np.float32)
    want[:, ::fh, ::fw] = x
    np.testing.assert_array_equal(bed_of_nails_unpool(x, factor), want)


def ref_max_pool(x, window, strides):
    (kh, kw), (sh, sw) = window, strides
    n, h, w, c = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    pooled, argmax = np.zeros((n, oh, ow, c), x.dtype), np.zeros((n, oh, ow, c), np.int32)
    for i in range(oh):
        for j in range(ow):
            win = x[:, i * sh : i * sh + kh, j * sw : j * sw + kw].reshape(n, kh * kw, c)
            a = win.argmax(axis=1)  # first maximum in row-major window order
            pooled[:, i, j] = np.take_along_axis(win, a[:, None], 1)[:, 0]
            argmax[:, i, j] = (i * sh + a // kw) * w + j * sw + a % kw
    return pooled, argmax


@pytest.mark.parametrize("window, strides", POOL_CASES)
def test_max_pool_argmax_unpool_match_numpy_and_torch_golden(window, strides):
    key = "w{}x{}_s{}x{}".format(*window, *strides)
    x = GOLD["x"]
    pooled, argmax = jax.jit(max_pool_with_argmax, static_argnums=(1, 2))(x, window, strides)
    rp, ra = ref_max_pool(x, window, strides)
    np.testing.assert_array_equal(pooled, rp)
    np.testing.assert_array_equal(argmax, ra)
    np.testing.assert_array_equal(pooled, GOLD[f"pooled_{key}"])
    np.testing.assert_array_equal(argmax, GOLD[f"argmax_{key}"])
    np.testing.assert_array_equal(max_unpool(pooled, argmax, x.shape[1:3]), GOLD[f"unpooled_{key}"])


def test_vmap_grad_and_full_output_shape():
    x = np.random.default_rng(1).normal(size=(3, 2, 4, 6, 2)).astype(np.float32)  # [B, N, H, W, C]

    def roundtrip(x):
        p, a = max_pool_with_argmax(x, 2)
        return max_unpool(p, a, x.shape)

    y = jax.jit(jax.vmap(roundtrip))(x)
    keep = y != 0
    np.testing.assert_array_equal(y[keep], x[keep])  # kept values are the window maxima, in place
    assert keep.sum() == 3 * 2 * 2 * 3 * 2
    # gradient of the pooled values flows to the argmax positions only (like torch)
    g = jax.grad(lambda x: max_pool_with_argmax(x, 2)[0].sum())(x[0])
    np.testing.assert_array_equal(g, (y[0] != 0).astype(np.float32))
    g = jax.grad(lambda x: (bed_of_nails_unpool(x, 2) * 2 + nearest_unpool(x, 2)).sum())(x[0])
    np.testing.assert_array_equal(g, np.full_like(x[0], 6.0))


def test_max_unpool_drops_out_of_range_indices():
    p = jnp.ones((1, 1, 2, 1))
    a = jnp.array([-1, 99], jnp.int32).reshape(1, 1, 2, 1)
    np.testing.assert_array_equal(max_unpool(p, a, (2, 2)), np.zeros((1, 2, 2, 1)))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: nearest_unpool(np.zeros((2, 2, 1)), 2), "x"),
        (lambda: nearest_unpool(np.zeros((1, 2, 2, 1)), 0), "factor"),
        (lambda: bed_of_nails_unpool(np.zeros((1, 2, 2, 1)), (2, -1)), "factor"),
        (lambda: max_pool_with_argmax(np.zeros((1, 2, 2, 1)), 3), "window"),
        (lambda: max_pool_with_argmax(np.zeros((1, 4, 4, 1)), 2, 0), "strides"),
        (lambda: max_unpool(np.zeros((1, 2, 2, 1)), np.zeros((1, 2, 2, 2), np.int32), (4, 4)), "argmax"),
        (lambda: max_unpool(np.zeros((1, 2, 2, 1)), np.zeros((1, 2, 2, 1), np.float32), (4, 4)), "argmax"),
        (lambda: max_unpool(np.zeros((1, 2, 2, 1)), np.zeros((1, 2, 2, 1), np.int32), (4, 0)), "output_shape"),
        (lambda: max_unpool(np.zeros((1, 2, 2, 1)), np.zeros((1, 2, 2, 1), np.int32), (2, 4, 4, 1)), "output_shape"),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()
