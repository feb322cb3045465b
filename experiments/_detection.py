"""Shared wiring of the detector experiments (yolo_shapes, ssd_shapes, localization_shapes, landmarks_shapes).

Not an experiment itself (leading underscore): state creation, the fit call, checkpoint restore, evaluation of a
``predict`` function over a split with ``jaxvision.metrics`` (VOC mAP@0.5, COCO AP), FPS, and PNGs of predictions.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments._run_options import RunOptions, fit_options, log_images
from jaxvision import data
from jaxvision.metrics import DetectionEvaluator, evaluate_voc
from jaxvision.metrics.detection.streaming import to_coco_results
from jaxvision.metrics.multihost import gather_from_processes, map_over_devices
from jaxvision.models.detection.common import make_loss_fn  # noqa: F401  (re-exported for the experiments)
from jaxvision.train import CheckpointManager, TrainState, fit, make_train_step
from jaxvision.train.checkpoint import CHECKPOINT_DIR


@dataclasses.dataclass
class ShapesTrainConfig(RunOptions):
    """Config fields shared by the detector experiments: data sizes, optimizer schedule, logging, checkpoints.

    Each experiment's ``Config`` subclasses this and adds its model fields (and overrides ``num_steps`` /
    ``warmup_steps``).
    """
    image_size: int = 64
    width: int = 16                   # backbone base channels
    batch_size: int = 16
    num_steps: int = 1000
    learning_rate: float = 2e-3
    weight_decay: float = 5e-4
    warmup_steps: int = 100
    num_train: int = 2048
    num_test: int = 256
    seed: int = 0
    measure_fps: bool = True          # time the jitted predict (measure_fps) after the final eval
    log_every: int = 50
    eval_every: int = 0
    checkpoint_every: int = 500
    keep: int = 2
    progress: bool = True


# Detection data sets the experiments can train on, and their number of (foreground) classes; the folder data
# sets ('coco_json', 'voc_xml': one's own data in ``cfg.data_dir``) have the classes their files list.
NUM_CLASSES = {"shapes": 6, "voc/2007": 20, "voc/2012": 20, "coco/2017": 80}
DetectionDataset = Literal["shapes", "voc/2007", "voc/2012", "coco/2017", "coco_json", "voc_xml"]
FOLDER_DATASETS = ("coco_json", "voc_xml")


@functools.lru_cache(maxsize=8)
def _folder_classes(name: str, data_dir: str) -> tuple[str, ...]:
    if name == "coco_json":
        from jaxvision.data import coco_json

        return coco_json.open_split(data_dir, "train").class_names
    from jaxvision.data import voc_xml

    return voc_xml.class_names_of(data_dir)


def num_classes(cfg) -> int:
    """Foreground classes of ``cfg.dataset`` (for a folder data set, those of its train split's files)."""
    if cfg.dataset in NUM_CLASSES:
        return NUM_CLASSES[cfg.dataset]
    return len(_folder_classes(cfg.dataset, getattr(cfg, "data_dir", "")))


def dataset_spec(cfg, **options) -> tuple[str, dict, int]:
    """``(name, options, num_classes)`` of ``cfg.dataset`` at ``cfg.image_size`` with ``cfg.max_boxes`` boxes per
    image (plus ``cfg.data_dir`` if set, and ``options``), for ``load_split`` and ``evaluate_detector``."""
    if getattr(cfg, "data_dir", ""):
        options = {"data_dir": cfg.data_dir, **options}
    return cfg.dataset, dict(image_size=cfg.image_size, max_boxes=cfg.max_boxes, **options), num_classes(cfg)


def single_object_spec(cfg) -> tuple[str, dict, int]:
    """The data set of the single-object experiments (localization, landmarks): ``shapes`` with one object."""
    return "shapes", dict(image_size=cfg.image_size, single_object=True), NUM_CLASSES["shapes"]


PALETTE = [(255, 60, 60), (60, 220, 60), (80, 120, 255), (255, 220, 40), (230, 60, 230), (40, 220, 220),
           (255, 150, 30), (250, 250, 250)]


def make_state(model, cfg, image_shape: Sequence[int], init_transform: Callable | None = None) -> TrainState:
    """Init ``model`` on zeros ``[1, *image_shape]``; AdamW with linear warm-up + cosine decay.

    ``init_transform(variables) -> variables`` (optional) replaces the initial variables, e.g. with ImageNet
    backbone weights (``torchvision_weights.merge_pretrained``).
    """
    init_rng, state_rng = jax.random.split(jax.random.PRNGKey(cfg.seed))
    variables = jax.jit(lambda r: model.init(r, jnp.zeros((1, *image_shape), jnp.float32)))(init_rng)
    if init_transform is not None:
        variables = init_transform(variables)
    tx = optax.chain(optax.clip_by_global_norm(10.0), optax.adamw(lr_schedule(cfg), weight_decay=cfg.weight_decay))
    return TrainState.create(apply_fn=model.apply, params=variables["params"], tx=tx, rng=state_rng,
                             batch_stats=variables.get("batch_stats", {}))


def lr_schedule(cfg):
    """The detectors' learning rate: linear warmup from 0 over ``warmup_steps``, cosine decay to 1% at
    ``num_steps`` (an optax schedule, update count -> lr)."""
    return optax.warmup_cosine_decay_schedule(0.0, cfg.learning_rate, cfg.warmup_steps,
                                              max(cfg.num_steps, cfg.warmup_steps + 1),
                                              end_value=0.01 * cfg.learning_rate)


def hflip(batch: dict, rng) -> dict:
    """Randomly mirror each image (and its boxes) left-right with probability 1/2 (jit-safe, static shapes).

    A two-stage batch's ``proposals`` ``[B, P, 4]`` (valid where ``proposal_mask``) are mirrored with their image.
    """
    img = batch["image"]
    w = img.shape[2]
    flip = jax.random.bernoulli(rng, 0.5, (img.shape[0],))
    out = dict(batch)
    out["image"] = jnp.where(flip[:, None, None, None], img[:, :, ::-1], img)

    def mirror(b, mask):
        mirrored = jnp.stack([w - b[..., 2], b[..., 1], w - b[..., 0], b[..., 3]], -1)
        return jnp.where((flip[:, None] & mask)[..., None], mirrored, b)

    out["boxes"] = mirror(batch["boxes"], batch["mask"])
    if "proposals" in batch:
        out["proposals"] = mirror(batch["proposals"], batch["proposal_mask"])
    return out


_UINT8_TO_FLOAT = np.arange(256, dtype=np.float32) / 255.0  # the host's float32(x) / 255, bit for bit


def float_images(batch: dict) -> dict:
    """The batch with uint8 ``image`` (a training set loaded with ``image_dtype='uint8'``) as float32 in [0, 1], on
    the device: a 256-entry table of the host's ``float32(x) / 255`` (XLA would turn a division by 255 into a
    multiplication, 1 ulp off), so the values are exactly those of a float32 batch; float images pass unchanged."""
    img = batch["image"]
    if img.dtype != jnp.uint8:
        return batch
    return {**batch, "image": jnp.asarray(_UINT8_TO_FLOAT)[img]}


def with_augmentation(loss_fn: Callable, augment: Callable | None, colors: bool = False) -> Callable:
    """``loss_fn(params, batch_stats, batch, rng)`` with, first, uint8 images made float (``float_images``), SSD's
    photometric distortion if ``colors`` (``jaxvision.ops.photometric_distort``: the device half of
    ``augment='ssd_geometric'``), then ``augment(batch, rng)``."""
    from jaxvision.ops import photometric_distort

    def loss(params, batch_stats, batch, rng):
        batch = float_images(batch)
        if augment is None and not colors:
            return loss_fn(params, batch_stats, batch, rng)
        aug_rng, rng = jax.random.split(rng)
        if colors:
            color_rng, aug_rng = jax.random.split(aug_rng)
            batch = {**batch, "image": photometric_distort(batch["image"], color_rng)}
        if augment is not None:
            batch = augment(batch, aug_rng)
        return loss_fn(params, batch_stats, batch, rng)

    return loss


def restore(name: str, cfg, workdir: str, state: TrainState) -> TrainState:
    """The latest checkpoint of ``workdir`` into ``state``'s structure."""
    if not os.path.isdir(os.path.join(workdir, CHECKPOINT_DIR)):
        raise FileNotFoundError(f"no checkpoint of {name} in {os.path.abspath(workdir)}; run "
                                f"`jaxvision train {name} --workdir {workdir}` first")
    ckpt = CheckpointManager(workdir, name, cfg)
    try:
        return ckpt.restore(state)
    finally:
        ckpt.close()


def variables_of(state: TrainState) -> dict:
    out = {"params": state.params}
    if state.batch_stats:
        out["batch_stats"] = state.batch_stats
    return out


# Per-image ground-truth metadata a data set may carry and evaluation uses (see ``jaxvision.data.tfds``).
GT_EXTRAS = ("difficult", "crowd", "area", "image_id", "image_hw")


@functools.lru_cache(maxsize=16)
def _mapped(fn: Callable, devices: tuple | None):
    """``map_over_devices`` of ``fn``, kept so that repeated evaluations (``fit``'s periodic evals) compile once."""
    return map_over_devices(lambda v, rows: dict(fn(v, rows)), devices)


@functools.lru_cache(maxsize=16)
def _detect_rows(predict: Callable, inputs: tuple[str, ...]) -> Callable:
    """``rows -> {'boxes', 'scores', 'classes', 'num_valid'}`` of ``predict`` (one function per predict, cached)."""
    def detect(v, rows):
        det = predict(v, rows["image"], **{k: rows[k] for k in inputs})
        return {k: getattr(det, k) for k in ("boxes", "scores", "classes", "num_valid")}

    return detect


def map_dataset(fn: Callable, variables, dataset, batch_keys: Sequence[str] = ("image",),
                host_keys: dict[str, str] | None = None, limits: dict[str, int] | None = None,
                devices: Sequence | None = None, progress: bool = False) -> dict:
    """One epoch of ``dataset`` through ``fn(variables, rows) -> dict of per-row arrays`` over all devices and
    processes; numpy arrays ``[N, ...]`` of every real example of the split, in the order of a one-device,
    one-process run (padding rows of a last batch, ``valid`` False, dropped; each example exactly once).

    Args:
      fn: traceable, rows independent; ``rows`` is a dict of the batch's ``batch_keys``. Each batch is split
        over ``devices`` (default: every local device) by ``jaxvision.metrics.multihost.map_over_devices``; the
        mapped program is cached per ``fn`` (pass the same function object to evaluate again without compiling).
      host_keys: ``{output name: batch key}`` of batch arrays returned as they are (ground truth, metadata).
      limits: ``{output name: n}``: keep only the first ``n`` rows of that output (e.g. input images for pictures).
      progress: a tqdm bar on stderr once the pass takes more than 2 s.

    In a multi-process run each process maps its slice of every global batch (``dataset``'s host slice,
    ``jaxvision.data.Dataset``), and the rows of all processes are gathered (``gather_from_processes``): every
    process returns the whole split.
    """
    from tqdm.auto import tqdm

    host_keys, limits = dict(host_keys or {}), dict(limits or {})
    mapped = _mapped(fn, None if devices is None else tuple(devices))
    shared = mapped.replicate(variables)
    out: dict[str, list] = {}
    kept = dict.fromkeys(limits, 0)
    total = len(dataset) if hasattr(dataset, "__len__") else None
    for batch in tqdm(dataset, total=total, desc="eval", disable=not progress, delay=2.0, leave=False):
        rows = mapped(shared, {k: batch[k] for k in batch_keys})
        rows.update({name: batch[key] for name, key in host_keys.items()})
        rows = {k: v for k, v in rows.items() if kept.get(k, -1) < limits.get(k, 0)}  # limits reached: not sent
        rows["valid"] = batch["valid"] if "valid" in batch else np.ones(len(batch[batch_keys[0]]), bool)
        full = gather_from_processes(rows)  # the global batch, in order, on every process
        valid = np.asarray(full.pop("valid"), bool)
        for k, v in full.items():
            v = v[valid]
            if k in limits:
                v = v[:limits[k] - kept[k]]
                kept[k] += len(v)
            out.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in out.items()}


