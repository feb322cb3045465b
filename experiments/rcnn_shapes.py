"""rcnn_shapes: R-CNN on the embedded ``shapes`` data (64 px, 6 classes, 1-4 objects per image).

Selective-search proposals ('fast' mode on 2x-upscaled images, cached on disk once per split by worker
processes, ``experiments/_proposals.py``); every proposal, with R-CNN's context padding, is warped to 32 x 32
(``ops.crop_and_resize``) and classified by a small ResNet over 7 classes (6 + background), with R-CNN's per-class
linear box regression on its features (trained apart from the CNN). Fine-tuning as the paper: 32 regions per image
with up to 25% foreground (IoU >= 0.5), the rest background, random flips; per-class NMS 0.3 at test time.
Evaluated on the held-out test split: VOC mAP@0.5, COCO AP, images/s of the full pipeline (selective search + one
CNN pass per proposal). Writes ``metrics.jsonl``, checkpoints and ``predictions.png``.
"""
from __future__ import annotations

import dataclasses
import functools

from experiments import _detection as D
from experiments import _proposals as PR
from jaxvision.models.backbones.resnet import ResNetSmall
from jaxvision.models.detection import rcnn

NAME = "rcnn_shapes"


@dataclasses.dataclass
class Config(PR.ProposalConfig):
    width: int = 16                   # every proposal goes through the CNN: keep it small (stage widths 16, 32, 64)
    stages: int = 3                   # ResNetSmall stages on the 32 px warps (strides 2, 4, 8)
    batch_size: int = 4               # images per step: 4 x 32 = 128 warped regions (the paper's mini-batch)
    regions_per_image: int = 32
    positive_fraction: float = 0.25
    warp_size: int = 32
    context: float = 16 / 227         # R-CNN's context padding (16 px of a 227 px warp)
    hidden: int = 256
    regression_iou: float = 0.6
    regression_weight: float = 1.0
    num_steps: int = 2000
    warmup_steps: int = 100
    learning_rate: float = 2e-3
    num_train: int = 1024
    log_every: int = 100
    checkpoint_every: int = 1000


EVAL_KEYS = ("num_test", "measure_fps", "score_threshold", "iou_threshold", "max_detections", "progress",
             "proposal_dir", "proposal_workers")

TINY = dict(image_size=32, width=8, stages=1, batch_size=2, regions_per_image=8, warp_size=16, hidden=16, num_steps=2,
            warmup_steps=1, num_train=4, num_test=4, log_every=1, checkpoint_every=2, max_detections=10,
            progress=False, measure_fps=False, proposal_mode="single", proposal_scale=1.0, max_proposals=16,
            proposal_workers=1)


def make_model(cfg: Config) -> rcnn.RCNN:
    backbone = functools.partial(ResNetSmall, stage_sizes=(1,) * cfg.stages, width=cfg.width)
    return rcnn.RCNN(num_classes=D.NUM_CLASSES[cfg.dataset], backbone=backbone, warp_size=cfg.warp_size,
                     context=cfg.context, hidden=cfg.hidden, regions_per_image=cfg.regions_per_image,
                     positive_fraction=cfg.positive_fraction)


def _parts(cfg: Config):
    model = make_model(cfg)
    predict = rcnn.predict_fn(model, cfg.score_threshold, cfg.iou_threshold, cfg.max_detections)
    return model, predict, D.dataset_spec(cfg)


def train(cfg: Config, workdir: str) -> dict:
    """Proposals (cached), fine-tune on warped regions, then evaluate on the test split and write predictions.png."""
    model, predict, spec = _parts(cfg)
    loss = functools.partial(rcnn.loss_fn, regression_iou=cfg.regression_iou,
                             regression_weight=cfg.regression_weight)
    return PR.train_and_evaluate(NAME, cfg, workdir, model, loss, predict, spec)


def evaluate(cfg: Config, workdir: str) -> dict:
    """Metrics of the latest checkpoint in ``workdir``; rewrites predictions.png."""
    model, predict, spec = _parts(cfg)
    return PR.evaluate_checkpoint(NAME, cfg, workdir, model, predict, spec)
