"""landmarks_shapes: the per-object landmarks of single-object ``shapes`` images (64 px, 6 points: centre + vertices).

``LandmarkNet``: ResNet stages at strides 4 and 8 fused into stride-4 heatmaps, one per landmark, read out with a
soft-argmax and trained with an L1 loss over the landmarks each class defines (``landmarks_mask``). Reports, on
the held-out test split, the normalized mean error (NME, distance / max(box w, h)) and PCK@0.1 and @0.05, plus
FPS. Writes ``metrics.jsonl``, checkpoints and ``predictions.png`` (predicted landmarks as yellow dots).
"""
from __future__ import annotations

import dataclasses
import functools
import os

import jax
import numpy as np

from experiments import _detection as D
from jaxvision.data.shapes import NUM_LANDMARKS
from jaxvision.models.backbones.resnet import ResNetSmall
from jaxvision.models.detection import landmarks

NAME = "landmarks_shapes"


@dataclasses.dataclass
class Config(D.ShapesTrainConfig):
    head_width: int = 32
    num_steps: int = 1600
    warmup_steps: int = 50


EVAL_KEYS = ("num_test", "measure_fps", "progress")

TINY = dict(image_size=32, width=8, head_width=8, batch_size=8, num_steps=4, warmup_steps=1, num_train=16,
            num_test=8, log_every=2, checkpoint_every=2, progress=False,
            measure_fps=False)


def make_model(cfg: Config) -> landmarks.LandmarkNet:
    backbone = functools.partial(ResNetSmall, stage_sizes=(1, 1, 1), width=cfg.width)
    return landmarks.LandmarkNet(num_landmarks=NUM_LANDMARKS, backbone=backbone, width=cfg.head_width)


def _parts(cfg: Config):
    model = make_model(cfg)
    state = D.make_state(model, cfg, (cfg.image_size, cfg.image_size, 3))
    return model, state, functools.partial(_evaluate, cfg, landmarks.predict_fn(model))


@functools.lru_cache(maxsize=4)
def _landmark_rows(predict):
    """Per image: predicted landmarks and their errors (one function per predict: evaluations compile once)."""
    def rows_fn(v, rows):
        pred = predict(v, rows["image"])
        m = landmarks.landmark_metrics(pred, rows, 0.1)
        return {"pred": pred, "error": m["error"], "correct": m["correct"], "visible": m["valid"]}

    return rows_fn


def _evaluate(cfg: Config, predict, state, workdir: str | None = None) -> dict:
    ds = D.load_split(D.single_object_spec(cfg), "test", cfg, min(cfg.batch_size, 64), drop_remainder=False)
    variables = D.variables_of(state)
    res = D.map_dataset(_landmark_rows(predict), variables, ds,
                        ("image", "landmarks", "landmarks_mask", "mask", "boxes"), {"image": "image"}, {"image": 32})
    err, correct, valid = res["error"], res["correct"], res["visible"]
    correct05 = err <= 0.05
    n = max(valid.sum(), 1)
    metrics = {"nme": float((err * valid).sum() / n), "pck@0.1": float((correct * valid).sum() / n),
               "pck@0.05": float((correct05 * valid).sum() / n)}
    if workdir is not None and jax.process_index() == 0:
        images, preds = res["image"], res["pred"][:32]
        vis = valid[:32]
        pts = [p[v] for p, v in zip(preds, vis)]
        D.save_detections_png(os.path.join(workdir, "predictions.png"), images, np.zeros((len(images), 0, 4)),
                              np.zeros((len(images), 0), np.int32), np.zeros(len(images), np.int32), (),
                              points=pts)
        if cfg.measure_fps:
            metrics["fps_cpu"] = D.fps(predict, variables, images)
    return metrics


def train(cfg: Config, workdir: str) -> dict:
    """Train, then evaluate on the test split (NME, PCK@0.1, FPS) and write predictions.png."""
    model, state, evaluate_fn = _parts(cfg)
    train_data = D.load_split(D.single_object_spec(cfg), "train", cfg, cfg.batch_size, seed=cfg.seed)
    return D.train_and_evaluate(NAME, cfg, workdir, state, D.make_loss_fn(model, landmarks.loss_fn), train_data,
                                evaluate_fn)


def evaluate(cfg: Config, workdir: str) -> dict:
    """Metrics of the latest checkpoint in ``workdir``; rewrites predictions.png."""
    _, state, evaluate_fn = _parts(cfg)
    return D.evaluate_checkpoint(NAME, cfg, workdir, state, evaluate_fn)
