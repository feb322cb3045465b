"""fast_rcnn_shapes: Fast R-CNN on the embedded ``shapes`` data (64 px, 6 classes, 1-4 objects per image).

Selective-search proposals ('fast' mode on 2x-upscaled images, cached on disk once per split by worker
processes, ``experiments/_proposals.py``) feed a CPU-sized Fast R-CNN: ResNet stem + 2 basic-block stages
(stride 4), ``roi_pool`` 5 x 5, fc6/fc7 of 256, classification over 7 classes and per-class deltas. Training as the
paper: 2 images x 64 RoIs per step (25% foreground at IoU >= 0.5, background from [0.1, 0.5)), CE + smooth-L1
(lambda 1), random flips. Evaluated on the held-out test split: VOC mAP@0.5, COCO AP, images/s of the full
pipeline (selective search + jitted predict). Writes ``metrics.jsonl``, checkpoints and ``predictions.png``.
"""
from __future__ import annotations

import dataclasses
import functools

from experiments import _detection as D
from experiments import _proposals as PR
from jaxvision.models.backbones.resnet import ResNetSmall
from jaxvision.models.detection import fast_rcnn

NAME = "fast_rcnn_shapes"


@dataclasses.dataclass
class Config(PR.ProposalConfig):
    width: int = 32
    stages: int = 2                   # ResNetSmall stages (strides 2, 4): RoIs pooled from the stride-4 map
    batch_size: int = 2               # images per step (the paper's 2 x 64 RoIs)
    rois_per_image: int = 64
    positive_fraction: float = 0.25
    bg_iou_low: float = 0.1
    roi_size: int = 5
    hidden: int = 256
    box_weight: float = 1.0
    num_steps: int = 3000
    warmup_steps: int = 100
    learning_rate: float = 1e-3
    num_train: int = 1024
    log_every: int = 100
    checkpoint_every: int = 1000


EVAL_KEYS = ("num_test", "measure_fps", "score_threshold", "iou_threshold", "max_detections", "progress",
             "proposal_dir", "proposal_workers")

TINY = dict(image_size=32, width=8, stages=1, batch_size=2, rois_per_image=8, roi_size=3, hidden=16, num_steps=2,
            warmup_steps=1, num_train=4, num_test=4, log_every=1, checkpoint_every=2, max_detections=10,
            progress=False, measure_fps=False, proposal_mode="single", proposal_scale=1.0, max_proposals=16,
            proposal_workers=1)


def make_model(cfg: Config) -> fast_rcnn.FastRCNN:
    backbone = functools.partial(ResNetSmall, stage_sizes=(1,) * cfg.stages, width=cfg.width)
    return fast_rcnn.FastRCNN(num_classes=D.NUM_CLASSES[cfg.dataset], backbone=backbone, roi_size=cfg.roi_size,
                              hidden=cfg.hidden, rois_per_image=cfg.rois_per_image,
                              positive_fraction=cfg.positive_fraction, bg_iou_low=cfg.bg_iou_low)


def _parts(cfg: Config):
    model = make_model(cfg)
    predict = fast_rcnn.predict_fn(model, cfg.score_threshold, cfg.iou_threshold, cfg.max_detections)
    return model, predict, D.dataset_spec(cfg)


def train(cfg: Config, workdir: str) -> dict:
    """Proposals (cached), train, then evaluate on the test split and write predictions.png."""
    model, predict, spec = _parts(cfg)
    loss = functools.partial(fast_rcnn.loss_fn, box_weight=cfg.box_weight)
    return PR.train_and_evaluate(NAME, cfg, workdir, model, loss, predict, spec)


def evaluate(cfg: Config, workdir: str) -> dict:
    """Metrics of the latest checkpoint in ``workdir``; rewrites predictions.png."""
    model, predict, spec = _parts(cfg)
    return PR.evaluate_checkpoint(NAME, cfg, workdir, model, predict, spec)
