"""Generate README's result tables from the result files a run or benchmark wrote (no number is typed by hand).

    python docs/results/make_tables.py           # rewrite the tables in README.md
    python docs/results/make_tables.py --check   # exit 1 (naming the tables) if README.md differs from the files

Each table sits in README.md between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` and is rendered from:

- ``docs/results/runs/*.json``: the ``summary.json`` that ``jaxvision train`` / ``eval`` writes into its workdir
  (``experiments/_summary.py``: experiment, command, config, metrics, machine, date, wall_s), copied here for
  every reported run. Tables over runs are data-driven: a run file whose metrics a table recognizes adds a row
  (``detection``: any run with ``map50_voc`` or ``pck@0.1``; ``dcgan``: any run with ``trained_generator/fid``;
  ``mode_collapse``: any run with ``<data>/<loss>/modes_captured`` keys; without one, the table of
  ``docs/gan/mode_collapse_results.md``, the ``results.md`` that experiment wrote). A label for the model / data
  columns comes from ``LABELS`` (optional; the experiment name otherwise). A run file is the workdir's
  ``summary.json`` copied unchanged: ``cp runs/ssd_shapes/summary.json docs/results/runs/ssd_shapes.json``.
- ``docs/results/h200/*.json``: ``benchmarks/gpu.py`` result files (table ``gpu``, rows picked by ``GPU_ROWS``).
- ``docs/results/cpu/ops.md``: the table ``benchmarks/ops.py`` printed (table ``cpu_ops``, copied).
- ``docs/results/cpu/input_pipeline.json``: ``benchmarks/input_pipeline.py``'s result file (table
  ``input_pipeline``).

Pure text: no jax, so the README check (tests/test_results_tables.py) costs milliseconds.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RUNS = os.path.join(HERE, "runs")
README = os.path.join(ROOT, "README.md")

# experiment (or run-file stem) -> (model, data) shown in the detection table; others show the experiment name
LABELS = {
    "ssd_shapes": ("SSD (ResNetSmall, 16/8/4/2 maps, 1520 default boxes)", "shapes"),
    "yolo_shapes": ("YOLO v1 (S=8, B=2, conv head)", "shapes"),
    "localization_shapes": ("Localizer (GIoU)", "shapes, one object"),
    "landmarks_shapes": ("LandmarkNet (heatmap + soft-argmax)", "shapes, one object"),
    "faster_rcnn_shapes": ("Faster R-CNN (ResNetSmall stride 8, RPN 576 anchors, RoI Align head)", "shapes"),
    "fast_rcnn_shapes": ("Fast R-CNN (ResNetSmall stride 4, roi_pool 5x5, selective-search proposals)", "shapes"),
    "rcnn_shapes": ("R-CNN (CNN per 32 px warped selective-search proposal)", "shapes"),
}
ORDER = ("ssd_shapes", "yolo_shapes", "faster_rcnn_shapes", "fast_rcnn_shapes", "rcnn_shapes", "localization_shapes",
         "landmarks_shapes")  # first rows; others by file name


def load_runs(directory: str = RUNS) -> dict[str, dict]:
    """``{file stem: summary record}`` of ``directory/*.json``, known experiments first (``ORDER``)."""
    runs = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        with open(path) as f:
            rec = json.load(f)
        missing = [k for k in ("experiment", "command", "config", "metrics", "machine", "date", "wall_s")
                   if k not in rec]
        if missing:
            raise ValueError(f"{path}: not a run summary (missing keys {missing})")
        runs[os.path.splitext(os.path.basename(path))[0]] = rec
    rank = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(runs.items(), key=lambda kv: (rank.get(kv[1]["experiment"], len(ORDER)), kv[0])))


def _duration(s: float) -> str:
    s = round(s)
    return f"{s // 60} min {s % 60} s" if s >= 60 else f"{s} s"


def _link(stem: str) -> str:
    return f"[{stem}](docs/results/runs/{stem}.json)"


def _machine(rec: dict) -> str:
    m = rec["machine"]
    if isinstance(m, str):  # run files written before summary.json existed describe the machine in words
        return m
    load = m.get("loadavg")
    return (f"{m['cpu_count']}-core {m['backend']}" + (f", load {load[1]:.1f}" if load else "")
            if m.get("backend") == "cpu" else f"{m['device_count']}x {m['device_kind']}")


def _table(header: list[str], align: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
                     + ["| " + " | ".join(r) + " |" for r in rows])


# ----------------------------------------------------------------------------------------------- detection
def _detection_rows(runs: dict) -> list[list[str]]:
    rows = []
    for stem, rec in runs.items():
        m, c = rec["metrics"], rec["config"]
        if "map50_voc" not in m and "pck@0.1" not in m:
            continue
        model, data = LABELS.get(stem, LABELS.get(rec["experiment"], (rec["experiment"], c.get("dataset", "?"))))
        extras = [fmt.format(m[k]) for k, fmt in (("accuracy", "class acc {:.2f}"), ("mean_iou", "mean IoU {:.3f}"))
                  if k in m]
        if "map50_voc" in m:
            quality = f"{m['map50_voc']:.3f}" + (f" ({', '.join(extras)})" if extras else "")
        else:
            quality = ", ".join(fmt.format(m[k]) for k, fmt in (("pck@0.1", "PCK@0.1 {:.3f}"),
                                                                ("pck@0.05", "PCK@0.05 {:.3f}"),
                                                                ("nme", "NME {:.3f}")) if k in m)
        coco = "-"
        if "coco_ap" in m:
            coco = f"{m['coco_ap']:.3f}" + (f" ({m['coco_ap50']:.3f} / {m['coco_ap75']:.3f})"
                                             if "coco_ap50" in m and "coco_ap75" in m else "")
        fps = "-" if "fps_cpu" not in m else f"{m['fps_cpu']:.0f}" if m["fps_cpu"] >= 10 else f"{m['fps_cpu']:.2f}"
        train = (f"{c['num_steps']} steps x {c['batch_size']} images, {m['train_seconds']:.0f} s "
                 f"({_duration(rec['wall_s'])} wall; {_machine(rec)})" if "train_seconds" in m
                 else f"{_duration(rec['wall_s'])} wall; {_machine(rec)}")
        rows.append([model, data, quality, coco, fps, train, _link(stem)])
    return rows


def detection(runs: dict) -> str:
    return _table(["model", "data", "mAP@0.5 (VOC)", "COCO AP (AP50 / AP75)", "FPS (machine of the run)", "training",
                   "run"],
                  ["---", "---", "---:", "---:", "---:", "---", "---"], _detection_rows(runs))


# ----------------------------------------------------------------------------------------------- DCGAN
DCGAN_GROUPS = {"real_test_vs_train": "real test split vs train split",
                "random_init_generator": "random-init generator", "trained_generator": "trained generator",
                "trained_generator_ema": "trained generator, EMA weights"}


def dcgan(runs: dict) -> str:
    picked = {s: r for s, r in runs.items() if "trained_generator/fid" in r["metrics"]}
    rows = []
    for stem, rec in picked.items():
        m = rec["metrics"]
        groups = [g for g in DCGAN_GROUPS if f"{g}/fid" in m] + sorted(
            {k.rsplit("/", 1)[0] for k in m if k.endswith("/fid")} - set(DCGAN_GROUPS))
        for g in groups:
            rows.append(([_link(stem)] if len(picked) > 1 else []) + [
                DCGAN_GROUPS.get(g, g), f"{m[f'{g}/fid']:.2f}", f"{m[f'{g}/is']:.2f} ± {m[f'{g}/is_std']:.2f}",
                f"{m[f'{g}/label_entropy']:.3f}"])
    first = ["run"] if len(picked) > 1 else []
    return _table(first + ["samples", "digits FID (lower better)", "digits IS (higher better)",
                           "label entropy (max 2.303)"], ["---"] * len(first) + ["---", "---:", "---:", "---:"], rows)


# ----------------------------------------------------------------------------------------------- mode collapse
MODE_COLLAPSE_MD = os.path.join(ROOT, "docs", "gan", "mode_collapse_results.md")


def mode_collapse(runs: dict, fallback: str = MODE_COLLAPSE_MD) -> str:
    """Rows from the mode_collapse run files; with none, the table of ``docs/gan/mode_collapse_results.md``
    (the ``results.md`` the experiment wrote into its workdir, copied) verbatim."""
    rows = []
    for _, rec in runs.items():
        m = rec["metrics"]
        for key in [k for k in m if k.endswith("/modes_captured")]:
            p = key.rsplit("/", 1)[0]
            kind, loss = p.split("/", 1)
            rows.append([f"{kind} ({m[p + '/num_modes']} modes)", loss,
                         f"{m[p + '/modes_captured']:.1f} ± {m[p + '/modes_captured_std']:.1f}",
                         f"{100 * m[p + '/high_quality']:.1f} ± {100 * m[p + '/high_quality_std']:.1f}",
                         f"{m[p + '/reverse_kl']:.3f} ± {m[p + '/reverse_kl_std']:.3f}"])
    if not rows:
        return cpu_ops(runs, fallback)
    return _table(["data", "loss", "modes captured", "high quality (%)", "reverse KL"],
                  ["---", "---", "---:", "---:", "---:"], rows)


# ----------------------------------------------------------------------------------------------- classifier
def classifier(runs: dict) -> str:
    """A row per run with ``test_accuracy`` and ``test_errors`` (digits_classifier)."""
    rows = []
    for stem, rec in runs.items():
        m, c = rec["metrics"], rec["config"]
        if "test_accuracy" not in m or "test_errors" not in m:
            continue
        n = round(m["test_errors"] / (1 - m["test_accuracy"])) if m["test_accuracy"] < 1 else None
        right = f" ({n - m['test_errors']}/{n})" if n else ""
        rows.append([rec["experiment"], str(c.get("seed", "-")), f"{c['num_steps']} x {c['batch_size']}",
                     f"{100 * m['test_accuracy']:.1f}%{right}", str(m["test_errors"]),
                     f"{_duration(rec['wall_s'])} ({_machine(rec)})", _link(stem)])
    return _table(["experiment", "seed", "steps x batch", "test accuracy", "test errors", "wall", "run"],
                  ["---", "---:", "---", "---:", "---:", "---", "---"], rows)


# ----------------------------------------------------------------------------------------------- GPU (H200)
H200 = os.path.join(HERE, "h200")
# (label, run, file, selector): selector is a gpu.py row name, or ("variant", n, name) of run3_nms_variants.json
# (ours = that variant, peer = the 'torchvision' entry of the same n); the run column shows `run`.
GPU_ROWS = [
    ("nms, 1,000 clustered boxes (torchvision)", "3*", "run3_nms_variants.json",
     ("variant", 1000, "unroll8_bit1_sort0")),
    ("nms, 5,000", "3*", "run3_nms_variants.json", ("variant", 5000, "unroll8_bit0_sort0")),
    ("nms, 20,000", "3", "run3_gpu_results.json", "nms 20000 boxes"),
    ("nms, 100,000", "3", "run3_gpu_results.json", "nms 100000 boxes"),
    ("batched_nms, 8 x 2,000 boxes, 20 classes (ours vmapped, torchvision per image)", "2", "run2_gpu_results.json",
     "batched_nms 8 x 2000 boxes, 20 classes"),
    ("batched_nms, 16 x 5,000", "2", "run2_gpu_results.json", "batched_nms 16 x 5000 boxes, 20 classes"),
    ("roi_align forward, 1,000 RoIs on 2x64x64x256, 7x7, sampling 2, aligned", "3", "run3_gpu_results.json",
     "roi_align forward 2x64x64x256, 1000 RoIs, 7x7, sampling 2, aligned"),
    ("roi_align feature gradient, same", "3", "run3_gpu_results.json",
     "roi_align feature gradient 2x64x64x256, 1000 RoIs, 7x7, sampling 2, aligned"),
    ("roi_align forward, 4,096 RoIs on 8x100x100x256", "3", "run3_gpu_results.json",
     "roi_align forward 8x100x100x256, 4096 RoIs, 7x7, sampling 2, aligned"),
    ("roi_align feature gradient, same", "3", "run3_gpu_results.json",
     "roi_align feature gradient 8x100x100x256, 4096 RoIs, 7x7, sampling 2, aligned"),
    ("roi_align forward, 1,000 RoIs, adaptive sampling", "3", "run3_gpu_results.json",
     "roi_align forward 2x64x64x256, 1000 RoIs, 7x7, adaptive sampling, aligned"),
    ("DCGAN 64 px train step, batch 64 (PyTorch, pytorch/examples)", "2", "run2_gpu_results.json",
     "DCGAN 64 px train step, batch 64"),
    ("DCGAN 64 px train step, batch 128 (PyTorch, pytorch/examples)", "2", "run2_gpu_results.json",
     "DCGAN 64 px train step, batch 128"),
    ("DCGAN 64 px train step, batch 512 (PyTorch, pytorch/examples)", "2", "run2_gpu_results.json",
     "DCGAN 64 px train step, batch 512"),
    ("SSD300-VGG16 forward, batch 32 (torchvision ssd300_vgg16)", "2", "run2_gpu_results.json",
     "SSD300-VGG16 network forward, batch 32"),
    ("SSD300-VGG16 full predict incl. NMS, batch 32", "2", "run2_gpu_results.json",
     "SSD300-VGG16 full predict (decode + NMS), batch 32"),
    ("COCO eval, 5,000 images x 80 classes (pycocotools on the CPU)", "2", "run2_gpu_results.json",
     "evaluate_coco 5000 images x 80 classes (warm; pycocotools on the CPU)"),
    ("Fréchet distance d=2048, float64 (pytorch-fid's scipy sqrtm on the CPU)", "2", "run2_gpu_results.json",
     "frechet_distance d=2048 float64 (ours on gpu; pytorch-fid's scipy sqrtm on the CPU)"),
    ("FID Inception forward, batch 128, 64 px -> 299 (torchvision inception_v3)", "2", "run2_gpu_results.json",
     "FID InceptionV3 forward, batch 128 (64 px -> 299; torchvision inception_v3)"),
]
NMS_TARGET = 1.5  # issue 12's GPU bar for nms (gpu.py's rows carry their own target)


def _ms(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.3f}"


def _gpu_values(directory: str, file: str, selector) -> tuple[float, float, float | None]:
    with open(os.path.join(directory, file)) as f:
        data = json.load(f)
    if isinstance(selector, tuple):
        _, n, name = selector
        ms = {e["variant"]: e["ms"] for e in data if e["n"] == n}
        return ms[name], ms["torchvision"], NMS_TARGET
    (row,) = [r for r in data["rows"] if r["name"] == selector]
    return row["ours_ms"], row["peer_ms"], row.get("target")


def gpu(runs: dict | None = None, directory: str = H200) -> str:
    rows = []
    for label, run, file, selector in GPU_ROWS:
        ours, peer, target = _gpu_values(directory, file, selector)
        ratio = peer / ours
        tgt = f">= {target:g}x {'ok' if ratio >= target else 'MISS'}" if target else ""
        rows.append([label, _ms(ours), _ms(peer), f"{ratio:.2f}x", tgt, run])
    return _table(["workload (peer)", "ours (ms)", "peer (ms)", "ratio peer/ours", "target", "run"],
                  ["---", "---:", "---:", "---:", "---", "---"], rows)


# ----------------------------------------------------------------------------------------------- CPU ops
def cpu_ops(runs: dict | None = None, path: str = os.path.join(HERE, "cpu", "ops.md")) -> str:
    """The first markdown table of ``path`` (default: the file ``benchmarks/ops.py`` wrote), verbatim."""
    with open(path) as f:
        lines = f.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


# ----------------------------------------------------------------------------------------------- input pipeline
INPUT_PIPELINE_ROWS = (("old", "old (loop thread)"), ("ssd_host", "ssd_host (grain threads)"),
                       ("ssd_geometric", "ssd_geometric (grain threads + device colours)"))


def input_pipeline(runs: dict | None = None, path: str = os.path.join(HERE, "cpu", "input_pipeline.json")) -> str:
    """The rows of ``benchmarks/input_pipeline.py``'s result file: single-thread CPU ms per image, images/s per
    thread count (start-up included, medians of the interleaved rounds), ratio to the old loader, the 4x target;
    then the run's conditions."""
    with open(path) as f:
        rec = json.load(f)
    m, cfg = rec["metrics"], rec["config"]
    threads = cfg["threads"]
    rows = []
    for key, label in INPUT_PIPELINE_ROWS:
        if key == "old":
            rows.append([label, f"{m['cpu_ms_per_image_old']:.2f}", f"{m['old_images_per_s']:.0f}", "1x", ""])
            continue
        names = [f"{key}_threads={t}" for t in threads]
        best = m[f"{key}_best_ratio"]
        rows.append([label, f"{m[f'cpu_ms_per_image_{key}']:.2f}",
                     " / ".join(f"{m[f'{n}_images_per_s']:.0f}" for n in names),
                     " / ".join(f"{m[f'{n}_ratio']:.2f}x" for n in names),
                     f">= {m['target_ratio']:g}x {'met' if best >= m['target_ratio'] else 'MISS'} ({best:.2f}x)"])
    if "cpu_ms_per_image_ssd_geometric_generic" in m:
        rows.append(["ssd_geometric, the same batches from the per-example builder",
                     f"{m['cpu_ms_per_image_ssd_geometric_generic']:.2f}", "", "", ""])
    head = ["row (where the work runs)", "CPU ms / image (one thread)",
            f"images/s, {' / '.join(map(str, threads))} threads", "ratio to old", "target"]
    table = _table(head, ["---", "---:", "---:", "---:", "---"], rows)
    return (table + "\n\n" + f"{rec['date'][:10]}, {rec['machine']}, load average "
            f"{cfg['load_average_1min']:.1f} at the end of the run; `{os.path.relpath(path, ROOT)}`.")


TABLES: dict[str, Callable[[dict], str]] = {"detection": detection, "dcgan": dcgan, "mode_collapse": mode_collapse,
                                            "classifier": classifier, "gpu": gpu, "cpu_ops": cpu_ops,
                                            "input_pipeline": input_pipeline}


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- results:{re.escape(name)} -->\n)(.*?)(\n<!-- /results:{re.escape(name)} -->)", re.S)


def render(text: str, runs: dict | None = None) -> tuple[str, list[str]]:
    """``text`` (README) with every marked table regenerated, and the names of the tables that changed.

    Raises:
      ValueError: a table of ``TABLES`` without its markers in ``text``.
    """
    runs = load_runs() if runs is None else runs
    changed = []
    for name, make in TABLES.items():
        pat = _pattern(name)
        found = pat.search(text)
        if found is None:
            raise ValueError(f"README has no '<!-- results:{name} -->' ... '<!-- /results:{name} -->' block")
        table = make(runs)
        if found.group(2) != table:
            changed.append(name)
            text = text[:found.start(2)] + table + text[found.end(2):]
    return text, changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if README.md's tables differ from the files")
    p.add_argument("--readme", default=README)
    args = p.parse_args(argv)
    with open(args.readme) as f:
        text = f.read()
    new, changed = render(text)
    if args.check:
        if changed:
            print(f"README tables out of date with docs/results: {', '.join(changed)}; run "
                  f"`python docs/results/make_tables.py`", file=sys.stderr)
            return 1
        return 0
    if new != text:
        with open(args.readme, "w") as f:
            f.write(new)
    print(f"updated: {', '.join(changed) or '(nothing)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