def run_predict(predict: Callable, variables, dataset, inputs: Sequence[str] = (), keep_images: int = 32,
                progress: bool = False, devices: Sequence | None = None) -> dict:
    """Run ``predict`` over one epoch of ``dataset``; numpy arrays of detections and ground truth of every real
    image (padding rows of a last batch, ``valid`` False, are dropped), the batch's ``GT_EXTRAS`` when present,
    the first ``keep_images`` input images (``'image'``, for pictures and FPS) and ``input_hw``. ``inputs``: batch
    keys also passed to ``predict`` by keyword (Fast R-CNN: ``('proposals', 'proposal_mask')``). ``progress``: a
    tqdm bar on stderr once the pass takes more than 2 s.

    ``map_dataset``: each batch is split over ``devices`` (default: all local devices; ``predict`` must be
    traceable and treat images independently, as every ``predict_fn`` does); in a multi-process run each process
    predicts its slice of every global batch and the results of all processes are gathered, so every process
    returns the whole split in the order of a single-process run, each image exactly once.
    """
    inputs = tuple(inputs)
    first = dataset.batch(0) if hasattr(dataset, "batch") else next(iter(dataset))
    host = {"gt_boxes": "boxes", "gt_labels": "labels", "gt_mask": "mask", "image": "image",
            **{k: k for k in GT_EXTRAS if k in first}}
    res = map_dataset(_detect_rows(predict, inputs), variables, dataset, ("image",) + inputs, host,
                      {"image": keep_images}, devices, progress)
    if "image" not in res:  # keep_images=0
        res["image"] = np.zeros((0, *np.shape(first["image"])[1:]), np.float32)
    res["input_hw"] = np.asarray(np.shape(first["image"])[1:3])
    return res


