"""Input pipeline throughput: VOC-style training batches at 300 px, the new grain pipeline vs the current loader.

    PYTHONPATH=. python benchmarks/input_pipeline.py [--images 96] [--batch 32] [--batches 12] [--threads 2 4]
                                    [--workers 2] [--out docs/results/cpu/input_pipeline.json]

The data set is built here, in TFDS format, with nothing downloaded: ``--images`` VOC-sized (500x375) crops of the
real photographs bundled with scikit-image, stored JPEG-encoded (quality 90) and decoded with PIL on access, with
1-4 boxes each, read through ``jaxvision.data.load('voc/2007', ..., source=...)`` exactly as a prepared
``tfds.data_source('voc/2007')`` split is (TFDS also stores JPEG bytes and decodes on access).

- current loader: ``load(...)`` iterated in the training loop's thread (decode, PIL resize; its flip runs on the
  device, so the host does no augmentation);
- grain pipeline: the same data set with SSD augmentation on the host (IoU crop, flip and photometric distortion:
  ``augment='ssd'``), OpenCV resize (``resize='cv2'``), batches built ahead by grain reader threads (``--threads``;
  decoding and OpenCV release the GIL) or ``--workers`` worker processes (``Dataset.with_loader``), read the way
  ``fit`` reads them (``Dataset.steps``).

Reports images/s of both (``--batches`` batches, timed from the start, start-up included), single-thread CPU time
per image (insensitive to other jobs on the machine) and the ratio (target >= 4x), then the
input rate a GPU run of ``ssd300_voc`` needs: one train step ~ 3 forward passes (forward + backward), the forward
pass of SSD300 at batch 32 taking 8.7 ms on an H200 (``benchmarks/gpu.py``), so about 38 steps/s, 1226 images/s.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time

import numpy as np

SSD300_FWD_B32_H200_S = 8.7e-3  # benchmarks/gpu.py, docs/results/h200/
TRAIN_STEP_OVER_FORWARD = 3.0   # forward + backward of a conv net ~ 3 forward passes


class JpegSource:
    """TFDS-format VOC examples: JPEG bytes decoded with PIL on access (as ``tfds.data_source`` does)."""

    def __init__(self, n: int, seed: int = 0):
        from PIL import Image

        from jaxvision.data.photos import images

        photos = [(p * 255).astype(np.uint8) for p in images("train") + images("test")]
        rng = np.random.default_rng(seed)
        self.records = []
        for k in range(n):
            p = photos[k % len(photos)]
            h, w = (375, 500) if p.shape[1] >= 500 else (p.shape[0] * 3 // 4, p.shape[1])
            y, x = rng.integers(0, p.shape[0] - h + 1), rng.integers(0, p.shape[1] - w + 1)
            buf = io.BytesIO()
            Image.fromarray(p[y:y + h, x:x + w]).save(buf, format="JPEG", quality=90)
            m = int(rng.integers(1, 5))
            yx0 = rng.uniform(0, 0.6, (m, 2))
            yx1 = yx0 + rng.uniform(0.1, 0.4, (m, 2))
            self.records.append((buf.getvalue(), np.concatenate([yx0, np.minimum(yx1, 1)], -1).astype(np.float32),
                                 rng.integers(0, 20, m), rng.random(m) < 0.1, f"{k:06d}.jpg"))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        from PIL import Image

        data, bbox, label, difficult, name = self.records[i]
        with Image.open(io.BytesIO(data)) as im:
            image = np.asarray(im.convert("RGB"))
        return {"image": image, "image/filename": name,
                "objects": {"bbox": bbox, "label": label, "is_difficult": difficult}}


def _rate(batches, n_batches: int, batch_size: int) -> float:
    """Images/s over ``n_batches`` batches, timed from the creation of the iterator (worker start-up and the
    batches built ahead count; nothing is built before the clock starts)."""
    t0 = time.perf_counter()
    it = iter(batches)
    for _ in range(n_batches):
        next(it)
    dt = time.perf_counter() - t0
    close = getattr(it, "close", None)
    if close is not None:
        close()
    return n_batches * batch_size / dt


def _cpu_ms_per_image(fn, n: int) -> float:
    """Process CPU milliseconds per image of ``fn(k)`` for k < n, in this thread (insensitive to other jobs)."""
    fn(0)
    t0 = time.process_time()
    for k in range(n):
        fn(k)
    return (time.process_time() - t0) / n * 1e3


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=96)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--batches", type=int, default=12)
    p.add_argument("--workers", type=int, default=2, help="grain worker processes of the 'processes' row")
    p.add_argument("--threads", type=int, nargs="+", default=[2, 4], help="grain reader threads of the 'threads' rows")
    p.add_argument("--size", type=int, default=300)
    p.add_argument("--out", default="", help="write the results as JSON here")
    args = p.parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    from benchmarks.harness import machine
    from jaxvision.data import load

    t_start = time.perf_counter()
    source = JpegSource(args.images)
    opts = dict(image_size=args.size, max_boxes=42, source=source)
    current = load("voc/2007", "train", args.batch, **opts)
    stop = args.batches
    old_rate = _rate((current.batch(k % len(current), k // len(current)) for k in range(stop)), args.batches,
                     args.batch)
    loaders = {f"threads={t}": dict(threads=t, buffer=t) for t in args.threads}
    if args.workers:
        loaders[f"processes={args.workers}"] = dict(workers=args.workers, buffer=2)
    rates = {}
    for name, loader in loaders.items():
        new = load("voc/2007", "train", args.batch, augment="ssd", resize="cv2", **opts).with_loader(**loader)
        rates[name] = _rate(new.steps(0, stop), args.batches, args.batch)
    best = max(rates, key=rates.get)
    new_rate = rates[best]
    singles = {"current": load("voc/2007", "train", 1, **opts),
               "augmented": load("voc/2007", "train", 1, augment="ssd", resize="cv2", **opts)}
    cpu = {f"cpu_ms_per_image_{k}": round(_cpu_ms_per_image(lambda i, d=d: d.batch(i % len(d)), 32), 3)
           for k, d in singles.items()}
    cpu["cpu_ms_per_image_jpeg_decode"] = round(_cpu_ms_per_image(lambda i: source[i % len(source)], 32), 3)
    step_s = TRAIN_STEP_OVER_FORWARD * SSD300_FWD_B32_H200_S
    need_steps = 1.0 / step_s
    result = {
        "experiment": "input_pipeline",
        "command": "PYTHONPATH=. python benchmarks/input_pipeline.py " + " ".join(argv if argv is not None
                                                                                    else sys.argv[1:]),
        "config": vars(args) | {"cores": len(os.sched_getaffinity(0)), "load_average_1min": os.getloadavg()[0]},
        "metrics": {"current_images_per_s": round(old_rate, 2), "grain_ssd_aug_images_per_s": round(new_rate, 2),
                    "best_loader": best, **{f"grain_{k}_images_per_s": round(v, 2) for k, v in rates.items()},
                    "ratio": round(new_rate / old_rate, 3), "target_ratio": 4.0, **cpu,
                    "ssd300_voc_gpu_steps_per_s_needed": round(need_steps, 1),
                    "ssd300_voc_gpu_images_per_s_needed": round(need_steps * 32, 1)},
        "machine": machine(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    m = result["metrics"]
    print(f"### Input pipeline, VOC-style {args.size} px, batch {args.batch} ({result['machine']})")
    print(f"current loader (decode + PIL resize, no host augmentation): {m['current_images_per_s']:.0f} images/s")
    for name, rate in rates.items():
        print(f"grain ({name}), SSD augmentation + cv2 resize: {rate:.0f} images/s -> {rate / old_rate:.2f}x")
    print(f"best: {best}, {m['ratio']:.2f}x the current loader (target >= 4x)")
    print(f"single-thread CPU ms per image: current {m['cpu_ms_per_image_current']:.2f}, augmented "
          f"{m['cpu_ms_per_image_augmented']:.2f}, of which JPEG decoding {m['cpu_ms_per_image_jpeg_decode']:.2f}")
    print(f"a GPU ssd300_voc run needs ~{m['ssd300_voc_gpu_steps_per_s_needed']:.0f} steps/s = "
          f"{m['ssd300_voc_gpu_images_per_s_needed']:.0f} images/s (train step ~ {TRAIN_STEP_OVER_FORWARD:g} x "
          f"the {SSD300_FWD_B32_H200_S * 1e3:g} ms H200 forward at batch 32)")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
