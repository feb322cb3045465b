"""conv_transpose: NumPy scatter reference (forward and both gradients), torch golden fixtures, jit / vmap,
bfloat16 and bad inputs."""
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.ops import conv_transpose

FIX = pathlib.Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIX))
from make_upsample import CONV_CASES, case_key  # noqa: E402

GOLD = np.load(FIX / "upsample_conv_transpose.npz")


def _full_size(size, k, s, op):
    return max((size - 1) * s + k, (size - 1) * s + k + op)


def ref_conv_transpose(x, w, s, p, op):
    """The scatter definition, literally: full[s*i + t] += x[i] @ w[t]; out = full[p : p + out_size]."""
    (n, h, wd, _), (kh, kw, _, co) = x.shape, w.shape
    full = np.zeros((n, _full_size(h, kh, s[0], op[0]), _full_size(wd, kw, s[1], op[1]), co))
    for i in range(h):
        for j in range(wd):
            for a in range(kh):
                for b in range(kw):
                    full[:, s[0] * i + a, s[1] * j + b] += x[:, i, j] @ w[a, b]
    ho, wo = (h - 1) * s[0] - 2 * p[0] + kh + op[0], (wd - 1) * s[1] - 2 * p[1] + kw + op[1]
    return full[:, p[0] : p[0] + ho, p[1] : p[1] + wo]


def ref_grads(x, w, g, s, p):
    """d/dx and d/dw of sum(out * g) from the scatter definition (out[s*i + t - p] gets x[i] @ w[t])."""
    (_, h, wd, _), (kh, kw, _, _) = x.shape, w.shape
    gx, gw = np.zeros(x.shape), np.zeros(w.shape)
    for i in range(h):
        for j in range(wd):
            for a in range(kh):
                for b in range(kw):
                    oi, oj = s[0] * i + a - p[0], s[1] * j + b - p[1]
                    if 0 <= oi < g.shape[1] and 0 <= oj < g.shape[2]:
                        gx[:, i, j] += g[:, oi, oj] @ w[a, b].T
                        gw[a, b] += x[:, i, j].T @ g[:, oi, oj]
    return gx, gw


@jax.jit
def _all_cases(arrays):
    """Forward and VJP of every fixture case in one compile."""
    res = {}
    for kernel, stride, padding, output_padding in CONV_CASES:
        key = case_key(kernel, stride, padding, output_padding)
        x, w, g = arrays[f"x_{key}"], arrays[f"w_{key}"], arrays[f"g_{key}"]
        y, vjp = jax.vjp(lambda x, w: conv_transpose(x, w, stride, padding, output_padding), x, w)
        res[key] = (y, *vjp(g))
    return res


@pytest.fixture(scope="module")
def results():
    return jax.device_get(_all_cases({k: jnp.asarray(v) for k, v in GOLD.items() if k[:2] in ("x_", "w_", "g_")}))


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: case_key(*c))
def test_matches_numpy_scatter_reference(results, case):
    kernel, stride, padding, output_padding = case
    key = case_key(*case)
    x, w, g = (GOLD[f"{n}_{key}"].astype(np.float64) for n in ("x", "w", "g"))
    y, gx, gw = results[key]
    np.testing.assert_allclose(y, ref_conv_transpose(x, w, stride, padding, output_padding), rtol=1e-5, atol=1e-5)
    rgx, rgw = ref_grads(x, w, g, stride, padding)
    np.testing.assert_allclose(gx, rgx, rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(gw, rgw, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: case_key(*c))
def test_matches_torch_golden(results, case):
    key = case_key(*case)
    y, gx, gw = results[key]
    np.testing.assert_allclose(y, GOLD[f"y_{key}"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gx, GOLD[f"gx_{key}"], rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(gw, GOLD[f"gw_{key}"], rtol=1e-5, atol=2e-5)


def test_torch_live_parity():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x, w = rng.normal(size=(1, 4, 3, 2)).astype(np.float32), rng.normal(size=(4, 3, 2, 5)).astype(np.float32)
    want = torch.nn.functional.conv_transpose2d(
        torch.tensor(x).permute(0, 3, 1, 2), torch.tensor(w).permute(2, 3, 0, 1), stride=(2, 3), padding=(1, 1)
    )
    got = conv_transpose(x, w, (2, 3), (1, 1))
    np.testing.assert_allclose(got, want.permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-5)


def test_dcgan_shape_jit_vmap_bfloat16():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2, 4, 4, 3)).astype(np.float32)  # [B, N, H, W, C]
    w = rng.normal(size=(4, 4, 3, 2)).astype(np.float32)
    y = jax.jit(jax.vmap(lambda x: conv_transpose(x, w, 2, 1)))(x)
    assert y.shape == (3, 2, 8, 8, 2)  # (H - 1) * 2 - 2 + 4 = 2H
    want = ref_conv_transpose(x[2].astype(np.float64), w, (2, 2), (1, 1), (0, 0))
    np.testing.assert_allclose(y[2], want, rtol=1e-5, atol=1e-5)
    yb = conv_transpose(jnp.asarray(x[0], jnp.bfloat16), jnp.asarray(w, jnp.bfloat16), 2, 1)
    assert yb.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(yb, np.float32), y[0], rtol=5e-2, atol=1e-1)


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs, match",
    [
        ((4, 4, 3), (4, 4, 3, 2), {}, "x"),
        ((1, 4, 4, 3), (4, 3, 2), {}, "kernel"),
        ((1, 4, 4, 3), (4, 4, 5, 2), {}, "C_in"),
        ((1, 4, 4, 3), (4, 4, 3, 2), {"strides": 0}, "strides"),
        ((1, 4, 4, 3), (4, 4, 3, 2), {"padding": -1}, "padding"),
        ((1, 1, 1, 3), (2, 2, 3, 2), {"strides": 1, "padding": 1}, "padding"),  # output size 0
        ((1, 4, 4, 3), (4, 4, 3, 2), {"strides": 2, "output_padding": 2}, "output_padding"),
        ((1, 4, 4, 3), (4, 4, 3, 2), {"padding": (1, 2, 3)}, "padding"),
    ],
)
def test_bad_inputs(x_shape, w_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        conv_transpose(np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32), **kwargs)
