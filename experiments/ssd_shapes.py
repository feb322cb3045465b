"""ssd_shapes: SSD on the embedded ``shapes`` data (64 px, 6 classes, 1-4 objects per image).

A CPU-sized SSD: ResNet stem + basic-block stages tapped at strides 4, 8, 16 plus one extra block (stride 32),
i.e. 16/8/4/2 feature maps with 4/6/6/4 default boxes per cell (1520 boxes), scales chosen for 9-28 px objects.
Trained with the SSD loss (forced best-box matching, 3:1 hard negatives, smooth-L1 + softmax CE) and random
horizontal flips; evaluated on the held-out test split with torchvision's postprocess (score 0.01, per-class
NMS 0.45, 200 detections): VOC mAP@0.5, COCO AP, FPS of the full jitted predict. Writes ``metrics.jsonl``,
checkpoints and ``predictions.png``.

``--set preset=ssd300_voc`` (``PRESETS``) selects the paper's SSD300 (VGG16, 8732 default boxes) for ``voc/2007`` on
an accelerator (ImageNet VGG16 weights can be loaded with ``jaxvision.models.backbones.torchvision_weights``).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Literal

from experiments import _detection as D
from jaxvision.models.backbones.resnet import ResNetSmall
from jaxvision.models.detection import ssd

NAME = "ssd_shapes"


@dataclasses.dataclass
class Config(D.ShapesTrainConfig):
    model: Literal["small", "ssd300"] = "small"   # CPU-sized ResNet SSD, or the paper's SSD300-VGG16 (300 px)
    dataset: D.DetectionDataset = "shapes"
    data_dir: str = ""                # TFDS data dir, or the folder of dataset=coco_json / voc_xml (one's own data)
    # SSD augmentation of TFDS / folder data: 'ssd' crop, flip, colours on the host; 'ssd_geometric' crop and flip
    # on the host, colours on the device (jaxvision.ops.photometric_distort in the train step)
    augment: Literal["none", "ssd", "ssd_geometric"] = "none"
    data_threads: int = 0             # grain reader threads building training batches ahead (0: in the loop)
    data_workers: int = 0             # grain worker processes building training batches ahead
    max_boxes: int = 8                # ground-truth boxes per image (padded)
    extra_width: int = 64
    scales: tuple[float, ...] = (0.12, 0.22, 0.4, 0.6, 0.8)
    num_steps: int = 8000
    num_train: int = 8192             # 2048 images: mAP@0.5 0.913 at 4500 steps; 8192 and 8000 steps: 0.957
    flip: bool = True
    score_threshold: float = 0.01
    iou_threshold: float = 0.45
    max_detections: int = 200


PRESETS = {
    # the paper, on an accelerator: SSD's crop and flip on the host (batches built by 8 grain threads, uint8), its
    # colour distortion on the device (benchmarks/input_pipeline.py)
    "ssd300_voc": dict(model="ssd300", dataset="voc/2007", image_size=300, max_boxes=42, augment="ssd_geometric",
                       flip=False, data_threads=8),
}
EVAL_KEYS = ("num_test", "data_dir", "measure_fps", "score_threshold", "iou_threshold", "max_detections", "progress")

TINY = dict(image_size=32, width=8, extra_width=16, batch_size=8, num_steps=4, warmup_steps=1, num_train=16,
            num_test=8, log_every=2, checkpoint_every=2, max_detections=20, progress=False,
            measure_fps=False)


def make_model(cfg: Config) -> ssd.SSD:
    num_classes = D.num_classes(cfg)
    if cfg.model == "ssd300":
        if cfg.image_size != 300:
            raise ValueError(f"image_size: model 'ssd300' expects 300, got {cfg.image_size}")
        return ssd.SSD300(num_classes=num_classes)
    base = functools.partial(ResNetSmall, width=cfg.width)
    backbone = functools.partial(ssd.SSDLiteBackbone, base=base, taps=3, extras=(cfg.extra_width,))
    return ssd.SSD(num_classes=num_classes, backbone=backbone, aspect_ratios=((2,), (2, 3), (2, 3), (2,)),
                   scales=tuple(cfg.scales))


def _parts(cfg: Config):
    model = make_model(cfg)
    state = D.make_state(model, cfg, (cfg.image_size, cfg.image_size, 3))
    predict = ssd.predict_fn(model, cfg.score_threshold, cfg.iou_threshold, cfg.max_detections)
    return model, state, functools.partial(D.evaluate_detector, cfg, predict, D.dataset_spec(cfg))


def train(cfg: Config, workdir: str) -> dict:
    """Train, then evaluate on the test split (mAP@0.5, COCO AP, FPS) and write predictions.png."""
    model, state, evaluate_fn = _parts(cfg)
    loss = D.with_augmentation(D.make_loss_fn(model, ssd.loss_fn), D.hflip if cfg.flip else None,
                               colors=cfg.augment == "ssd_geometric")
    train_data = D.train_split(D.dataset_spec(cfg), cfg)
    return D.train_and_evaluate(NAME, cfg, workdir, state, loss, train_data, evaluate_fn)


def evaluate(cfg: Config, workdir: str) -> dict:
    """Metrics of the latest checkpoint in ``workdir``; rewrites predictions.png."""
    _, state, evaluate_fn = _parts(cfg)
    return D.evaluate_checkpoint(NAME, cfg, workdir, state, evaluate_fn)
