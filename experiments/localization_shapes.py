"""localization_shapes: classification + localization of the single object of ``shapes`` images (64 px).

``Localizer`` (ResNet backbone, shared FC, class and box heads) trained with cross-entropy plus a weighted box
loss (GIoU by default, or smooth-L1) and random horizontal flips. Reports, on the held-out test split,
classification accuracy, mean IoU of the predicted box with the ground truth, the share of boxes with IoU >= 0.5,
VOC mAP@0.5 of the single detection per image, and FPS. Writes ``metrics.jsonl``, checkpoints and
``predictions.png``.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from experiments import _detection as D
from jaxvision.models.backbones.resnet import ResNetSmall
from jaxvision.models.detection import localization

NAME = "localization_shapes"


@dataclasses.dataclass
class Config(D.ShapesTrainConfig):
    hidden: int = 128
    box_loss: Literal["giou", "smooth_l1"] = "giou"
    box_weight: float = 2.0
    num_steps: int = 800
    warmup_steps: int = 50
    flip: bool = True


EVAL_KEYS = ("num_test", "measure_fps", "progress")

TINY = dict(image_size=32, width=8, hidden=16, batch_size=8, num_steps=4, warmup_steps=1, num_train=16,
            num_test=8, log_every=2, checkpoint_every=2, progress=False,
            measure_fps=False)


def make_model(cfg: Config) -> localization.Localizer:
    return localization.Localizer(num_classes=6, backbone=functools.partial(ResNetSmall, width=cfg.width),
                                  hidden=cfg.hidden)


def _parts(cfg: Config):
    model = make_model(cfg)
    state = D.make_state(model, cfg, (cfg.image_size, cfg.image_size, 3))
    return model, state, functools.partial(_evaluate, cfg, localization.predict_fn(model))


def _evaluate(cfg: Config, predict, state, workdir: str | None = None) -> dict:
    ds = D.load_split(D.single_object_spec(cfg), "test", cfg, min(cfg.batch_size, 64), drop_remainder=False)
    variables = D.variables_of(state)
    res = D.run_predict(predict, variables, ds)
    batch = {"boxes": jnp.asarray(res["gt_boxes"]), "labels": jnp.asarray(res["gt_labels"]),
             "mask": jnp.asarray(res["gt_mask"])}
    det = localization.Detections(*(jnp.asarray(res[k]) for k in ("boxes", "scores", "classes", "num_valid")))
    m = jax.device_get(localization.localization_metrics(det, batch))
    metrics = {"accuracy": float(np.mean(m["accuracy"])), "mean_iou": float(np.mean(m["iou"])),
               "iou_ge_0.5": float(np.mean(m["iou"] >= 0.5)), **D.detection_metrics(res, 6)}
    if workdir is not None and jax.process_index() == 0:  # whole-split metrics on every process; one writer
        k = min(32, len(res["image"]))
        D.save_detections_png(os.path.join(workdir, "predictions.png"), res["image"][:k], res["boxes"][:k],
                              res["classes"][:k], res["num_valid"][:k], ds.info["class_names"], res["scores"][:k],
                              min_score=0.0)
        if cfg.measure_fps:
            metrics["fps_cpu"] = D.fps(predict, variables, res["image"][:k])
    return metrics


def train(cfg: Config, workdir: str) -> dict:
    """Train, then evaluate on the test split (accuracy, mean IoU, mAP@0.5, FPS) and write predictions.png."""
    model, state, evaluate_fn = _parts(cfg)
    head = functools.partial(localization.loss_fn, box_loss=cfg.box_loss, box_weight=cfg.box_weight)
    loss = D.with_augmentation(D.make_loss_fn(model, head), D.hflip if cfg.flip else None)
    train_data = D.load_split(D.single_object_spec(cfg), "train", cfg, cfg.batch_size, seed=cfg.seed)
    return D.train_and_evaluate(NAME, cfg, workdir, state, loss, train_data, evaluate_fn)


def evaluate(cfg: Config, workdir: str) -> dict:
    """Metrics of the latest checkpoint in ``workdir``; rewrites predictions.png."""
    _, state, evaluate_fn = _parts(cfg)
    return D.evaluate_checkpoint(NAME, cfg, workdir, state, evaluate_fn)
