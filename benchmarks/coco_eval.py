"""COCO bbox evaluation end to end: jaxvision.metrics.evaluate_coco vs pycocotools vs faster-coco-eval.

Workload (synthetic, seeded): 5,000 images, 80 categories, up to 20 GT and 100 detections per image (COCO-like:
each image shows a few categories, detections are jittered GT copies plus false positives, 1% crowd GT,
coordinates with 2 decimals). Every evaluator starts from the same JSON-like Python dicts and lists; its time
includes parsing, matching, accumulation and summary. Ours is timed on its first call in the process (that is,
including XLA compilation) and again warm; the peers are timed once each (they have no warm-up).

Run: ``PYTHONPATH=. python benchmarks/coco_eval.py [--device cpu|gpu] [--images 5000] [--skip-pycocotools]``

``--device gpu`` runs ours on JAX's GPU backend; pycocotools and faster-coco-eval only run on the CPU (the row names
say so). No torch is involved, so the GPU check asks only JAX.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import resource
import time

import numpy as np

from benchmarks.harness import Row, add_device_argument, machine, print_table, select_device


def make_workload(seed=0, num_images=5000, num_cats=80, max_gt=20, max_dets=100):
    """(ground-truth dict, results list) as described in the module docstring."""
    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "width": 640, "height": 480} for i in range(num_images)]
    cats = [{"id": c + 1, "name": f"class{c}"} for c in range(num_cats)]
    anns, dets = [], []
    for img in range(1, num_images + 1):
        img_cats = rng.choice(num_cats, size=int(rng.integers(1, 6)), replace=False) + 1
        n_gt = int(rng.integers(0, max_gt + 1))
        wh = np.exp(rng.uniform(np.log(4), np.log(300), (n_gt, 2)))
        xy = rng.uniform(0, 640 - wh)
        gcat = rng.choice(img_cats, n_gt)
        crowd = rng.random(n_gt) < 0.01
        gbox = np.round(np.concatenate([xy, wh], 1), 2)
        for k in range(n_gt):
            b = gbox[k].tolist()
            anns.append({"id": len(anns) + 1, "image_id": img, "category_id": int(gcat[k]), "bbox": b,
                         "area": round(b[2] * b[3] * (0.7 if rng.random() < 0.5 else 1.0), 2),
                         "iscrowd": int(crowd[k])})
        n_dt = int(rng.integers(0, max_dets + 1))
        n_tp = min(n_dt, int(rng.integers(0, 3 * n_gt + 1))) if n_gt else 0
        src = rng.integers(0, max(n_gt, 1), n_tp)
        jit = rng.normal(0, 0.08, (n_tp, 4)) * np.tile(gbox[src, 2:] if n_gt else np.ones((n_tp, 2)), 2)
        tp_box = gbox[src] + jit if n_gt else np.zeros((0, 4))
        tp_box[:, 2:] = np.maximum(tp_box[:, 2:], 1.0)
        tp_cat = np.where(rng.random(n_tp) < 0.9, gcat[src] if n_gt else 1, rng.integers(1, num_cats + 1, n_tp))
        n_fp = n_dt - n_tp
        fwh = np.exp(rng.uniform(np.log(4), np.log(300), (n_fp, 2)))
        fp_box = np.concatenate([rng.uniform(0, 640 - fwh), fwh], 1)
        fp_cat = np.where(rng.random(n_fp) < 0.5, rng.choice(img_cats, n_fp), rng.integers(1, num_cats + 1, n_fp))
        boxes = np.round(np.concatenate([tp_box, fp_box]), 2)
        cats_d = np.concatenate([tp_cat, fp_cat]).astype(int)
        scores = np.round(rng.random(n_dt), 4)
        for k in range(n_dt):
            dets.append({"image_id": img, "category_id": int(cats_d[k]), "bbox": boxes[k].tolist(),
                         "score": float(scores[k])})
    return {"images": images, "annotations": anns, "categories": cats}, dets


def run_pycocotools(gt, dets, module="pycocotools"):
    quiet = contextlib.redirect_stdout(io.StringIO())
    if module == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval
    with quiet:
        t0 = time.perf_counter()
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        res = coco.loadRes(dets)
        ev = COCOeval(coco, res, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        dt = time.perf_counter() - t0
    return dt, np.asarray(ev.stats), ev.eval["precision"]


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None):
    ap = argparse.ArgumentParser()
    add_device_argument(ap)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-pycocotools", action="store_true")
    args = ap.parse_args(argv)
    device = select_device(args.device, ap, require_torch=False)
    gt, dets = make_workload(num_images=args.images)
    print(f"workload: {len(gt['images'])} images, {len(gt['categories'])} categories, "
          f"{len(gt['annotations'])} GT, {len(dets)} detections; {machine(device)}", flush=True)
    rss0 = peak_rss_mb()
    import jax  # noqa: F401  (import cost is not part of the evaluation)

    from jaxvision.metrics import evaluate_coco

    t0 = time.perf_counter()
    ours = evaluate_coco(gt, dets)
    first = time.perf_counter() - t0
    warm = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        evaluate_coco(gt, dets)
        warm.append(time.perf_counter() - t0)
    warm_s = float(np.median(warm))
    rss_ours = peak_rss_mb()
    print(f"ours: first call (incl. compile) {first:.2f} s, warm median {warm_s:.2f} s, "
          f"peak RSS so far {rss_ours:.0f} MB (before: {rss0:.0f} MB)", flush=True)
    rows = []
    fce_s, fce_stats, fce_prec = run_pycocotools(copy.deepcopy(gt), copy.deepcopy(dets), "faster_coco_eval")
    print(f"faster-coco-eval: {fce_s:.2f} s; max |stats diff| {np.abs(fce_stats - ours.stats).max():.2e}",
          flush=True)
    rows.append(Row("vs faster-coco-eval (CPU), first call", first, fce_s, first - warm_s, target=1.0))
    rows.append(Row("vs faster-coco-eval (CPU), warm", warm_s, fce_s, first - warm_s, target=1.0))
    if not args.skip_pycocotools:
        pc_s, pc_stats, pc_prec = run_pycocotools(copy.deepcopy(gt), copy.deepcopy(dets))
        print(f"pycocotools: {pc_s:.2f} s; max |stats diff| {np.abs(pc_stats - ours.stats).max():.2e}, "
              f"max |precision diff| {np.abs(pc_prec - ours.precision).max():.2e}", flush=True)
        rows.append(Row("vs pycocotools (CPU), first call", first, pc_s, first - warm_s, target=10.0))
        rows.append(Row("vs pycocotools (CPU), warm", warm_s, pc_s, first - warm_s, target=10.0))
    print(ours.summary())
    print_table(f"COCO bbox eval end to end, ours on {device.describe()} ({len(dets)} dets, "
                f"{len(gt['annotations'])} GT), peak RSS of the process after ours: {rss_ours:.0f} MB", rows, "peer",
                device=device)


if __name__ == "__main__":
    main()