def to_original_pixels(boxes: np.ndarray, image_hw: np.ndarray | None, input_hw) -> np.ndarray:
    """xyxy boxes ``[N, K, 4]`` of the network input (``input_hw`` = (H, W)) -> float64 xyxy pixels of each
    original image (``image_hw`` int [N, 2]); unchanged (as float64) when ``image_hw`` is None."""
    boxes = np.asarray(boxes, np.float64)
    if image_hw is None:
        return boxes
    sy = np.asarray(image_hw, np.float64)[:, 0] / float(input_hw[0])
    sx = np.asarray(image_hw, np.float64)[:, 1] / float(input_hw[1])
    return boxes * np.stack([sx, sy, sx, sy], -1)[:, None, :]


def detection_results(res: dict, num_classes: int, voc_method: str = "voc"):
    """``(metrics, voc results by method, CocoResult, COCO results list)`` of ``run_predict``'s output: VOC mAP@0.5
    (``evaluate_voc``, all-point; with ``voc_method='voc07'`` also ``map50_voc07``, the 11-point AP of the VOC2007
    papers; ``difficult`` objects ignored) and COCO AP / AP50 / AP75 (pycocotools-exact, with the data set's image
    ids, crowd flags and areas), in original-image pixels when the data set gives ``image_hw``. The COCO results
    list has the image ids and class indices as category ids (``to_coco_results``)."""
    gt_labels = np.where(res["gt_mask"], res["gt_labels"], -1)
    hw, input_hw = res.get("image_hw"), res.get("input_hw")
    pred_boxes = to_original_pixels(res["boxes"], hw, input_hw)
    gt_boxes = to_original_pixels(res["gt_boxes"], hw, input_hw)
    voc = {method: evaluate_voc(pred_boxes, res["scores"], res["classes"], gt_boxes, gt_labels,
                                gt_difficult=res.get("difficult"), pred_valid=res["num_valid"],
                                num_classes=num_classes, method=method)
           for method in dict.fromkeys(("voc", voc_method))}
    ev = DetectionEvaluator(num_classes, kind="coco")
    area = res.get("area")
    ev.update(pred_boxes, res["scores"], res["classes"], res["num_valid"], gt_boxes, gt_labels,
              gt_crowd=res.get("crowd"), gt_area=None if area is None else np.where(res["gt_mask"], area, 0.0),
              image_ids=res.get("image_id"))
    coco = ev.compute()
    out = {"map50_voc": float(voc["voc"].map), "coco_ap": float(coco.stats[0]), "coco_ap50": float(coco.stats[1]),
           "coco_ap75": float(coco.stats[2])}
    if voc_method == "voc07":
        out["map50_voc07"] = float(voc["voc07"].map)
    results = to_coco_results(pred_boxes, res["scores"], res["classes"], res["num_valid"], ev.image_ids())
    return out, voc, coco, results


