"""Input pipeline throughput: VOC-style training batches at 300 px, the grain pipeline vs the old loader.

    PYTHONPATH=. python benchmarks/input_pipeline.py [--images 96] [--batch 32] [--batches 40] [--threads 2 3]
        [--workers 2] [--rounds 5] [--repeats 3] [--out docs/results/cpu/input_pipeline.json]

The data set is built here, in TFDS format, with nothing downloaded: ``--images`` VOC-sized (500x375) crops of the
real photographs bundled with scikit-image, stored JPEG-encoded (quality 90), with 1-4 boxes each, read through
``jaxvision.data.load('voc/2007', ..., source=...)`` exactly as a prepared ``tfds.data_source('voc/2007')`` split
is. TFDS stores JPEG bytes and decodes on access; with OpenCV installed (a jaxvision dependency)
``tfds.data_source`` decodes with ``cv2.imdecode`` + ``cvtColor(BGR2RGB)`` (``Image.decode_example_np``), which the
``opencv`` source here repeats; the ``pil`` source decodes with PIL as the old benchmark did. Both give the same
pixels (libjpeg-turbo; checked below).

Rows (every image: 300x300, the same boxes a user trains on):

- ``old``: the old loader, kept here verbatim as the baseline (``OldBatches``): one example at a time in the
  training loop's thread, PIL decode, PIL bilinear resize, float32 [0, 1] images, no host augmentation (its flip ran
  on the device);
- ``ssd_host``: ``augment='ssd'`` (IoU crop, resize of the crop only, flip, colour distortion with uint8 lookup
  tables, all on the host), ``resize='cv2'``, ``image_dtype='uint8'`` (the train step makes them float: 1/4 of the
  bytes to build, stack, move), OpenCV-decoding source, batches built by ``--threads`` grain reader threads (a row
  per count)
  (``Dataset.with_loader``, read as ``fit`` reads them: ``Dataset.steps``);
- ``ssd_geometric``: the same with the colour distortion moved to the device (``augment='ssd_geometric'``: the
  host decodes, crops, resizes, flips; ``jaxvision.ops.photometric_distort`` runs in the jitted train step, which
  the ``ssd300_voc`` preset does); also with ``--workers`` grain worker processes.

Both augmented rows build their batches in place (``jaxvision.data.detection_rows.DetectionBatches``, what
``load`` uses for detection sets: the crop a view of the decoded image, resized by OpenCV straight into the batch,
flipped there, the boxes of the whole batch at once); ``ssd_geometric_generic`` is the single-thread CPU time of
the same batches built by the generic ``SourceBatches`` (example dicts, a copy of each crop, per-row arrays
stacked), the same pixels and boxes bit for bit.

Reported: images/s of each row over ``--batches`` batches, timed from the creation of the iterator (thread /
worker start-up included) and, separately, after the first batch (steady rate), the median of ``--repeats``
interleaved rounds (on this shared VM a row's rate moves +-15 % from one run to the next); single-thread process
CPU ms per image of each row and of each stage (the least of ``--rounds`` interleaved rounds: other jobs only add
time); the ratio to ``old`` measured, and the ratio expected on 2 quiet cores from the CPU times: ``old`` uses one
core, a threaded row both (decoding and OpenCV release the GIL), so expected = 2 x cpu(old) / cpu(row). Then the input
rate a GPU run of ``ssd300_voc`` needs: one train step ~ 3 forward passes (forward + backward), the SSD300 forward
at batch 32 taking 8.7 ms on an H200 (``benchmarks/gpu.py``), so about 38 steps/s, 1226 images/s, and the host
cores each row would keep busy at that rate (1226 x its CPU ms per image).
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
    """TFDS-format VOC examples whose JPEG bytes are decoded on access: with PIL (``decoder='pil'``, the old
    benchmark) or as ``tfds.data_source`` does with OpenCV installed (``decoder='opencv'``)."""

    def __init__(self, n: int, seed: int = 0, decoder: str = "pil", records=None):
        if decoder not in ("pil", "opencv"):
            raise ValueError(f"decoder: expected 'pil' or 'opencv', got {decoder!r}")
        self.decoder = decoder
        self.records = records if records is not None else self._make(n, seed)

    @staticmethod
    def _make(n: int, seed: int) -> list:
        from PIL import Image

        from jaxvision.data.photos import images

        photos = [(p * 255).astype(np.uint8) for p in images("train") + images("test")]
        rng = np.random.default_rng(seed)
        records = []
        for k in range(n):
            p = photos[k % len(photos)]
            h, w = (375, 500) if p.shape[1] >= 500 else (p.shape[0] * 3 // 4, p.shape[1])
            y, x = rng.integers(0, p.shape[0] - h + 1), rng.integers(0, p.shape[1] - w + 1)
            buf = io.BytesIO()
            Image.fromarray(p[y:y + h, x:x + w]).save(buf, format="JPEG", quality=90)
            m = int(rng.integers(1, 5))
            yx0 = rng.uniform(0, 0.6, (m, 2))
            yx1 = yx0 + rng.uniform(0.1, 0.4, (m, 2))
            records.append((buf.getvalue(), np.concatenate([yx0, np.minimum(yx1, 1)], -1).astype(np.float32),
                            rng.integers(0, 20, m), rng.random(m) < 0.1, f"{k:06d}.jpg"))
        return records

    def with_decoder(self, decoder: str) -> JpegSource:
        return JpegSource(0, decoder=decoder, records=self.records)

    def __len__(self) -> int:
        return len(self.records)

    def decode(self, data: bytes) -> np.ndarray:
        if self.decoder == "pil":
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                return np.asarray(im.convert("RGB"))
        import cv2

        return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)

    def __getitem__(self, i: int) -> dict:
        data, bbox, label, difficult, name = self.records[i]
        return {"image": self.decode(data), "image/filename": name,
                "objects": {"bbox": bbox, "label": label, "is_difficult": difficult}}


# --- the old loader, verbatim (jaxvision/data/tfds.py before the uint8 / OpenCV changes): the baseline ----------
def _old_resize(img: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    if img.shape[0] == size and img.shape[1] == size:
        return img.astype(np.float32) / 255.0
    channels = img.shape[-1]
    pil = Image.fromarray(img[..., 0] if channels == 1 else img)
    out = np.asarray(pil.resize((size, size), Image.BILINEAR), np.float32) / 255.0
    return out.reshape(size, size, channels)


def _old_convert(example: dict, image_size: int, max_boxes: int, index: int = 0) -> dict:
    from jaxvision.data.tfds import image_id_of

    objects = example["objects"]
    bbox = np.asarray(objects["bbox"], np.float32).reshape(-1, 4)
    labels = np.asarray(objects["label"], np.int64).reshape(-1)
    flag_key = "is_difficult" if "is_difficult" in objects else "is_crowd"
    flags = np.asarray(objects.get(flag_key, np.zeros(len(labels), bool)), bool).reshape(-1)
    n = min(len(bbox), len(labels), len(flags), max_boxes)
    image = np.asarray(example["image"])
    h, w = image.shape[:2]
    out = {"image": _old_resize(image, image_size),
           "boxes": np.zeros((max_boxes, 4), np.float32), "labels": np.full(max_boxes, -1, np.int32),
           "mask": np.zeros(max_boxes, bool), "difficult": np.zeros(max_boxes, bool),
           "crowd": np.zeros(max_boxes, bool), "image_id": np.int64(image_id_of(example, index)),
           "image_hw": np.array([h, w], np.int32), "area": np.zeros(max_boxes, np.float32)}
    ymin, xmin, ymax, xmax = (np.clip(bbox[:n, k], 0.0, 1.0) for k in range(4))
    out["boxes"][:n] = np.stack([xmin, ymin, xmax, ymax], -1) * image_size
    if "area" in objects:
        out["area"][:n] = np.asarray(objects["area"], np.float32).reshape(-1)[:n]
    else:
        out["area"][:n] = (xmax - xmin) * w * (ymax - ymin) * h
    out["labels"][:n] = labels[:n]
    out["mask"][:n] = True
    out["difficult" if flag_key == "is_difficult" else "crowd"][:n] = flags[:n]
    return out


class OldBatches:
    """The old ``make_batch``: row j is ``convert(source[idx[j]])`` with PIL resizing, then ``np.stack``."""

    def __init__(self, source, image_size: int, max_boxes: int):
        self.source, self.image_size, self.max_boxes = source, image_size, max_boxes

    def __call__(self, idx, rngs) -> dict:
        examples = [_old_convert(self.source[int(i)], self.image_size, self.max_boxes, int(i)) for i in idx]
        return {k: np.stack([e[k] for e in examples]) for k in examples[0]}
# ----------------------------------------------------------------------------------------------------------------


def _rates(batches, n_batches: int, batch_size: int) -> tuple[float, float, float]:
    """(images/s over ``n_batches`` batches timed from the creation of the iterator, start-up and the batches
    built ahead included; images/s after the first batch; seconds to the first batch)."""
    t0 = time.perf_counter()
    it = iter(batches)
    next(it)
    t1 = time.perf_counter()
    for _ in range(n_batches - 1):
        next(it)
    t2 = time.perf_counter()
    close = getattr(it, "close", None)
    if close is not None:
        close()
    return n_batches * batch_size / (t2 - t0), (n_batches - 1) * batch_size / max(t2 - t1, 1e-9), t1 - t0


def _cpu_ms(fn, n: int, per: int = 1) -> float:
    """Process CPU milliseconds per item of ``fn(k)`` (``per`` items each) for k < n, in this thread."""
    fn(0)
    t0 = time.process_time()
    for k in range(n):
        fn(k)
    return (time.process_time() - t0) / (n * per) * 1e3


def _min_cpu_ms(fns: dict, n: int, rounds: int) -> dict:
    """``{name: (fn, items per call)}`` -> the least CPU ms per item of each over ``rounds`` interleaved rounds of
    ``n`` calls (other jobs on the machine only ever add time: the minimum is the least disturbed figure)."""
    best = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for k, (fn, per) in fns.items():
            best[k] = min(best[k], _cpu_ms(fn, n, per))
    return {k: round(v, 3) for k, v in best.items()}


def _stage_fns(source, size: int, n: int) -> dict:
    """The stages of the ``ssd_host`` row (and the old loader's PIL stages), one image per call."""
    from jaxvision.data import augment as A
    from jaxvision.data.base import _rng
    from jaxvision.data.tfds import convert_detection

    pil, cv = source.with_decoder("pil"), source.with_decoder("opencv")
    h_w = [cv[k]["image"].shape[:2] for k in range(len(source))]
    m = len(source)
    examples = [cv[k] for k in range(m)]
    rngs = [_rng(0, 0xA06, 0, k) for k in range(n + 1)]
    crops = [A.iou_crop(examples[k % m], _rng(0, 1, k)) for k in range(m)]
    small = [A.resize_image(c, size) for c in crops]
    u8 = [s["image"] for s in small[:32]]
    f32 = [s.astype(np.float32) / 255.0 for s in u8]
    return {"decode_pil": (lambda k: pil[k % m], 1), "decode_opencv": (lambda k: cv[k % m], 1),
            "old_resize_convert_pil": (lambda k: _old_convert(examples[k % m], size, 42, k), 1),
            "rng": (lambda k: _rng(0, 0xA06, 0, k), 1),
            "iou_crop": (lambda k: A.iou_crop(examples[k % m], rngs[k]), 1),
            "choose_crop": (lambda k: A.choose_crop(A.pixel_boxes(examples[k % m]["objects"]["bbox"], *h_w[k % m]),
                                                    *h_w[k % m], rngs[k]), 1),
            "resize_crop_cv2": (lambda k: A.resize_image(crops[k % m], size), 1),
            "hflip": (lambda k: A.hflip(small[k % m], rngs[k]), 1),
            "photometric_host": (lambda k: A.photometric_distort(small[k % m]["image"], rngs[k]), 1),
            "convert_uint8": (lambda k: convert_detection(small[k % m], size, 42, k, "cv2", "uint8"), 1),
            "stack_uint8": (lambda k: np.stack(u8), len(u8)), "stack_float32": (lambda k: np.stack(f32), len(f32))}


def _pickling(dataset, source, size: int, batch_size: int) -> dict:
    """What worker processes pay besides the work: the data set pickled into each worker (MB), and CPU ms to pickle
    + unpickle one batch (the way grain moves batches from its workers) with uint8 vs float32 images."""
    import pickle

    from jaxvision.data import load

    out = {"processes_dataset_pickle_mb": round(len(pickle.dumps(dataset)) / 1e6, 2)}
    for dtype in ("uint8", "float32"):
        batch = load("voc/2007", "train", batch_size, image_size=size, max_boxes=42, source=source,
                     augment="ssd_geometric", resize="cv2", image_dtype=dtype).batch(0)
        t0 = time.process_time()
        for _ in range(3):
            pickle.loads(pickle.dumps(batch, protocol=5))
        out[f"processes_pickle_ms_per_batch_{dtype}"] = round((time.process_time() - t0) / 3 * 1e3, 1)
    return out


def _device_photometric_cpu_ms(batch: int, size: int) -> float:
    """CPU ms per image of ``jaxvision.ops.photometric_distort`` jitted on this CPU (in a real run it is part of
    the train step on the accelerator)."""
    import jax
    import jax.numpy as jnp

    from jaxvision.ops import photometric_distort

    fn = jax.jit(lambda x, r: photometric_distort(x.astype(jnp.float32) / 255.0, r))
    x = jnp.asarray(np.random.default_rng(0).integers(0, 256, (batch, size, size, 3), dtype=np.uint8))
    fn(x, jax.random.PRNGKey(0)).block_until_ready()
    t0, reps = time.process_time(), 3
    for k in range(reps):
        fn(x, jax.random.PRNGKey(k)).block_until_ready()
    return round((time.process_time() - t0) / (reps * batch) * 1e3, 3)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=96)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--workers", type=int, default=2, help="grain worker processes of the 'processes' row (0: none)")
    p.add_argument("--threads", type=int, nargs="+", default=[2, 3],
                   help="grain reader threads of the threaded rows (one row each; more threads than cores let one "
                        "thread decode while another waits for the GIL)")
    p.add_argument("--size", type=int, default=300)
    p.add_argument("--cpu-images", type=int, default=96, help="images timed for each single-thread CPU figure")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds of each CPU figure (the least is kept)")
    p.add_argument("--repeats", type=int, default=3,
                   help="interleaved rounds of the throughput rows (the median of each row is reported)")
    p.add_argument("--out", default="", help="write the results as JSON here")
    args = p.parse_args(argv)
    if args.batches < 2 or min(args.threads) < 1 or args.rounds < 1 or args.repeats < 1:
        p.error(f"--batches, --threads, --rounds, --repeats: expected >= 2, >= 1, >= 1, >= 1, got {args.batches}, "
                f"{args.threads}, {args.rounds}, {args.repeats}")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import cv2
    import grain  # noqa: F401  (imported once per process, not per pipeline: outside the clocks)

    from benchmarks.harness import machine
    from jaxvision.data import load
    from jaxvision.data.base import Dataset
    from jaxvision.data.tfds import SourceBatches

    cv2.setNumThreads(1)  # one core per image: the rows parallelise over images
    t_start = time.perf_counter()
    pil_source = JpegSource(args.images, decoder="pil")
    cv_source = pil_source.with_decoder("opencv")
    for k in range(min(4, len(pil_source))):
        if not np.array_equal(pil_source[k]["image"], cv_source[k]["image"]):
            raise AssertionError(f"PIL and OpenCV decode example {k} differently")
    size, n_cpu = args.size, args.cpu_images

    def old(batch_size):
        return Dataset(len(pil_source), OldBatches(pil_source, size, 42), batch_size, seed=0, host_id=0,
                       num_hosts=1, info={"name": "voc/2007"})

    def new(augment, batch_size):
        return load("voc/2007", "train", batch_size, image_size=size, max_boxes=42, source=cv_source,
                    augment=augment, resize="cv2", image_dtype="uint8")

    rows = {"old": (old(args.batch), {})}
    for augment in ("ssd_host", "ssd_geometric"):
        for t in args.threads:
            rows[f"{augment} threads={t}"] = (new("ssd" if augment == "ssd_host" else augment, args.batch),
                                              dict(threads=t, buffer=t))
    if args.workers:
        rows[f"ssd_geometric processes={args.workers}"] = (new("ssd_geometric", args.batch),
                                                           dict(workers=args.workers, buffer=2))
    runs = {name: [] for name in rows}
    for _ in range(args.repeats):  # interleaved rounds: a slow spell of the machine hits every row alike
        for name, (ds, loader) in rows.items():
            runs[name].append(_rates(ds.with_loader(**loader).steps(0, args.batches), args.batches, args.batch))
    rates = {name: tuple(float(np.median([r[k] for r in rs])) for k in range(3)) for name, rs in runs.items()}
    b = min(args.batch, n_cpu)
    generic = new("ssd_geometric", b)
    parts = generic._make_batch  # the same batches from the generic row builder (example dicts, np.stack)
    generic._make_batch = SourceBatches(parts.source, parts.convert, parts.augment)
    singles = {"old": old(b), "ssd_host": new("ssd", b), "ssd_geometric": new("ssd_geometric", b),
               "ssd_geometric_generic": generic}
    cpu = _min_cpu_ms({k: (lambda i, d=d: d.batch(i % len(d), i // len(d)), b) for k, d in singles.items()},
                      max(1, n_cpu // b), args.rounds)
    stages = _min_cpu_ms(_stage_fns(cv_source, size, n_cpu), n_cpu, args.rounds)
    device_ms = _device_photometric_cpu_ms(args.batch, size)
    old_rate = rates["old"][0]
    need_steps = 1.0 / (TRAIN_STEP_OVER_FORWARD * SSD300_FWD_B32_H200_S)
    metrics = {"old_images_per_s": round(old_rate, 1)}
    for name, (total, steady, first) in rates.items():
        key = name.replace(" ", "_")
        metrics[f"{key}_images_per_s"] = round(total, 1)
        metrics[f"{key}_steady_images_per_s"] = round(steady, 1)
        metrics[f"{key}_first_batch_s"] = round(first, 2)
        if name != "old":
            metrics[f"{key}_ratio"] = round(total / old_rate, 3)
    for augment in ("ssd_host", "ssd_geometric"):
        best = max((k for k in rates if k.startswith(augment + " ")), key=lambda k: rates[k][0])
        metrics[f"{augment}_best"] = best
        metrics[f"{augment}_best_ratio"] = round(rates[best][0] / old_rate, 3)
    metrics |= {f"cpu_ms_per_image_{k}": v for k, v in cpu.items()}
    metrics |= {f"expected_quiet_2core_ratio_{k}": round(2 * cpu["old"] / cpu[k], 2) for k in cpu if k != "old"}
    metrics["in_place_vs_generic_cpu_ratio"] = round(cpu["ssd_geometric_generic"] / cpu["ssd_geometric"], 3)
    metrics |= {f"host_cores_for_ssd300_voc_gpu_{k}": round(need_steps * 32 * v / 1e3, 2) for k, v in cpu.items()}
    metrics |= _pickling(new("ssd_geometric", args.batch), cv_source, size, args.batch)
    metrics |= {"target_ratio": 4.0, "stage_cpu_ms_per_image": stages,
                "device_photometric_cpu_ms_per_image_if_run_on_this_cpu": device_ms,
                "ssd300_voc_gpu_steps_per_s_needed": round(need_steps, 1),
                "ssd300_voc_gpu_images_per_s_needed": round(need_steps * 32, 1)}
    result = {
        "experiment": "input_pipeline",
        "command": "PYTHONPATH=. python benchmarks/input_pipeline.py " + " ".join(argv if argv is not None
                                                                                    else sys.argv[1:]),
        "config": vars(args) | {"cores": len(os.sched_getaffinity(0)), "load_average_1min": os.getloadavg()[0]},
        "where": {"old": "host, loop thread: PIL decode + PIL resize + float32",
                  "ssd_geometric_generic": "ssd_geometric's batches from the generic SourceBatches (CPU time only)",
                  "ssd_host": "host, grain: OpenCV decode, IoU crop, cv2 resize of the crop, flip, colours (LUT) -> "
                              "uint8; device: float32(x) / 255",
                  "ssd_geometric": "host, grain: OpenCV decode, IoU crop, cv2 resize of the crop, flip -> uint8; "
                                   "device (train step): float32(x) / 255, photometric_distort"},
        "metrics": metrics,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    print(f"### Input pipeline, VOC-style {size} px, batch {args.batch} ({result['machine']}, load "
          f"{result['config']['load_average_1min']:.1f})")
    for name, (total, steady, _) in rates.items():
        ratio = "" if name == "old" else f" -> {total / old_rate:.2f}x old"
        print(f"{name:32s} {total:7.0f} images/s ({steady:.0f} after the first batch){ratio}")
    print("best: " + ", ".join(f"{metrics[f'{a}_best']} {metrics[f'{a}_best_ratio']:.2f}x"
                                for a in ("ssd_host", "ssd_geometric")))
    print("single-thread CPU ms per image: " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()))
    print("expected on 2 quiet cores (2 x cpu(old) / cpu(row)): " + ", ".join(
        f"{k} {metrics[f'expected_quiet_2core_ratio_{k}']:.2f}x" for k in cpu if k != "old") + " (target >= 4x)")
    print("stages (CPU ms per image): " + ", ".join(f"{k} {v:.3f}" for k, v in stages.items()))
    print(f"device photometric_distort if run on this CPU: {device_ms:.2f} ms per image")
    print("worker processes: first batch after " + ", ".join(
        f"{metrics[k]:.1f} s" for k in metrics if "processes" in k and k.endswith("first_batch_s")) +
        f"; data set pickled into each: {metrics['processes_dataset_pickle_mb']:.1f} MB; a batch pickled + "
        f"unpickled: {metrics['processes_pickle_ms_per_batch_uint8']:.1f} ms uint8, "
        f"{metrics['processes_pickle_ms_per_batch_float32']:.1f} ms float32")
    print(f"a GPU ssd300_voc run needs ~{metrics['ssd300_voc_gpu_steps_per_s_needed']:.0f} steps/s = "
          f"{metrics['ssd300_voc_gpu_images_per_s_needed']:.0f} images/s (train step ~ {TRAIN_STEP_OVER_FORWARD:g} x "
          f"the {SSD300_FWD_B32_H200_S * 1e3:g} ms H200 forward at batch 32), i.e. host cores busy: " + ", ".join(
              f"{k} {metrics[f'host_cores_for_ssd300_voc_gpu_{k}']:.1f}" for k in cpu))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
