"""DCGAN 64x64 train step (batch 64, one D and one G update): jaxvision vs pytorch/examples DCGAN, one process.

Both sides run the same network (nz=100, ngf=ndf=64, 3 channels, no conv biases, BatchNorm, Adam 2e-4 b1=0.5) on
the same inputs, and the same update order as pytorch/examples/dcgan/main.py: D on a real batch and on a detached
fake batch, then G through D on that same fake batch. Reported: the median warm step time of each, the ratio
torch/ours (> 1: we are faster) and our compile time. Also checks (correctness, not speed) that the pmapped step on
8 simulated CPU devices equals the 1-device step on the concatenated batch.

    PYTHONPATH=. python benchmarks/dcgan.py [--device cpu|gpu] [--repeats 5] [--batch 64]
        [--upsampling transposed,nearest,bed_of_nails] [--skip-pmap] [--skip-torch]

On the GPU PyTorch runs on CUDA (cudnn.benchmark on, synchronised before every clock read) and ours on JAX's GPU
backend; the pmap check always runs on the 8 simulated CPU devices.

Only 'transposed' is the same network as PyTorch's; the unpool + conv generators are timed for comparison.
"""
from __future__ import annotations

import argparse
import os
import sys

if "--skip-pmap" not in sys.argv:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.harness import Row, add_device_argument, compile_time, median_time, print_table, select_device  # noqa: E402
from jaxvision.models.gan.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_optimizer  # noqa: E402
from jaxvision.train.gan import GANState, make_gan_step  # noqa: E402

NZ, NGF, NDF, NC, SIZE = 100, 64, 64, 3, 64


def make_state(upsampling, axis=None, seed=0, size=SIZE, ngf=NGF, ndf=NDF):
    g = DCGANGenerator(size=size, nz=NZ, ngf=ngf, channels=NC, upsampling=upsampling, bn_axis_name=axis)
    d = DCGANDiscriminator(size=size, ndf=ndf, channels=NC, bn_axis_name=axis)
    kg, kd, kr = jax.random.split(jax.random.PRNGKey(seed), 3)
    return GANState.create(
        g_apply_fn=g.apply, g_variables=g.init(kg, jnp.zeros((2, NZ)), train=False),
        d_apply_fn=d.apply, d_variables=d.init(kd, jnp.zeros((2, size, size, NC)), train=False),
        g_tx=dcgan_optimizer(), d_tx=dcgan_optimizer(), rng=kr,
    )


def torch_step_fn(real_np, seed=0, device="cpu"):
    """pytorch/examples/dcgan networks and train step on ``device`` ('cpu' or 'cuda'); returns a closure doing
    one step on ``real_np`` and torch's intra-op thread count."""
    import torch
    import torch.nn as tnn

    torch.manual_seed(seed)

    def init(m):
        if "Conv" in type(m).__name__:
            tnn.init.normal_(m.weight, 0.0, 0.02)
        elif "BatchNorm" in type(m).__name__:
            tnn.init.normal_(m.weight, 1.0, 0.02)
            tnn.init.zeros_(m.bias)

    G = tnn.Sequential(
        tnn.ConvTranspose2d(NZ, NGF * 8, 4, 1, 0, bias=False), tnn.BatchNorm2d(NGF * 8), tnn.ReLU(True),
        tnn.ConvTranspose2d(NGF * 8, NGF * 4, 4, 2, 1, bias=False), tnn.BatchNorm2d(NGF * 4), tnn.ReLU(True),
        tnn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False), tnn.BatchNorm2d(NGF * 2), tnn.ReLU(True),
        tnn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False), tnn.BatchNorm2d(NGF), tnn.ReLU(True),
        tnn.ConvTranspose2d(NGF, NC, 4, 2, 1, bias=False), tnn.Tanh(),
    )
    D = tnn.Sequential(
        tnn.Conv2d(NC, NDF, 4, 2, 1, bias=False), tnn.LeakyReLU(0.2, inplace=True),
        tnn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False), tnn.BatchNorm2d(NDF * 2), tnn.LeakyReLU(0.2, inplace=True),
        tnn.Conv2d(NDF * 2, NDF * 4, 4, 2, 1, bias=False), tnn.BatchNorm2d(NDF * 4), tnn.LeakyReLU(0.2, inplace=True),
        tnn.Conv2d(NDF * 4, NDF * 8, 4, 2, 1, bias=False), tnn.BatchNorm2d(NDF * 8), tnn.LeakyReLU(0.2, inplace=True),
        tnn.Conv2d(NDF * 8, 1, 4, 1, 0, bias=False), tnn.Sigmoid(),
    )
    G.apply(init)
    D.apply(init)
    G, D = G.to(device), D.to(device)
    crit = tnn.BCELoss()
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.from_numpy(np.ascontiguousarray(real_np.transpose(0, 3, 1, 2))).to(device)
    b = real.shape[0]
    ones, zeros = torch.ones(b, device=device), torch.zeros(b, device=device)

    def step():
        D.zero_grad()
        err_real = crit(D(real).view(-1), ones)
        err_real.backward()
        fake = G(torch.randn(b, NZ, 1, 1, device=device))
        err_fake = crit(D(fake.detach()).view(-1), zeros)
        err_fake.backward()
        opt_d.step()
        G.zero_grad()
        err_g = crit(D(fake).view(-1), ones)
        err_g.backward()
        opt_g.step()
        return err_g

    return step, torch.get_num_threads()