def detection_metrics(res: dict, num_classes: int, voc_method: str = "voc") -> dict:
    """The metrics of ``detection_results``."""
    return detection_results(res, num_classes, voc_method)[0]


def fps(predict: Callable, variables, images: np.ndarray) -> float:
    """Images per second of the full jitted ``predict`` (network + decode + NMS) on one batch, ``measure_fps``."""
    from jaxvision.metrics import measure_fps

    # The variables travel as an argument (after the images, whose leading axis is the batch size), not as
    # closed-over constants, which XLA would constant-fold at length.
    batch = (jnp.asarray(images), variables)
    return float(measure_fps(lambda b: predict(b[1], b[0]), batch, repeats=10).images_per_s)


def load_split(spec: tuple, split: str, cfg, batch_size: int, **kwargs):
    """``data.load`` of a detector's data set ``spec = (name, options, num_classes)``; on ``shapes`` the split
    size is ``cfg.num_train`` / ``cfg.num_test``; a folder data set without a 'test' split is tested on 'val'."""
    name, options, _ = spec
    if name == "shapes":
        options = {**options, "num_examples": cfg.num_train if split == "train" else cfg.num_test}
    if name in FOLDER_DATASETS and split == "test":
        try:
            return data.load(name, split, batch_size, **options, **kwargs)
        except FileNotFoundError:
            split = "val"
    return data.load(name, split, batch_size, **options, **kwargs)


