"""Accelerator benchmark: jaxvision against its peers on one GPU, every row in one process, one table.

Run (one command, ~4-6 minutes on one H100/H200; torch + torchvision with CUDA; pycocotools optional):
    PYTHONPATH=. python benchmarks/gpu.py [--device gpu|cpu] [--quick] [--sections nms,roi,...] [--out DIR]

Rows (ratio = peer time / ours, > 1 means we are faster; targets from issue 12 where it sets one):
  nms 1k / 5k / 20k / 100k clustered boxes and batched_nms 8 x 2,000 / 16 x 5,000 (20 classes; ours vmapped
  over images, torchvision per image) against torchvision.ops on CUDA, with the kept indices compared and the
  fixed-point path's sequential loop trips; roi_align forward and feature gradient (1,000 RoIs on 2x64x64x256
  and 4,096 RoIs on 8x100x100x256, 7x7, sampling 2, aligned); the DCGAN 64 px train step at batch 64, 128 and
  512 against PyTorch; SSD300-VGG16 forward and full predict at batch 32 against torchvision; COCO evaluation
  of 5,000 images against pycocotools (on the CPU, the only place it runs); the Fréchet distance at d = 2048
  against pytorch-fid's scipy formula (CPU); the FID Inception forward at batch 128 against torchvision.

Timing: medians of warm runs; JAX results blocked on, torch synchronised before every clock read
(``cudnn.benchmark`` on); compile time (first call) reported separately. Writes ``gpu_results.json`` (rows and
environment, the card's name included) to ``--out`` (default ``$OUT`` or ``runs/bench``) after every section.
``--device cpu --quick`` is a dry run on a CPU machine (small sizes).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import traceback

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numpy as np  # noqa: E402

from benchmarks.harness import add_device_argument, compile_time, median_time, select_device  # noqa: E402

T0 = time.time()
RESULT = {"rows": [], "errors": {}, "env": {}}
ARGS = None
DEVICE = None  # harness.Device chosen by --device


def log(*parts):
    print(f"[{time.time() - T0:6.1f}s]", *parts, flush=True)


def save():
    os.makedirs(ARGS.out, exist_ok=True)
    with open(os.path.join(ARGS.out, "gpu_results.json"), "w") as f:
        json.dump(RESULT, f, indent=1, default=str)


# ------------------------------------------------------------------------------------------------ timing


def jax_time(fn, repeats=20, warmup=2):
    """Median seconds of a JAX call (blocked on), after warm-up."""
    return median_time(fn, repeats, warmup)


def torch_time(fn, repeats=20, warmup=2):
    """Median seconds of a torch call, the device synchronised before every clock read."""
    return median_time(fn, repeats, warmup, sync=DEVICE.sync)


def row(section, name, ours_s, peer_s=None, target=None, compile_s=None, **extra):
    r = {"section": section, "name": name, "ours_ms": ours_s * 1e3}
    if peer_s is not None:
        r.update(peer_ms=peer_s * 1e3, ratio=peer_s / ours_s)
        if target is not None:
            r.update(target=target, ok=bool(peer_s / ours_s >= target))
    if compile_s is not None:
        r["compile_s"] = compile_s
    r.update(extra)
    RESULT["rows"].append(r)
    log(section, json.dumps(r, default=str))
    save()


def reps(full, quick=3):
    return quick if ARGS.quick else full


# --------------------------------------------------------------------------------------------- sections


def torch_device():
    return DEVICE.torch


def section_env():
    import jax
    import torch
    import torchvision

    env = {"jax": jax.__version__, "jax_devices": [str(d) for d in jax.devices()], "torch": torch.__version__,
           "torchvision": torchvision.__version__, "python": sys.version.split()[0], "device": DEVICE.kind,
           "card": DEVICE.name if DEVICE.is_gpu else "cpu"}
    try:
        env["nvidia_smi"] = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError) as e:
        env["nvidia_smi"] = repr(e)
    RESULT["env"] = env
    log("env", env)


def section_nms():
    import jax
    import jax.numpy as jnp
    import torch
    import torchvision

    from benchmarks.ops_boxes import detection_boxes
    from jaxvision import ops
    from jaxvision.ops.suppression_fixed_point import fixed_point_nms

    dev, thr = torch_device(), 0.5
    nms = jax.jit(lambda b, s: ops.nms(b, s, thr))
    trips_fn = jax.jit(lambda b, s: fixed_point_nms(b[None], s[None], jnp.zeros(s.shape, jnp.int32)[None],
                                                    jnp.ones(s.shape, bool)[None], jnp.full((1,), thr, jnp.float32),
                                                    n_out=s.shape[0], with_class=False, return_trips=True)[2])
    for n in ((300, 1000) if ARGS.quick else (1000, 5000, 20000, 100000)):
        b, s, _ = detection_boxes(n, max(n // 20, 1), seed=n)
        jb, js = jnp.asarray(b), jnp.asarray(s)
        tb, ts = torch.from_numpy(b).to(dev), torch.from_numpy(s).to(dev)
        c = compile_time(lambda: nms(jb, js))
        idx, kept = nms(jb, js)
        ours_kept = np.asarray(idx)[: int(kept)]
        same = np.array_equal(ours_kept, torchvision.ops.nms(tb, ts, thr).cpu().numpy())
        same_cpu = np.array_equal(ours_kept, torchvision.ops.nms(torch.from_numpy(b), torch.from_numpy(s), thr).numpy())
        r = reps(5 if n >= 100000 else 30)
        row("nms", f"nms {n} boxes", jax_time(lambda: nms(jb, js), r),
            torch_time(lambda: torchvision.ops.nms(tb, ts, thr), r),
            1.5, c, kept=int(kept), same_as_torchvision=same, same_as_torchvision_cpu=same_cpu,
            fixed_point_trips=int(trips_fn(jb, js)))
    for imgs, n in (((2, 300),) if ARGS.quick else ((8, 2000), (16, 5000))):
        data = [detection_boxes(n, n // 20, seed=100 + i) for i in range(imgs)]
        jb, js, jc = (jnp.asarray(np.stack(x)) for x in zip(*data))
        td = [(torch.from_numpy(b).to(dev), torch.from_numpy(s).to(dev), torch.from_numpy(c).long().to(dev))
              for b, s, c in data]
        f = jax.jit(jax.vmap(lambda b, s, c: ops.batched_nms(b, s, c, thr)))
        c = compile_time(lambda: f(jb, js, jc))
        idx, kept = f(jb, js, jc)
        ours_kept = [np.asarray(idx[i])[: int(kept[i])] for i in range(imgs)]
        same = all(np.array_equal(o, torchvision.ops.batched_nms(*t, thr).cpu().numpy()) for o, t in zip(ours_kept, td))
        # torchvision's CUDA sort is not stable, so tied scores may come out in another order there; its CPU
        # kernel sorts stably, as we do
        same_cpu = all(np.array_equal(o, torchvision.ops.batched_nms(*(torch.from_numpy(x) for x in d[:2]),
                                                                     torch.from_numpy(d[2]).long(), thr).numpy())
                       for o, d in zip(ours_kept, data))
        ties = sum(len(d[1]) - len(np.unique(d[1])) for d in data)
        row("nms", f"batched_nms {imgs} x {n} boxes, 20 classes", jax_time(lambda: f(jb, js, jc), reps(20)),
            torch_time(lambda: [torchvision.ops.batched_nms(*t, thr) for t in td], reps(20)), 1.5, c,
            same_as_torchvision=bool(same), same_as_torchvision_cpu=bool(same_cpu), tied_scores=int(ties),
            kept_total=int(np.asarray(kept).sum()))


def section_roi():
    import jax
    import jax.numpy as jnp
    import torch
    import torchvision

    from jaxvision.ops import roi_align

    dev = torch_device()
    cfgs = [(2, 16, 16, 32, 50, 16)] if ARGS.quick else [(2, 64, 64, 256, 1000, 16), (8, 100, 100, 256, 4096, 8)]
    for n, h, w, ch, k, stride in cfgs:
        rng = np.random.default_rng(0)
        f = rng.normal(size=(n, h, w, ch)).astype(np.float32)
        img = h * stride
        xy = rng.uniform(0, img * 0.9, size=(k, 2))
        wh = rng.uniform(16, img * 0.3, size=(k, 2))
        b = np.concatenate([xy, np.minimum(xy + wh, img - 1)], 1).astype(np.float32)
        i = rng.integers(0, n, k).astype(np.int32)
        g = rng.normal(size=(k, 7, 7, ch)).astype(np.float32)
        fj, bj, ij, gj = map(jnp.asarray, (f, b, i, g))
        kw = dict(output_size=(7, 7), spatial_scale=1 / stride, sampling_ratio=2, aligned=True)
        fwd = jax.jit(lambda f, b, i: roi_align(f, b, i, **kw))
        bwd = jax.jit(lambda f, b, i, g: jax.vjp(lambda f: roi_align(f, b, i, **kw), f)[1](g)[0])
        tf = torch.from_numpy(f).permute(0, 3, 1, 2).contiguous().to(dev)
        rois = torch.from_numpy(np.concatenate([i[:, None].astype(np.float32), b], 1)).to(dev)
        tg = torch.from_numpy(g).permute(0, 3, 1, 2).contiguous().to(dev)
        tfg = tf.clone().requires_grad_(True)

        def t_fwd():
            with torch.no_grad():
                return torchvision.ops.roi_align(tf, rois, (7, 7), 1 / stride, 2, True)

        def t_bwd():
            tfg.grad = None
            torchvision.ops.roi_align(tfg, rois, (7, 7), 1 / stride, 2, True).backward(tg)
            return tfg.grad

        shape = f"{n}x{h}x{w}x{ch}, {k} RoIs, 7x7, sampling 2, aligned"
        c = compile_time(lambda: fwd(fj, bj, ij))
        err = float(np.abs(np.asarray(fwd(fj, bj, ij)) - t_fwd().permute(0, 2, 3, 1).cpu().numpy()).max())
        row("roi", f"roi_align forward {shape}", jax_time(lambda: fwd(fj, bj, ij), reps(20)),
            torch_time(t_fwd, reps(20)),
            1.0, c, max_abs_diff=err)
        c = compile_time(lambda: bwd(fj, bj, ij, gj))
        err = float(np.abs(np.asarray(bwd(fj, bj, ij, gj)) - t_bwd().permute(0, 2, 3, 1).cpu().numpy()).max())
        row("roi", f"roi_align feature gradient {shape}", jax_time(lambda: bwd(fj, bj, ij, gj), reps(20)),
            torch_time(t_bwd, reps(20)), 1.0, c, max_abs_diff=err)
        if k <= 1000:  # adaptive sampling (torchvision's default sampling_ratio=-1), no target
            adaptive = jax.jit(lambda f, b, i: roi_align(f, b, i, (7, 7), 1 / stride, -1, True))

            def t_adaptive():
                with torch.no_grad():
                    return torchvision.ops.roi_align(tf, rois, (7, 7), 1 / stride, -1, True)

            c = compile_time(lambda: adaptive(fj, bj, ij))
            err = float(np.abs(np.asarray(adaptive(fj, bj, ij)) - t_adaptive().permute(0, 2, 3, 1).cpu().numpy()).max())
            row("roi", f"roi_align forward {n}x{h}x{w}x{ch}, {k} RoIs, 7x7, adaptive sampling, aligned",
                jax_time(lambda: adaptive(fj, bj, ij), reps(20)), torch_time(t_adaptive, reps(20)), None, c,
                max_abs_diff=err)


def section_dcgan():
    import jax
    import jax.numpy as jnp

    from benchmarks.dcgan import make_state, torch_step_fn
    from jaxvision.train.gan import make_gan_step

    for batch in ((4,) if ARGS.quick else (64, 128, 512)):
        real = np.random.default_rng(0).uniform(-1, 1, (batch, 64, 64, 3)).astype(np.float32)
        state = make_state("transposed")
        step = jax.jit(make_gan_step("non_saturating", latent_shape=(100,), axis_name=None), donate_argnums=0)
        box, x = {"s": state}, jnp.asarray(real)

        def ours():
            box["s"], metrics = step(box["s"], x)
            return metrics

        c = compile_time(ours)
        t = jax_time(ours, reps(20))
        peer, _ = torch_step_fn(real, device=torch_device())
        row("dcgan", f"DCGAN 64 px train step, batch {batch}", t, torch_time(peer, reps(20)), None, c)


def section_ssd():
    from benchmarks.detectors import ssd_workload

    batch = 2 if ARGS.quick else 32
    ours_forward, ours_predict, tv_forward, tv_predict = ssd_workload(batch, torch_device())
    c = compile_time(ours_forward)
    row("ssd", f"SSD300-VGG16 network forward, batch {batch}", jax_time(ours_forward, reps(10)),
        torch_time(tv_forward, reps(10)), None, c)
    c = compile_time(ours_predict)
    row("ssd", f"SSD300-VGG16 full predict (decode + NMS), batch {batch}", jax_time(ours_predict, reps(10)),
        torch_time(tv_predict, reps(10)), None, c)


def section_coco():
    from benchmarks.coco_eval import make_workload, run_pycocotools
    from jaxvision.metrics import evaluate_coco

    gt, dets = make_workload(seed=7, num_images=200 if ARGS.quick else 5000)
    t = time.perf_counter()
    result = evaluate_coco(gt, dets)
    first = time.perf_counter() - t
    warm = []
    for _ in range(2):
        t = time.perf_counter()
        result = evaluate_coco(gt, dets)
        warm.append(time.perf_counter() - t)
    peer_s, extra = None, {"first_call_s": first, "images": len(gt["images"])}
    try:
        peer_s, stats, _ = run_pycocotools(gt, dets)
        extra["max_stats_diff_vs_pycocotools"] = float(np.abs(np.asarray(result.stats) - np.asarray(stats)).max())
    except ImportError as e:
        extra["pycocotools"] = repr(e)
    row("coco", f"evaluate_coco {len(gt['images'])} images x 80 classes (warm; pycocotools on the CPU)",
        statistics.median(warm), peer_s, None, None, **extra)


def section_frechet():
    import jax
    import scipy.linalg

    from jaxvision.metrics import frechet_distance

    d, n = (256, 600) if ARGS.quick else (2048, 5000)
    rng = np.random.default_rng(0)
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    f1 = rng.normal(size=(n, d)) @ a
    f2 = rng.normal(size=(n, d)) @ (a + 0.05 * rng.normal(size=(d, d)) / np.sqrt(d)) + 0.1
    mu1, s1, mu2, s2 = f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False)

    def peer():  # pytorch_fid.fid_score.calculate_frechet_distance's formula
        diff = mu1 - mu2
        covmean = scipy.linalg.sqrtm(s1.dot(s2))
        covmean = covmean[0] if isinstance(covmean, tuple) else covmean
        return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real)

    t = time.perf_counter()
    want = float(peer())
    peer_s = time.perf_counter() - t
    for x64 in (True, False):
        dt = np.float64 if x64 else np.float32
        args = [v.astype(dt) for v in (mu1, s1, mu2, s2)]
        ours = lambda: frechet_distance(*args, x64=x64)  # noqa: E731
        c = compile_time(ours)
        value = float(ours())
        row("frechet", f"frechet_distance d={d} {'float64' if x64 else 'float32'} (ours on "
            f"{jax.devices()[0].platform}; pytorch-fid's scipy sqrtm on the CPU)", jax_time(ours, reps(3), 1), peer_s,
            None, c, value=value, exact=want, rel_err=abs(value - want) / abs(want))


def section_inception():
    import jax
    import jax.numpy as jnp
    import torch
    import torchvision

    from jaxvision.nn.inception import FIDInceptionV3

    dev, batch = torch_device(), 4 if ARGS.quick else 128
    net = FIDInceptionV3()
    x = jnp.asarray(np.random.default_rng(0).random((batch, 64, 64, 3), dtype=np.float32))
    variables = jax.jit(net.init)(jax.random.PRNGKey(0), x[:1])
    f = jax.jit(lambda v, x: net.apply(v, x)["pool3"])
    c = compile_time(lambda: f(variables, x))
    tv = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=False)
    tv = tv.eval().to(dev)
    xt = torch.from_numpy(np.asarray(x)).permute(0, 3, 1, 2).contiguous().to(dev)

    def peer():
        with torch.inference_mode():
            y = torch.nn.functional.interpolate(xt, size=(299, 299), mode="bilinear", align_corners=False)
            return tv(2 * y - 1)

    row("inception", f"FID InceptionV3 forward, batch {batch} (64 px -> 299; torchvision inception_v3)",
        jax_time(lambda: f(variables, x), reps(10)), torch_time(peer, reps(10)), None, c)


SECTIONS = {"nms": section_nms, "roi": section_roi, "dcgan": section_dcgan, "ssd": section_ssd,
            "coco": section_coco, "frechet": section_frechet, "inception": section_inception}


def table() -> str:
    env = RESULT["env"]
    lines = [f"### jaxvision vs peers on {env.get('card', '?')} (jax {env.get('jax')}, torch {env.get('torch')}, "
             f"torchvision {env.get('torchvision')})", "",
             "| workload | ours (ms) | peer (ms) | ratio peer/ours | target |", "|---|---:|---:|---:|---|"]
    for r in RESULT["rows"]:
        peer = f"{r['peer_ms']:.3f}" if "peer_ms" in r else ""
        ratio = f"{r['ratio']:.2f}x" if "ratio" in r else ""
        target = f">= {r['target']:g}x {'ok' if r['ok'] else 'MISS'}" if "target" in r else ""
        lines.append(f"| {r['name']} | {r['ours_ms']:.3f} | {peer} | {ratio} | {target} |")
    return "\n".join(lines)


def main(argv=None):
    global ARGS, DEVICE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_argument(ap)
    ap.set_defaults(device="gpu")
    ap.add_argument("--quick", action="store_true", help="small sizes (a dry run)")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    ap.add_argument("--out", default=os.environ.get("OUT", "runs/bench"))
    ARGS = ap.parse_args(argv)
    unknown = sorted(set(ARGS.sections.split(",")) - set(SECTIONS))
    if unknown:
        ap.error(f"--sections: unknown {unknown}; expected names from {list(SECTIONS)}")
    DEVICE = select_device(ARGS.device, ap)  # JAX on the chosen platform; on the GPU cudnn.benchmark is on
    section_env()
    for name in ARGS.sections.split(","):
        log("== section", name)
        try:
            SECTIONS[name]()
        except Exception:  # noqa: BLE001  (one failed section must not lose the others' rows)
            RESULT["errors"][name] = traceback.format_exc()[-3000:]
            log("ERROR in", name, RESULT["errors"][name])
        save()
    text = table()
    RESULT["table"] = text
    save()
    print(text)
    for name, err in RESULT["errors"].items():
        print("ERROR", name, err.strip().splitlines()[-1])
    return 1 if RESULT["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
