"""Shared wiring of the proposal-fed detector experiments (rcnn_shapes, fast_rcnn_shapes).

Selective-search proposals are computed once per split (``jaxvision.proposals.cached_proposals``: worker
processes, an .npz cache keyed by the split's pixels and the search options) and travel with the images as the
batch keys 'proposals' [B, P, 4] / 'proposal_mask' [B, P]. Their computation time is reported separately
(``proposal_seconds_<split>``). Evaluation runs the jitted predict over the test split with its cached proposals;
the full-pipeline speed adds selective search itself (timed uncached on a few test images) to the jitted predict.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from experiments import _detection as D
from jaxvision.proposals import cached_proposals, selective_search

INPUTS = ("proposals", "proposal_mask")
ENV_DIR = "JAXVISION_PROPOSALS"


@dataclasses.dataclass
class ProposalConfig(D.ShapesTrainConfig):
    """The detector fields shared by R-CNN and Fast R-CNN experiments: data, proposals, postprocessing."""
    dataset: D.DetectionDataset = "shapes"
    max_boxes: int = 8
    proposal_mode: Literal["single", "fast", "quality"] = "fast"
    proposal_scale: float = 2.0       # 64 px images are upscaled 2x before segmenting (recall 0.98 @ IoU 0.5)
    proposal_ranking: Literal["position", "level"] = "level"
    max_proposals: int = 192          # P: proposals kept per image (the 'fast' mode gives ~50 at this scale)
    proposal_workers: int = 2         # processes computing the cache
    proposal_dir: str = ""            # cache directory; default $JAXVISION_PROPOSALS or ~/.cache/jaxvision/proposals
    flip: bool = True
    score_threshold: float = 0.01
    iou_threshold: float = 0.3        # both papers' NMS threshold
    max_detections: int = 100


def proposal_options(cfg) -> dict:
    return dict(mode=cfg.proposal_mode, scale=float(cfg.proposal_scale), ranking=cfg.proposal_ranking)


def cache_dir(cfg) -> str:
    return cfg.proposal_dir or os.environ.get(ENV_DIR) or os.path.join(os.path.expanduser("~"), ".cache",
                                                                       "jaxvision", "proposals")


def split_images(cfg, spec, split: str) -> np.ndarray:
    """All images of a split, uint8 [N, H, W, 3] (the pixels the cache is keyed by)."""
    n = cfg.num_train if split == "train" else cfg.num_test
    ds = D.load_split(spec, split, cfg, n, shuffle=False)
    return np.round(ds.batch(0)["image"] * 255).astype(np.uint8)


def split_proposals(cfg, spec, split: str, progress: bool = True) -> dict:
    """``cached_proposals`` of a split's images under ``cache_dir(cfg)`` (one file per split and option set)."""
    images = split_images(cfg, spec, split)
    opts = proposal_options(cfg)
    tag = hashlib.sha1(json.dumps([spec[0], spec[1], split, len(images), cfg.max_proposals, sorted(opts.items())],
                                  sort_keys=True, default=str).encode()).hexdigest()[:12]
    path = os.path.join(cache_dir(cfg), f"{spec[0].replace('/', '_')}_{split}_{len(images)}_{tag}.npz")
    if progress and not os.path.exists(path):
        print(f"[proposals] selective search on {len(images)} {split} images ({cfg.proposal_workers} workers) "
              f"-> {path}", file=sys.stderr, flush=True)
    out = cached_proposals(path, images, cfg.max_proposals, workers=cfg.proposal_workers, **opts)
    out["path"] = path
    return out


def with_proposals(dataset, props: dict):
    return dataset.with_arrays({k: props[k] for k in INPUTS})


def train_data(cfg, spec) -> tuple:
    """The training split with its proposals, and ``{'proposal_seconds_train', 'proposals_per_image_train'}``."""
    props = split_proposals(cfg, spec, "train", cfg.progress)
    ds = with_proposals(D.load_split(spec, "train", cfg, cfg.batch_size, seed=cfg.seed), props)
    info = {"proposal_seconds_train": props["compute_seconds"], "proposal_cpu_seconds_train": props["cpu_seconds"],
            "proposals_per_image_train": float(props["proposal_mask"].sum(1).mean())}
    return ds, info


