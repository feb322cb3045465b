"""yolo_shapes: YOLO v1 on the embedded ``shapes`` data (64 px, 6 classes, 1-4 objects per image).

A CPU-sized YOLO v1 (ResNet stem + 3 basic-block stages -> 8 x 8 grid, B = 2 boxes per cell, conv head) trained
with the paper's loss (lambda_coord 5, lambda_noobj 0.5, sqrt w/h, responsible predictor by IoU) and random
horizontal flips. Evaluated on the held-out test split: VOC mAP@0.5 (``evaluate_voc``), COCO AP
(``DetectionEvaluator``, pycocotools semantics) and FPS of the full jitted predict (``measure_fps``). Writes
``metrics.jsonl``, checkpoints and ``predictions.png``.

``--set preset=voc448`` (``PRESETS``) selects the paper's setup for ``voc/2007`` on an accelerator: 448 x 448
input, S = 7, B = 2, C = 20, FC head, ResNet-50 backbone.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Literal

from experiments import _detection as D
from jaxvision.models.backbones.resnet import ResNetSmall
from jaxvision.models.detection import yolo

NAME = "yolo_shapes"


@dataclasses.dataclass
class Config(D.ShapesTrainConfig):
    model: Literal["small", "yolo448"] = "small"  # CPU-sized ResNet YOLO with a conv head, or the paper's (FC head)
    dataset: D.DetectionDataset = "shapes"
    data_dir: str = ""                # TFDS data dir, or the folder of dataset=coco_json / voc_xml (one's own data)
    # SSD augmentation of TFDS / folder data: 'ssd' crop, flip, colours on the host; 'ssd_geometric' crop and flip
    # on the host, colours on the device (jaxvision.ops.photometric_distort in the train step)
    augment: Literal["none", "ssd", "ssd_geometric"] = "none"
    data_threads: int = 0             # grain reader threads building training batches ahead (0: in the loop)
    data_workers: int = 0             # grain worker processes building training batches ahead
    max_boxes: int = 8                # ground-truth boxes per image (padded)
    grid_size: int = 8
    boxes_per_cell: int = 2
    head_width: int = 64
    num_steps: int = 10000
    num_train: int = 8192             # 2048 images overfit (mAP@0.5 0.84 at 10k steps); 8192 reach 0.93
    lambda_coord: float = 5.0
    lambda_noobj: float = 0.5
    flip: bool = True
    score_threshold: float = 0.01
    iou_threshold: float = 0.5
    max_detections: int = 100


PRESETS = {
    "voc448": dict(model="yolo448", dataset="voc/2007", image_size=448, max_boxes=42, grid_size=7,
                   boxes_per_cell=2),  # the paper, accelerator
}
EVAL_KEYS = ("num_test", "data_dir", "measure_fps", "score_threshold", "iou_threshold", "max_detections", "progress")

TINY = dict(image_size=32, grid_size=4, width=8, head_width=16, batch_size=8, num_steps=4, warmup_steps=1,
            num_train=16, num_test=8, log_every=2, checkpoint_every=2, max_detections=10, progress=False,
            measure_fps=False)


def make_model(cfg: Config) -> yolo.YOLOv1:
    num_classes = D.num_classes(cfg)
    if cfg.model == "yolo448":
        if cfg.image_size != 448:
            raise ValueError(f"image_size: model 'yolo448' expects 448, got {cfg.image_size}")
        return yolo.YOLO448(num_classes=num_classes, grid_size=cfg.grid_size, boxes_per_cell=cfg.boxes_per_cell)
    backbone = functools.partial(ResNetSmall, stage_sizes=(1, 1, 1), width=cfg.width)
    return yolo.YOLOv1(num_classes=num_classes, grid_size=cfg.grid_size, boxes_per_cell=cfg.boxes_per_cell,
                       backbone=backbone, head="conv", head_width=cfg.head_width)


def _parts(cfg: Config):
    model = make_model(cfg)
    state = D.make_state(model, cfg, (cfg.image_size, cfg.image_size, 3))
    predict = yolo.predict_fn(model, cfg.score_threshold, cfg.iou_threshold, cfg.max_detections)
    return model, state, functools.partial(D.evaluate_detector, cfg, predict, D.dataset_spec(cfg))


def train(cfg: Config, workdir: str) -> dict:
    """Train, then evaluate on the test split (mAP@0.5, COCO AP, FPS) and write predictions.png."""
    model, state, evaluate_fn = _parts(cfg)
    loss = D.make_loss_fn(model, functools.partial(yolo.loss_fn, boxes_per_cell=cfg.boxes_per_cell,
                                                   lambda_coord=cfg.lambda_coord, lambda_noobj=cfg.lambda_noobj))
    loss = D.with_augmentation(loss, D.hflip if cfg.flip else None,
                               colors=cfg.augment == "ssd_geometric")
    train_data = D.train_split(D.dataset_spec(cfg), cfg)
    return D.train_and_evaluate(NAME, cfg, workdir, state, loss, train_data, evaluate_fn)


def evaluate(cfg: Config, workdir: str) -> dict:
    """Metrics of the latest checkpoint in ``workdir``; rewrites predictions.png."""
    _, state, evaluate_fn = _parts(cfg)
    return D.evaluate_checkpoint(NAME, cfg, workdir, state, evaluate_fn)
