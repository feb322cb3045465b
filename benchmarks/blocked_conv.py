"""SRResNet's last convolution (9x9, nf -> 3 channels at HR), forward + both gradients: ``ops.thin_output_conv``
vs ``lax.conv_general_dilated`` (what flax.linen.Conv runs) vs torch ``conv2d``, and the whole SRResNet
pretraining step with either JAX convolution in that layer, all in one process on the same inputs.

``thin_output_conv`` keeps the library forward and, on the CPU only, computes the VJP over 4x4 pixel blocks
(``jaxvision/ops/blocked_conv.py``); on a GPU it is the library convolution, so its rows there measure that
nothing is lost. Rows: the layer at ``srgan_photos``' size (batch 4, 96 px, nf 32) and at the ``div2k`` preset's
(batch 16, nf 64); the full step (SRResNet forward, MSE, gradients; 16 blocks, nf 32, batch 4 x 24-px LR). Medians
of ``--repeats`` calls after a warm-up.

    PYTHONPATH=. python benchmarks/blocked_conv.py [--device cpu|gpu] [--repeats 7] [--size 96] [--skip-torch]
"""
from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from benchmarks.harness import Row, add_device_argument, compile_time, median_time, print_table, select_device
from jaxvision.models.gan import srgan
from jaxvision.ops import thin_output_conv

DN = ("NHWC", "HWIO", "NHWC")


def layer_grads(conv):
    """jitted ``(x, kernel, cotangent) -> (y, dx, dkernel)`` of a 9x9 "same" convolution computed by ``conv``."""
    def run(x, k, g):
        y, vjp = jax.vjp(lambda x, k: conv(x, k, (1, 1), ((4, 4), (4, 4)), dimension_numbers=DN), x, k)
        return (y,) + vjp(g)
    return jax.jit(run)


def torch_layer(x, k, g, device):
    """torch conv2d forward + backward on the same values (NCHW); returns a closure and its outputs."""
    import torch

    tx = torch.tensor(np.asarray(x).transpose(0, 3, 1, 2), device=device, requires_grad=True)
    tk = torch.tensor(np.asarray(k).transpose(3, 2, 0, 1), device=device, requires_grad=True)
    tg = torch.tensor(np.asarray(g).transpose(0, 3, 1, 2), device=device)

    def run():
        tx.grad = tk.grad = None
        y = torch.nn.functional.conv2d(tx, tk, padding=4)
        y.backward(tg)
        return y
    return run, lambda: (tx.grad.cpu().numpy().transpose(0, 2, 3, 1), tk.grad.cpu().numpy().transpose(2, 3, 1, 0))


def srresnet_step(size: int):
    """A jitted SRResNet (srgan_photos' sizes) MSE gradient step on fixed random data, built with the model's last
    conv as it is now (``srgan.thin_output_conv``: swap that module name to time another convolution)."""
    g = srgan.SRResNet(scale=4, num_blocks=16, nf=32, bicubic_skip=True)
    lr = jax.random.uniform(jax.random.PRNGKey(1), (4, size // 4, size // 4, 3), minval=-1, maxval=1)
    hr = jax.random.uniform(jax.random.PRNGKey(2), (4, size, size, 3), minval=-1, maxval=1)
    v = g.init(jax.random.PRNGKey(0), lr[:1], train=False)

    @jax.jit
    def step(params):
        def loss(p):
            out, upd = g.apply({"params": p, "batch_stats": v["batch_stats"]}, lr, train=True,
                               mutable=["batch_stats"])
            return jnp.mean((out - hr) ** 2)
        grads = jax.grad(loss)(params)
        return jax.tree.map(lambda p, d: p - 1e-3 * d, params, grads)
    return lambda: step(v["params"])


def main(argv=None):
    ap = argparse.ArgumentParser()
    add_device_argument(ap)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--size", type=int, default=96, help="HR side (a multiple of 16)")
    ap.add_argument("--skip-torch", action="store_true")
    args = ap.parse_args(argv)
    device = select_device(args.device, ap, require_torch=not args.skip_torch)
    if args.size % 16:
        ap.error(f"--size: expected a multiple of 16, got {args.size}")

    rng = np.random.default_rng(0)
    layer_rows, torch_rows = [], []
    for batch, nf in ((4, 32), (16, 64)):
        x = jnp.asarray(rng.standard_normal((batch, args.size, args.size, nf), np.float32))
        k = jnp.asarray(rng.standard_normal((9, 9, nf, 3), np.float32) * 0.02)
        g = jnp.asarray(rng.standard_normal((batch, args.size, args.size, 3), np.float32))
        ours, library = layer_grads(thin_output_conv), layer_grads(lax.conv_general_dilated)
        got, want = ours(x, k, g), library(x, k, g)
        err = max(float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b))) for a, b in zip(got, want))
        if err > 1e-4:
            raise AssertionError(f"thin_output_conv differs from lax.conv_general_dilated: relative {err:.2e}")
        name = f"9x9 conv {nf} -> 3, {batch} x {args.size} px, fwd + both grads"
        comp = compile_time(lambda: ours(x, k, g))
        ours_s = median_time(lambda: ours(x, k, g), args.repeats)
        layer_rows.append(Row(name, ours_s, median_time(lambda: library(x, k, g), args.repeats), compile_s=comp,
                              target=1.0))
        if not args.skip_torch:
            run, torch_grads = torch_layer(x, k, g, device.torch)
            torch_rows.append(Row(name, ours_s, median_time(run, args.repeats, sync=device.sync), target=1.0))
            tdx, tdk = torch_grads()
            terr = max(float(np.max(np.abs(a - np.asarray(b))) / np.max(np.abs(np.asarray(b))))
                       for a, b in ((tdx, want[1]), (tdk, want[2])))
            print(f"{name}: torch's gradients vs lax's: max relative difference {terr:.1e}")

    ours_step = srresnet_step(args.size)
    comp = compile_time(ours_step)
    ours_s = median_time(ours_step, args.repeats)
    fast = srgan.thin_output_conv
    try:
        srgan.thin_output_conv = lax.conv_general_dilated
        library_step = srresnet_step(args.size)
        library_s = median_time(library_step, args.repeats)
    finally:
        srgan.thin_output_conv = fast
    layer_rows.append(Row(f"SRResNet step (16 blocks, nf 32, 4 x {args.size // 4} px LR): MSE gradients", ours_s,
                          library_s, compile_s=comp, target=1.0))
    print_table(f"thin_output_conv vs lax.conv_general_dilated on {device.describe()}", layer_rows,
                peer="lax", device=device)
    if torch_rows:
        import torch

        print_table(f"thin_output_conv vs torch conv2d on {device.describe()} (torch threads: "
                    f"{torch.get_num_threads()})", torch_rows, peer="torch", device=device)


if __name__ == "__main__":
    main()