def train_split(spec: tuple, cfg):
    """The training ``Dataset`` of ``spec``: ``cfg.augment`` ('ssd': ``jaxvision.data.augment`` on the host, with
    OpenCV resizing; 'ssd_geometric': crop and flip on the host, the colours on the device, see
    ``with_augmentation``), uint8 images when augmenting (made float on the device: ``float_images``), and
    batches built ahead by ``cfg.data_threads`` grain threads / ``cfg.data_workers`` processes
    (``Dataset.with_loader``; the batches do not depend on them)."""
    augment = getattr(cfg, "augment", "none")
    kwargs = {} if augment == "none" else {"augment": augment, "resize": "cv2", "image_dtype": "uint8"}
    if kwargs and spec[0] == "shapes":
        from experiments import ExperimentError

        raise ExperimentError(f"augment: {augment!r} applies to TFDS and folder data sets, not to 'shapes' (its flip "
                         "runs on the device: flip=True)")
    ds = load_split(spec, "train", cfg, cfg.batch_size, seed=cfg.seed, **kwargs)
    return ds.with_loader(workers=getattr(cfg, "data_workers", 0), threads=getattr(cfg, "data_threads", 0))


def evaluate_detector(cfg, predict: Callable, spec: tuple, state: TrainState, workdir: str | None = None,
                      inputs: Sequence[str] = ()) -> dict:
    """Test-split VOC mAP@0.5 (plus VOC07 11-point AP on voc/2007) and COCO AP of ``predict``, scored in
    original-image pixels with the data set's image ids (``detection_results``); with ``workdir``, also
    predictions.png, the eval outputs in ``workdir/eval/`` (``experiments._eval_outputs``) and (if
    ``cfg.measure_fps``) ``fps_cpu`` of the jitted predict on 32 test images (without extra ``inputs``: a model
    whose predict needs batch keys besides the image, see ``run_predict``, times its own full pipeline).

    Prediction runs on all local devices and, in a multi-process run, on every process's slice of the split,
    gathered (``run_predict``): the metrics are those of the whole split on every process; only process 0 writes
    the files (and measures ``fps_cpu``)."""
    ds = load_split(spec, "test", cfg, min(cfg.batch_size, 64), drop_remainder=False)
    variables = variables_of(state)
    res = run_predict(predict, variables, ds, inputs, progress=getattr(cfg, "progress", False))
    voc_method = "voc07" if spec[0] == "voc/2007" else "voc"
    metrics, voc, coco, results = detection_results(res, spec[2], voc_method)
    if workdir is not None and jax.process_index() == 0:  # one writer of the (identical) outputs
        from experiments._eval_outputs import write_detection_outputs

        write_detection_outputs(os.path.join(workdir, "eval"), metrics, voc[voc_method], coco, results,
                                ds.info.get("class_names"), ds.info.get("category_ids"))
        k = min(32, len(res["image"]))
        save_detections_png(os.path.join(workdir, "predictions.png"), res["image"][:k], res["boxes"][:k],
                            res["classes"][:k], res["num_valid"][:k], ds.info["class_names"], res["scores"][:k])
        if cfg.measure_fps and not inputs:
            metrics["fps_cpu"] = fps(predict, variables, res["image"][:k])
    return metrics


def train_and_evaluate(name: str, cfg, workdir: str, state: TrainState, loss_fn: Callable, train_data,
                       evaluate: Callable) -> dict:
    """``jaxvision.train.fit`` with the experiment's cadence settings, then ``evaluate(state, workdir)`` on the test
    split, then ``report``.

    ``evaluate(state, workdir=None) -> dict`` also serves the loop's periodic evals (without files). Returns the
    last train metrics, the test metrics and ``train_seconds`` (the loop only, without the final eval).
    """
    t0 = time.perf_counter()
    state, summary = fit(state, make_train_step(loss_fn), train_data, num_steps=cfg.num_steps, workdir=workdir,
                         experiment=name, config=cfg, eval_fn=evaluate, eval_every=cfg.eval_every,
                         checkpoint_every=cfg.checkpoint_every, keep=cfg.keep, log_every=cfg.log_every,
                         progress=cfg.progress, learning_rate=lr_schedule(cfg), **fit_options(cfg))
    train_s = time.perf_counter() - t0
    result = {**summary, **evaluate(state, workdir), "train_seconds": train_s}
    if os.path.isfile(os.path.join(workdir, "predictions.png")):
        log_images(cfg, workdir, int(state.step), {"eval/predictions": os.path.join(workdir, "predictions.png")})
    report(name, result, workdir)
    return result


