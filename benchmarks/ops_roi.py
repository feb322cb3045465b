"""RoI and upsampling ops against their peers, same process, same inputs.

    PYTHONPATH=. python benchmarks/ops_roi.py [--device cpu|gpu] [--repeats N]

On the GPU the torch peers run on CUDA (synchronised clocks); the flax peer runs on JAX's GPU backend like ours.

Rows (ratio = peer time / ours, > 1 means we are faster; compile time of ours reported separately):

* roi_align forward: 1,000 RoIs on 2 x 64 x 64 x 256 features (stride 16, 1024 px images), 7 x 7, sampling 2,
  aligned; peer ``torchvision.ops.roi_align`` on the same values in NCHW. Target >= 1x.
* roi_align feature gradient (VJP of a random cotangent), same workload; peer torchvision's backward. Info.
* roi_align forward with the default adaptive sampling (sampling_ratio=-1), same workload. Info.
* roi_pool forward, same RoIs, 7 x 7; peer ``torchvision.ops.roi_pool``. Info.
* conv_transpose gradient: 4 x 4, stride 2, padding 1, 64 x 16 x 16 x 128 -> 64 channels, gradient of
  ``sum(y * g)`` w.r.t. both x and the kernel; peer ``flax.linen.ConvTranspose`` (lax.conv_transpose, explicit
  padding 2 = k - 1 - p, the same 32 x 32 output). Target >= 10x. torch's ``conv_transpose2d`` backward is
  printed for information.
"""
from __future__ import annotations

import argparse

import numpy as np

from benchmarks.harness import (
    Device,
    Row,
    add_device_argument,
    compile_time,
    host_device,
    median_time,
    print_table,
    select_device,
)


def _roi_inputs(seed=0):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(2, 64, 64, 256)).astype(np.float32)
    k = 1000
    xy = rng.uniform(0, 900, size=(k, 2))
    wh = rng.uniform(16, 320, size=(k, 2))
    boxes = np.concatenate([xy, np.minimum(xy + wh, 1023)], axis=1).astype(np.float32)
    box_indices = rng.integers(0, 2, size=k).astype(np.int32)
    grad_out = rng.normal(size=(k, 7, 7, 256)).astype(np.float32)
    return features, boxes, box_indices, grad_out


def roi_rows(repeats: int = 5, device: Device | None = None) -> list[Row]:
    import jax
    import jax.numpy as jnp
    import torch
    import torchvision

    from jaxvision.ops import roi_align, roi_pool

    device = device or host_device()
    dev, sync = device.torch, device.sync
    f, b, i, g = _roi_inputs()
    fj, bj, ij, gj = map(jnp.asarray, (f, b, i, g))
    args = dict(output_size=(7, 7), spatial_scale=1 / 16, sampling_ratio=2, aligned=True)

    fwd = jax.jit(lambda f, b, i: roi_align(f, b, i, **args))
    bwd = jax.jit(lambda f, b, i, g: jax.vjp(lambda f: roi_align(f, b, i, **args), f)[1](g)[0])

    tf = torch.tensor(f).permute(0, 3, 1, 2).contiguous().to(dev)
    rois = torch.tensor(np.concatenate([i[:, None].astype(np.float32), b], axis=1)).to(dev)
    tg = torch.tensor(g).permute(0, 3, 1, 2).contiguous().to(dev)
    tfg = tf.clone().requires_grad_(True)

    def torch_fwd():
        with torch.no_grad():
            return torchvision.ops.roi_align(tf, rois, (7, 7), 1 / 16, 2, True)

    def torch_bwd():
        tfg.grad = None
        torchvision.ops.roi_align(tfg, rois, (7, 7), 1 / 16, 2, True).backward(tg)
        return tfg.grad

    # same answers before timing anything
    np.testing.assert_allclose(np.asarray(fwd(fj, bj, ij)), torch_fwd().permute(0, 2, 3, 1).cpu().numpy(), atol=1e-4)
    np.testing.assert_allclose(np.asarray(bwd(fj, bj, ij, gj)), torch_bwd().permute(0, 2, 3, 1).cpu().numpy(),
                               atol=1e-3)

    adaptive = jax.jit(lambda f, b, i: roi_align(f, b, i, (7, 7), 1 / 16, -1, True))
    c_adaptive = compile_time(lambda: adaptive(fj, bj, ij))

    def torch_adaptive():
        with torch.no_grad():
            return torchvision.ops.roi_align(tf, rois, (7, 7), 1 / 16, -1, True)

    np.testing.assert_allclose(np.asarray(adaptive(fj, bj, ij)), torch_adaptive().permute(0, 2, 3, 1).cpu().numpy(),
                               atol=1e-4)

    pool = jax.jit(lambda f, b, i: roi_pool(f, b, i, (7, 7), 1 / 16))
    c_pool = compile_time(lambda: pool(fj, bj, ij))

    def torch_pool():
        with torch.no_grad():
            return torchvision.ops.roi_pool(tf, rois, (7, 7), 1 / 16)

    np.testing.assert_array_equal(np.asarray(pool(fj, bj, ij)), torch_pool().permute(0, 2, 3, 1).cpu().numpy())

    fwd = jax.jit(lambda f, b, i: roi_align(f, b, i, **args))  # fresh, to time its compile
    c_fwd = compile_time(lambda: fwd(fj, bj, ij))
    bwd = jax.jit(lambda f, b, i, g: jax.vjp(lambda f: roi_align(f, b, i, **args), f)[1](g)[0])
    c_bwd = compile_time(lambda: bwd(fj, bj, ij, gj))
    return [
        Row(
            "roi_align fwd, 1000 RoIs, 2x64x64x256, 7x7, s=2, aligned (peer: torchvision)",
            median_time(lambda: fwd(fj, bj, ij), repeats),
            median_time(torch_fwd, repeats, sync=sync),
            c_fwd,
            target=1.0,
        ),
        Row(
            "roi_align feature grad, same workload (peer: torchvision backward)",
            median_time(lambda: bwd(fj, bj, ij, gj), repeats),
            median_time(torch_bwd, repeats, sync=sync),
            c_bwd,
        ),
        Row(
            "roi_align fwd, adaptive sampling_ratio=-1 (default), same workload (peer: torchvision)",
            median_time(lambda: adaptive(fj, bj, ij), repeats),
            median_time(torch_adaptive, repeats, sync=sync),
            c_adaptive,
        ),
        Row(
            "roi_pool fwd, same RoIs and features, 7x7 (peer: torchvision)",
            median_time(lambda: pool(fj, bj, ij), repeats),
            median_time(torch_pool, repeats, sync=sync),
            c_pool,
        ),
    ]


