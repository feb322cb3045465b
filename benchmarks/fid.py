"""FID benchmarks: ours vs pytorch-fid, same inputs, one process.

Rows:
  1. Fréchet distance, d = 2048, n = 5000 per side: both sides get the SAME precomputed (mu, sigma) (float64,
     np.mean / np.cov); timed is only the distance: ours ``frechet_distance(..., x64=True)`` (two eigh on
     device) vs ``pytorch_fid.fid_score.calculate_frechet_distance`` (scipy.linalg.sqrtm).
  2. The same from features with n = 1000 < d per side: ours ``frechet_distance_from_features`` (Gram/SVD
     path, includes centring) vs pytorch-fid's np.mean + np.cov + calculate_frechet_distance.
  3. Inception feature throughput (random weights, same for both nets; 64x64 inputs resized to 299):
     ours jit-compiled Flax FIDInceptionV3 vs pytorch-fid's InceptionV3 (torch, no_grad, eval), batch 16.

Run: PYTHONPATH=. python benchmarks/fid.py [--device cpu|gpu] [--quick]    (needs torch + pytorch-fid)

With ``--device gpu`` ours runs on JAX's GPU backend in every row; pytorch-fid's Inception runs on CUDA (synchronised
clocks), but its Fréchet distance (rows 1 and 2: numpy + scipy.linalg.sqrtm) only runs on the CPU, as the row
names say.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pathlib
import time
import warnings

import jax
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

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _features(n, d, seed, shift):
    rng = np.random.default_rng(seed)
    # Correlated, Inception-like (non-negative, skewed) features.
    mix = rng.standard_normal((d, d)).astype(np.float64) / np.sqrt(d)
    z = rng.standard_normal((n, d)) @ (np.eye(d) + mix)
    return np.abs(z) * 0.3 + shift


def frechet_rows(n, d, peer_repeats, with_features=True):
    from pytorch_fid.fid_score import calculate_frechet_distance

    from jaxvision.metrics.generative.frechet import frechet_distance, frechet_distance_from_features

    f1, f2 = _features(n, d, 0, 0.0), _features(n, d, 1, 0.05)
    stats = (f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))
    ours = lambda: frechet_distance(*stats, x64=True)
    c = compile_time(ours)
    t_ours = median_time(ours, repeats=5)
    t0, c0 = time.perf_counter(), time.process_time()
    peer_val = calculate_frechet_distance(*stats)
    t_peer, cpu_peer = time.perf_counter() - t0, time.process_time() - c0
    if peer_repeats > 1:
        again = median_time(lambda: calculate_frechet_distance(*stats), repeats=peer_repeats - 1, warmup=0)
        t_peer = min(t_peer, again)
    ours_val = float(ours())
    rel = abs(ours_val - peer_val) / abs(peer_val)
    # Process CPU seconds (all threads): less sensitive than wall time to other jobs on a shared machine.
    c0 = time.process_time()
    jax.block_until_ready(ours())
    cpu_ours = time.process_time() - c0
    rows = [Row(f"frechet_distance d={d} n={n}/side (same mu, sigma; float64; peer on CPU: scipy sqrtm)", t_ours,
                t_peer, c - t_ours, 5.0)]
    notes = [f"row 1: ours {ours_val:.10f}, pytorch-fid {peer_val:.10f}, relative difference {rel:.2e} "
             "(target <= 1e-6)",
             f"row 1: process CPU time ours {cpu_ours:.2f} s, pytorch-fid {cpu_peer:.2f} s "
             f"(ratio {cpu_peer / cpu_ours:.1f}x); load average at start {os.getloadavg()[0]:.1f}"]

    if not with_features:
        return rows, notes
    m = 1000
    g1, g2 = f1[:m], f2[:m]
    ours_f = lambda: frechet_distance_from_features(g1, g2, x64=True, warn=False)
    c = compile_time(ours_f)
    t_ours_f = median_time(ours_f, repeats=5)

    def peer_f():
        return calculate_frechet_distance(g1.mean(0), np.cov(g1, rowvar=False), g2.mean(0), np.cov(g2, rowvar=False))

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            peer_fv = peer_f()
        except ValueError as e:  # "Imaginary component" on rank-deficient covariances
            peer_fv = float("nan")
            notes.append(f"row 2: pytorch-fid raised {e!r}")
    t_peer_f = time.perf_counter() - t0
    ours_fv = float(ours_f())

    def ours_cov():  # our covariance path on the same features (np.cov + two eigh), for the n < d claim
        return frechet_distance(g1.mean(0), np.cov(g1, rowvar=False), g2.mean(0), np.cov(g2, rowvar=False), x64=True)

    t_cov = median_time(ours_cov, repeats=3)
    notes.append(f"row 2: our covariance path on the same features takes {t_cov * 1e3:.0f} ms "
                 f"(features path {t_ours_f * 1e3:.0f} ms: {t_cov / t_ours_f:.1f}x faster)")
    rows.append(Row(f"from features n={m}/side < d={d} (Gram/SVD path; peer on CPU: numpy cov + scipy sqrtm)",
                    t_ours_f, t_peer_f, c - t_ours_f))
    notes.append(f"row 2: ours {ours_fv:.6f}, pytorch-fid {np.real(peer_fv):.6f} (rank-deficient covariances: "
                 f"relative difference {abs(ours_fv - np.real(peer_fv)) / abs(ours_fv):.2e})")
    return rows, notes


def inception_row(batch, n_batches, device: Device | None = None):
    import torch
    import torchvision
    from pytorch_fid import inception as pfi

    spec = importlib.util.spec_from_file_location("mk", ROOT / "tests/metrics/fixtures/make_inception_fixture.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    net = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=False)
    for name, blk in (("Mixed_5b", pfi.FIDInceptionA(192, 32)), ("Mixed_5c", pfi.FIDInceptionA(256, 64)),
                      ("Mixed_5d", pfi.FIDInceptionA(288, 64)), ("Mixed_6b", pfi.FIDInceptionC(768, 128)),
                      ("Mixed_6c", pfi.FIDInceptionC(768, 160)), ("Mixed_6d", pfi.FIDInceptionC(768, 160)),
                      ("Mixed_6e", pfi.FIDInceptionC(768, 192)), ("Mixed_7b", pfi.FIDInceptionE_1(1280)),
                      ("Mixed_7c", pfi.FIDInceptionE_2(2048))):
        setattr(net, name, blk)
    names_shapes = [(k, tuple(v.shape)) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")]
    sd = mk.random_state_dict(names_shapes)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=False)
    orig, pfi.fid_inception_v3 = pfi.fid_inception_v3, (lambda: net)
    try:
        peer = pfi.InceptionV3([3]).eval()
    finally:
        pfi.fid_inception_v3 = orig

    from jaxvision.metrics.generative.feature_networks import inception_network
    from jaxvision.metrics.generative.inception_weights import inception_template, state_dict_to_variables

    ours_net = inception_network(state_dict_to_variables(sd, inception_template()))
    images = np.random.default_rng(0).random((batch, 64, 64, 3), dtype=np.float32)
    device = device or host_device()
    peer = peer.to(device.torch)
    x_t = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device.torch)
    ours = lambda: ours_net.fn(images)["pool3"]
    c = compile_time(ours)
    t_ours = median_time(ours, repeats=n_batches)

    def peer_fn():
        with torch.no_grad():
            return peer(x_t)[0]

    t_peer = median_time(peer_fn, repeats=n_batches, sync=device.sync)
    diff = np.abs(np.asarray(ours()) - peer_fn().flatten(1).cpu().numpy()).max()
    row = Row(f"Inception pool3 forward, batch {batch} (64x64 -> 299)", t_ours, t_peer, c - t_ours)
    note = (f"row 3: throughput ours {batch / t_ours:.1f} images/s, pytorch-fid {batch / t_peer:.1f} images/s "
            f"(torch {torch.__version__} on {device.torch}, {torch.get_num_threads()} threads); "
            f"max |pool3 diff| {diff:.2e}")
    return row, note


def main(argv=None):
    ap = argparse.ArgumentParser()
    add_device_argument(ap)
    ap.add_argument("--quick", action="store_true", help="d=512 instead of 2048 (seconds instead of minutes)")
    ap.add_argument("--peer-repeats", type=int, default=1, help="pytorch-fid distance runs (~40 s each at d=2048)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--rows", default="frechet,features,inception", help="comma list of rows to run")
    args = ap.parse_args(argv)
    device = select_device(args.device, ap)
    d = 512 if args.quick else 2048
    rows, notes = [], []
    if "frechet" in args.rows:
        rows, notes = frechet_rows(5000, d, args.peer_repeats, with_features="features" in args.rows)
    if "inception" in args.rows:
        row, note = inception_row(args.batch, args.batches, device)
        rows.append(row)
        notes.append(note)
    print_table(f"FID: ours (JAX) vs pytorch-fid on {device.describe()}", rows, "pytorch-fid", device=device)
    for n in notes:
        print("- " + n)
    print(json.dumps({"jax_devices": [str(d) for d in jax.devices()]}))


if __name__ == "__main__":
    main()
