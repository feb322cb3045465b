"""faster_rcnn_shapes: Faster R-CNN on the embedded ``shapes`` data (64 px, 6 classes, 1-4 objects per image).

A CPU-sized Faster R-CNN: a three-stage ResNetSmall (strides 2, 4, 8; 16, 32, 64 channels) whose stride-8 map
(8 x 8 cells at 64 px) feeds the RPN (3 anchor sizes x 3 aspect ratios per cell: 576 anchors) and a RoI-Align
box head. Every part is torchvision's ``FasterRCNN`` (``jaxvision.models.detection.faster_rcnn``) with these
sizes scaled to 64-px images holding 1-4 objects of 9-28 px (torchvision's values for ~800-px images in brackets):

- anchor sizes 12, 20, 32 px (paper 128, 256, 512; torchvision 32-512);
- RPN pre-NMS top-n 300 / 300 train / test (2000 / 1000), post-NMS 100 / 50 (2000 / 1000) out of 576 anchors;
- RoIs per image 64, 25 % foreground (512): 1-4 objects leave too few candidates for 512 distinct samples;
- box head FC width 128 (1024);

unchanged: RPN matching 0.7 / 0.3 + best anchors, 256 anchors per image half positive, NMS 0.7; RoI IoU 0.5,
``roi_align`` 7 x 7 with sampling ratio 2, ``BoxCoder`` (10, 10, 5, 5), smooth-L1 beta 1/9; at test time box score
> 0.05, per-class NMS 0.5, 100 detections. Training: AdamW with warm-up + cosine decay, random horizontal flips.
Evaluated on the held-out test split: VOC mAP@0.5, COCO AP, FPS of the full jitted predict (RPN, proposals, NMS,
RoI Align, head, per-class NMS in one program). Writes ``metrics.jsonl``, checkpoints and ``predictions.png``.

``--set preset=resnet50_voc`` (``PRESETS``) is Faster R-CNN with a ResNet-50 C5 backbone for ``voc/2007`` at 512 px
(an accelerator run); ``--set pretrained=/path/resnet50-0676ba61.pth`` loads torchvision's ImageNet weights into the
backbone (``jaxvision.models.backbones.torchvision_weights``; the file is read locally, nothing is downloaded).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Literal

from experiments import _detection as D
from jaxvision.models.backbones.resnet import ResNet50, ResNetSmall
from jaxvision.models.detection import faster_rcnn

NAME = "faster_rcnn_shapes"


@dataclasses.dataclass
class Config(D.ShapesTrainConfig):
    model: Literal["small", "resnet50"] = "small"  # CPU-sized ResNetSmall stride-8 model, or ResNet-50 C5
    dataset: D.DetectionDataset = "shapes"
    max_boxes: int = 8                # ground-truth boxes per image (padded)
    width: int = 16
    anchor_sizes: tuple[float, ...] = (12.0, 20.0, 32.0)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_pre_nms_top_n_train: int = 300
    rpn_pre_nms_top_n_test: int = 300
    rpn_post_nms_top_n_train: int = 100
    rpn_post_nms_top_n_test: int = 50
    rpn_batch_size_per_image: int = 256
    box_batch_size_per_image: int = 64
    representation_size: int = 128
    num_steps: int = 4000
    num_train: int = 8192
    flip: bool = True
    pretrained: str = ""              # torchvision ResNet-50 ImageNet state_dict (.pth) for model 'resnet50'
    score_threshold: float = 0.05
    iou_threshold: float = 0.5
    max_detections: int = 100


PRESETS = {
    # ImageNet-scale Faster R-CNN (ResNet-50 C5, the paper's anchors, torchvision's sample counts), accelerator
    "resnet50_voc": dict(model="resnet50", dataset="voc/2007", image_size=512, max_boxes=42, batch_size=8,
                         anchor_sizes=(128.0, 256.0, 512.0), rpn_pre_nms_top_n_train=2000,
                         rpn_pre_nms_top_n_test=1000, rpn_post_nms_top_n_train=2000, rpn_post_nms_top_n_test=1000,
                         box_batch_size_per_image=512, representation_size=1024, learning_rate=1e-4),
}
EVAL_KEYS = ("num_test", "measure_fps", "score_threshold", "iou_threshold", "max_detections", "progress",
             "rpn_pre_nms_top_n_test", "rpn_post_nms_top_n_test")

TINY = dict(image_size=32, width=8, batch_size=4, num_steps=4, warmup_steps=1, num_train=8, num_test=4,
            log_every=2, checkpoint_every=2, max_detections=10, progress=False, measure_fps=False,
            anchor_sizes=(8.0, 16.0, 24.0), rpn_pre_nms_top_n_train=64, rpn_pre_nms_top_n_test=64,
            rpn_post_nms_top_n_train=16, rpn_post_nms_top_n_test=16, rpn_batch_size_per_image=32,
            box_batch_size_per_image=16, representation_size=16)


def make_model(cfg: Config) -> faster_rcnn.FasterRCNN:
    num_classes = D.NUM_CLASSES[cfg.dataset]
    if cfg.model == "resnet50":
        backbone = ResNet50
    else:
        backbone = functools.partial(ResNetSmall, width=cfg.width, stage_sizes=(1, 1, 1))
    return faster_rcnn.FasterRCNN(
        num_classes=num_classes, backbone=backbone, anchor_sizes=tuple(cfg.anchor_sizes),
        aspect_ratios=tuple(cfg.aspect_ratios), rpn_pre_nms_top_n_train=cfg.rpn_pre_nms_top_n_train,
        rpn_pre_nms_top_n_test=cfg.rpn_pre_nms_top_n_test, rpn_post_nms_top_n_train=cfg.rpn_post_nms_top_n_train,
        rpn_post_nms_top_n_test=cfg.rpn_post_nms_top_n_test, box_batch_size_per_image=cfg.box_batch_size_per_image,
        representation_size=cfg.representation_size)


def _pretrained(cfg: Config):
    """The initial-variables transform loading ``cfg.pretrained`` into the ResNet-50 backbone (None without)."""
    if not cfg.pretrained:
        return None
    if cfg.model != "resnet50":
        raise ValueError(f"pretrained: ImageNet weights load into model 'resnet50', got model {cfg.model!r}")
    from jaxvision.models.backbones import torchvision_weights as tw

    def load(variables):
        weights = tw.resnet_variables_from_torch(tw.load_state_dict(cfg.pretrained))
        merged, _ = tw.merge_pretrained(variables, weights, prefix=("backbone",))
        return merged

    return load


def _parts(cfg: Config):
    model = make_model(cfg)
    state = D.make_state(model, cfg, (cfg.image_size, cfg.image_size, 3), init_transform=_pretrained(cfg))
    predict = faster_rcnn.predict_fn(model, cfg.score_threshold, cfg.iou_threshold, cfg.max_detections)
    return model, state, functools.partial(D.evaluate_detector, cfg, predict, D.dataset_spec(cfg))


def train(cfg: Config, workdir: str) -> dict:
    """Train, then evaluate on the test split (mAP@0.5, COCO AP, FPS) and write predictions.png."""
    model, state, evaluate_fn = _parts(cfg)
    head = functools.partial(faster_rcnn.loss_fn, rpn_batch_size_per_image=cfg.rpn_batch_size_per_image)
    loss = D.with_augmentation(D.make_loss_fn(model, head, targets=True, loss_rng=True), D.hflip if cfg.flip else None)
    train_data = D.load_split(D.dataset_spec(cfg), "train", cfg, cfg.batch_size, seed=cfg.seed)
    return D.train_and_evaluate(NAME, cfg, workdir, state, loss, train_data, evaluate_fn)


def evaluate(cfg: Config, workdir: str) -> dict:
    """Metrics of the latest checkpoint in ``workdir``; rewrites predictions.png."""
    _, state, evaluate_fn = _parts(cfg)
    return D.evaluate_checkpoint(NAME, cfg, workdir, state, evaluate_fn)