def conv_transpose_rows(repeats: int = 3, device: Device | None = None) -> list[Row]:
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import torch

    from jaxvision.ops import conv_transpose

    device = device or host_device()
    dev = device.torch
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 16, 16, 128)).astype(np.float32)
    w = (rng.normal(size=(4, 4, 128, 64)) * 0.05).astype(np.float32)
    g = rng.normal(size=(64, 32, 32, 64)).astype(np.float32)
    xj, wj, gj = map(jnp.asarray, (x, w, g))

    def ours_grad(x, w, g):
        return jax.grad(lambda x, w: jnp.sum(conv_transpose(x, w, 2, 1) * g), argnums=(0, 1))(x, w)

    layer = nn.ConvTranspose(64, (4, 4), (2, 2), padding=((2, 2), (2, 2)), use_bias=False)
    params = {"params": {"kernel": wj}}  # same [kh, kw, Cin, Cout] layout (flax does not flip: a mirrored kernel)
    assert layer.apply(params, xj).shape == (64, 32, 32, 64)

    def flax_grad(p, x, g):
        return jax.grad(lambda p, x: jnp.sum(layer.apply(p, x) * g), argnums=(0, 1))(p, x)

    ours = jax.jit(ours_grad)
    c_ours = compile_time(lambda: ours(xj, wj, gj))
    peer = jax.jit(flax_grad)
    t_ours = median_time(lambda: ours(xj, wj, gj), repeats)
    t_flax = median_time(lambda: peer(params, xj, gj), repeats)

    tx = torch.tensor(x).permute(0, 3, 1, 2).contiguous().to(dev).requires_grad_(True)
    tw = torch.tensor(w).permute(2, 3, 0, 1).contiguous().to(dev).requires_grad_(True)
    tgo = torch.tensor(g).permute(0, 3, 1, 2).contiguous().to(dev)

    def torch_grad():
        tx.grad = tw.grad = None
        torch.nn.functional.conv_transpose2d(tx, tw, stride=2, padding=1).backward(tgo)
        return tx.grad, tw.grad

    gx, gw = ours(xj, wj, gj)
    tgx, tgw = torch_grad()
    np.testing.assert_allclose(np.asarray(gx), tgx.permute(0, 2, 3, 1).cpu().numpy(), rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(np.asarray(gw), tgw.permute(2, 3, 0, 1).cpu().numpy(), rtol=1e-3, atol=1e-1)
    t_torch = median_time(torch_grad, repeats, sync=device.sync)
    name = "conv_transpose grad (x, kernel), 4x4 s2 p1, 64x16x16x128 -> 64"
    return [
        Row(f"{name} (peer: flax.linen.ConvTranspose)", t_ours, t_flax, c_ours, target=10.0),
        Row(f"{name} (info, peer: torch conv_transpose2d)", t_ours, t_torch, c_ours),
    ]


def rows(device: Device | None = None, repeats: int | None = None) -> list[Row]:
    """All rows of this benchmark (roi_align, then conv_transpose); ``repeats`` None keeps each part's default."""
    kw = {} if repeats is None else {"repeats": repeats}
    return roi_rows(device=device, **kw) + conv_transpose_rows(device=device, **kw)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_argument(parser)
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per row (default: 5 roi, 3 conv)")
    args = parser.parse_args(argv)
    device = select_device(args.device, parser)
    return print_table(f"RoI and upsampling ops (jaxvision vs peers) on {device.describe()}",
                       rows(device, args.repeats), peer="peer", device=device)


if __name__ == "__main__":
    main()