def pmap_check(upsampling, n_dev=8, batch_per_dev=2, steps=2):
    """Max |difference| between the 8-device pmapped step and the 1-device step on the concatenated batch."""
    state = make_state(upsampling, axis="batch", size=16, ngf=8, ndf=8)
    step = make_gan_step("non_saturating", latent_shape=(NZ,), axis_name="batch")
    real = np.random.default_rng(1).uniform(-1, 1, (n_dev * batch_per_dev, 16, 16, NC)).astype(np.float32)

    def run(devs):
        p = jax.pmap(step, axis_name="batch", devices=devs)
        s = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (len(devs),) + a.shape), state)
        for _ in range(steps):
            s, m = p(s, real.reshape((len(devs), -1) + real.shape[1:]))
        return jax.tree_util.tree_map(lambda a: np.asarray(a[0], np.float64), (s.g_params, s.d_params, m))

    cpus = jax.devices("cpu")  # the simulated host devices, also when the default backend is a GPU
    a, b = run(cpus[:1]), run(cpus[:n_dev])
    return max(float(np.max(np.abs(x - y))) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def main(argv=None):
    ap = argparse.ArgumentParser()
    add_device_argument(ap)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--upsampling", default="transposed", help="comma-separated: transposed,nearest,bed_of_nails")
    ap.add_argument("--skip-pmap", action="store_true")
    ap.add_argument("--skip-torch", action="store_true")
    args = ap.parse_args(argv)
    device = select_device(args.device, ap)

    real = np.random.default_rng(0).uniform(-1, 1, (args.batch, SIZE, SIZE, NC)).astype(np.float32)
    real_j = jnp.asarray(real)
    modes = args.upsampling.split(",")
    timings = {}
    for mode in modes:
        step = jax.jit(make_gan_step("non_saturating", latent_shape=(NZ,), axis_name=None), donate_argnums=0)
        box = {"s": make_state(mode)}

        def ours():
            box["s"], m = step(box["s"], real_j)
            return m

        first = compile_time(ours)
        warm = median_time(ours, repeats=1, warmup=0)
        timings[mode] = (median_time(ours, repeats=args.repeats, warmup=1), max(first - warm, 0.0))
    peer_s, threads = float("nan"), 0
    if not args.skip_torch:
        tstep, threads = torch_step_fn(real, device=device.torch)
        peer_s = median_time(tstep, repeats=args.repeats, warmup=1, sync=device.sync)
    rows = [Row(f"DCGAN 64px train step, batch {args.batch}, G upsampling={mode}"
                + (" (same network as torch)" if mode == "transposed" else ""),
                ours_s, peer_s, compile_s=comp, target=1.0 if mode == "transposed" else None)
            for mode, (ours_s, comp) in timings.items()]
    print_table(f"DCGAN train step vs pytorch/examples DCGAN on {device.describe()} (torch threads: {threads})", rows,
                peer="torch", device=device)
    if not args.skip_pmap:
        diff = pmap_check(modes[0])
        print(f"pmapped step, 8 simulated devices vs 1 device on the concatenated batch (16 px, 2 steps): "
              f"max |param difference| = {diff:.2e}")


if __name__ == "__main__":
    main()