def evaluate_checkpoint(name: str, cfg, workdir: str, state: TrainState, evaluate: Callable) -> dict:
    """``evaluate(state, workdir)`` of the latest checkpoint in ``workdir`` (rewrites predictions.png), ``report``."""
    result = evaluate(restore(name, cfg, workdir, state), workdir)
    report(name, result, workdir)
    return result


_REPORTED = (("map50_voc", "mAP@0.5 {:.3f} (VOC all-point)"), ("map50_voc07", "mAP@0.5 {:.3f} (VOC07 11-point)"),
             ("coco_ap", "COCO AP {:.3f}"),
             ("accuracy", "class accuracy {:.3f}"), ("mean_iou", "mean IoU {:.3f}"), ("pck@0.1", "PCK@0.1 {:.3f}"),
             ("nme", "NME {:.4f}"))


def report(name: str, metrics: dict, workdir: str | None) -> None:
    """One human-readable line on stderr: the test metrics present, predict FPS, training time, the PNG path."""
    parts = [fmt.format(metrics[key]) for key, fmt in _REPORTED if key in metrics]
    if "fps_cpu" in metrics:
        parts.append(f"{metrics['fps_cpu']:.0f} images/s (jitted predict, {jax.default_backend()})")
    if "train_seconds" in metrics:
        parts.append(f"trained in {metrics['train_seconds']:.0f} s")
    if workdir is not None:
        parts.append(f"predictions: {os.path.join(workdir, 'predictions.png')}")
    print(f"[{name}] test " + ", ".join(parts), file=sys.stderr, flush=True)


def save_detections_png(path: str, images: np.ndarray, boxes: np.ndarray, classes: np.ndarray, num_valid,
                        class_names: Sequence[str], scores: np.ndarray | None = None, min_score: float = 0.3,
                        ncol: int = 8, scale: int = 4, points: np.ndarray | None = None) -> str:
    """Grid PNG of images with predicted boxes (class-coloured, labelled) and optional landmark points.

    Args:
        images: float32 ``[N, H, W, 3]`` in [0, 1]. boxes: ``[N, D, 4]`` xyxy px. classes: ``[N, D]`` int.
        num_valid: ``[N]`` counts. scores: ``[N, D]`` (boxes below ``min_score`` are not drawn).
        points: optional ``[N, L, 2]`` (x, y) px landmarks drawn as dots.
    """
    from PIL import Image, ImageDraw

    n, h, w = images.shape[:3]
    pad = 2
    rows = -(-n // ncol)
    canvas = Image.new("RGB", (min(n, ncol) * (w * scale + pad) + pad, rows * (h * scale + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for k in range(n):
        r, c = divmod(k, ncol)
        ox, oy = pad + c * (w * scale + pad), pad + r * (h * scale + pad)
        tile = Image.fromarray((np.clip(images[k], 0, 1) * 255).round().astype(np.uint8))
        canvas.paste(tile.resize((w * scale, h * scale), Image.NEAREST), (ox, oy))
        for j in range(int(num_valid[k])):
            if scores is not None and scores[k, j] < min_score:
                continue
            x0, y0, x1, y1 = (float(v) * scale for v in boxes[k, j])
            color = PALETTE[int(classes[k, j]) % len(PALETTE)]
            draw.rectangle([ox + x0, oy + y0, ox + x1, oy + y1], outline=color, width=2)
            text = class_names[int(classes[k, j])] if 0 <= int(classes[k, j]) < len(class_names) else "?"
            if scores is not None:
                text += f" {scores[k, j]:.2f}"
            draw.text((ox + x0 + 2, oy + y0 + 1), text, fill=color)
        if points is not None:
            for x, y in points[k]:
                draw.ellipse([ox + x * scale - 3, oy + y * scale - 3, ox + x * scale + 3, oy + y * scale + 3],
                             fill=(255, 255, 0), outline=(0, 0, 0))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    canvas.save(path)
    return path