def full_pipeline_speed(cfg, predict, variables, images: np.ndarray, props: dict, k: int = 8) -> dict:
    """Images/s of proposals + predict: selective search (this process, uncached) on ``k`` test images plus the
    jitted predict (``measure_fps``) on a batch of 32 with their cached proposals."""
    from jaxvision.metrics import measure_fps

    opts = proposal_options(cfg)
    t0 = time.perf_counter()
    for im in images[:k]:
        selective_search(im, max_proposals=cfg.max_proposals, **opts)
    ss = (time.perf_counter() - t0) / min(k, len(images))
    n = min(32, len(images))
    batch = (jnp.asarray(images[:n]), variables, jnp.asarray(props["proposals"][:n]),
             jnp.asarray(props["proposal_mask"][:n]))
    fps = measure_fps(lambda b: predict(b[1], b[0], proposals=b[2], proposal_mask=b[3]), batch, repeats=5)
    net = 1.0 / fps.images_per_s
    return {"proposal_s_per_image": ss, "predict_fps_cpu": float(fps.images_per_s), "fps_cpu": 1.0 / (ss + net)}


def evaluate_detector(cfg, predict, spec, state, workdir: str | None = None) -> dict:
    """Test-split VOC mAP@0.5 / COCO AP with the cached test proposals; with ``workdir`` also predictions.png,
    the test-proposal recall and (``cfg.measure_fps``) the full-pipeline speed."""
    from jaxvision.proposals import proposal_recall

    props = split_proposals(cfg, spec, "test", progress=workdir is not None and cfg.progress)
    ds = with_proposals(D.load_split(spec, "test", cfg, min(cfg.batch_size, 64), drop_remainder=False), props)
    variables = D.variables_of(state)
    res = D.run_predict(predict, variables, ds, INPUTS)
    metrics = D.detection_metrics(res, spec[2])
    if workdir is not None:
        gts = [b[m] for b, m in zip(res["gt_boxes"], res["gt_mask"])]
        rec = proposal_recall([p[m] for p, m in zip(props["proposals"], props["proposal_mask"])], gts,
                              (cfg.max_proposals,), (0.5, 0.7))
        metrics.update({"proposal_recall@0.5": float(rec[0, 0]), "proposal_recall@0.7": float(rec[0, 1]),
                        "proposal_seconds_test": props["compute_seconds"]})
        k = min(32, len(res["image"]))
        if jax.process_index() == 0:  # the metrics are the same on every process; one writes the picture
            D.save_detections_png(os.path.join(workdir, "predictions.png"), res["image"][:k], res["boxes"][:k],
                                  res["classes"][:k], res["num_valid"][:k], ds.info["class_names"],
                                  res["scores"][:k])
        if cfg.measure_fps:
            metrics.update(full_pipeline_speed(cfg, predict, variables, res["image"], props))
    return metrics


def train_and_evaluate(name: str, cfg, workdir: str, model, loss_fn, predict, spec) -> dict:
    """Proposals of the training split (timed apart), ``_detection.train_and_evaluate`` with the proposal-fed
    loss (``make_loss_fn(targets=True)``, random flips mirroring the proposals) and evaluation."""
    import functools

    state = D.make_state(model, cfg, (cfg.image_size, cfg.image_size, 3))
    data, info = train_data(cfg, spec)
    loss = D.with_augmentation(D.make_loss_fn(model, loss_fn, targets=True), D.hflip if cfg.flip else None)
    evaluate_fn = functools.partial(evaluate_detector, cfg, predict, spec)
    result = D.train_and_evaluate(name, cfg, workdir, state, loss, data, evaluate_fn)
    result.update(info)
    print(f"[{name}] proposals: {info['proposal_seconds_train']:.0f} s for the training split "
          f"({info['proposals_per_image_train']:.0f} per image), not included in the training time",
          file=sys.stderr, flush=True)
    return result


def evaluate_checkpoint(name: str, cfg, workdir: str, model, predict, spec) -> dict:
    import functools

    state = D.make_state(model, cfg, (cfg.image_size, cfg.image_size, 3))
    return D.evaluate_checkpoint(name, cfg, workdir, state, functools.partial(evaluate_detector, cfg, predict, spec))


