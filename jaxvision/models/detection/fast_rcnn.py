"""Fast R-CNN (Girshick 2015): one backbone pass per image, RoI max pooling of the proposals, two heads.

Pipeline: class-agnostic proposals (selective search, passed in) -> backbone feature map of the whole image ->
``roi_pool`` of every proposal to ``roi_size`` x ``roi_size`` -> two fully connected layers -> ``K + 1``-way
classification (background = 0) and class-specific box deltas (``BoxCoder((10, 10, 5, 5))``: the paper's
target normalisation by standard deviations 0.1 / 0.2) -> per-class NMS.

Training follows the paper: mini-batches of ``rois_per_image`` regions per image with up to 25% foreground
(IoU >= 0.5 with a ground-truth box) and background from ``[bg_iou_low, 0.5)`` (0.1, the paper's hard-ish
negatives), ground-truth boxes offered as candidates too; the multitask loss is cross-entropy + lambda * smooth-L1
(beta 1, lambda 1) on the foreground regions' true-class deltas, both normalised by the number of sampled regions.
Sampling, pooling, the two-layer head, its loss and decoding are ``roi_heads``' (shared with Faster R-CNN);
Fast R-CNN differs from there by max pooling (``pool_rois(mode='pool')``), the background range and beta 1.

Protocol: as ``rcnn`` (training with ``targets=batch`` and a ``'sample'`` rng; ``predict(variables, images,
proposals=..., proposal_mask=...)``).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision._checks import check_rank
from jaxvision.models.backbones.resnet import ResNetSmall, ResNetTiny
from jaxvision.models.detection.common import IMAGENET_MEAN, IMAGENET_STD, make_predict, normalize
from jaxvision.models.detection.rcnn import check_proposals, init_proposals
from jaxvision.models.detection.roi_heads import (
    HEAD_BOX_WEIGHTS,
    RoIBoxHead,
    box_head_loss,
    decode_head,
    pool_rois,
    sample_rois,
)

BOX_WEIGHTS = HEAD_BOX_WEIGHTS  # (10, 10, 5, 5): the paper's target normalisation


class FastRCNN(nn.Module):
    """Backbone + RoI pooling + classification and box heads over given proposals.

    Attributes:
      num_classes: K object classes (K + 1 classifier outputs, background first).
      backbone: feature-map factory; its last map is pooled (its stride is inferred from the image size).
      roi_size: RoI pooling output side.
      hidden: width of the two fully connected layers (the paper's fc6, fc7).
      rois_per_image, positive_fraction, fg_iou, bg_iou_low: training-region sampling.
      pixel_mean, pixel_std: input normalization; dtype: computation dtype.
    """

    num_classes: int
    backbone: Callable[..., nn.Module] = functools.partial(ResNetSmall, stage_sizes=(1, 1))
    roi_size: int = 5
    hidden: int = 256
    rois_per_image: int = 64
    positive_fraction: float = 0.25
    fg_iou: float = 0.5
    bg_iou_low: float = 0.1
    pixel_mean: Sequence[float] = IMAGENET_MEAN
    pixel_std: Sequence[float] = IMAGENET_STD
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images, train: bool = False, targets: dict | None = None, proposals=None,
                 proposal_mask=None):
        """Args as ``rcnn.RCNN.__call__``.

        Returns:
          dict: 'cls_logits' [B, R, K + 1], 'box_deltas' [B, R, K + 1, 4] (``BoxCoder(BOX_WEIGHTS)`` units), 'rois'
          [B, R, 4], 'roi_mask' [B, R]; with targets also 'roi_labels' [B, R] (0 background) and 'roi_targets'
          [B, R, 4] (regression targets of the foreground regions), R = min(rois_per_image, P + G).
        """
        check_rank("images", images, 4, "[B, H, W, C]")
        out = {}
        if targets is not None:
            check_proposals(targets["proposals"], targets.get("proposal_mask"), images.shape[0])
            keys = jax.random.split(self.make_rng("sample"), images.shape[0])
            sample = functools.partial(sample_rois, num_samples=self.rois_per_image,
                                       positive_fraction=self.positive_fraction, fg_iou=self.fg_iou,
                                       bg_iou=self.fg_iou, bg_iou_low=self.bg_iou_low, box_weights=BOX_WEIGHTS)
            s = jax.vmap(sample)(keys, targets["proposals"].astype(jnp.float32), targets["proposal_mask"],
                                 targets["boxes"].astype(jnp.float32), targets["labels"], targets["mask"])
            rois, roi_mask = s.boxes, s.valid
            out.update(roi_labels=s.labels, roi_targets=s.targets)
        else:
            proposals, proposal_mask = init_proposals(self, images, proposals, proposal_mask)
            rois, roi_mask = proposals.astype(jnp.float32), proposal_mask.astype(bool)
        feats = self.backbone(dtype=self.dtype, name="backbone")(normalize(images, self.pixel_mean, self.pixel_std),
                                                                  train)[-1]
        pooled = pool_rois(feats, rois, self.roi_size, feats.shape[1] / images.shape[1], mode="pool")
        logits, deltas = RoIBoxHead(self.num_classes, self.hidden, dtype=self.dtype, name="head")(pooled)
        out.update(cls_logits=logits, box_deltas=deltas, rois=rois, roi_mask=roi_mask)
        return out


FastRCNNTiny = functools.partial(FastRCNN, backbone=functools.partial(ResNetTiny, stage_sizes=(1, 1)), roi_size=3,
                                 hidden=32, rois_per_image=8)


def loss_fn(outputs, batch, box_weight: float = 1.0):
    """Fast R-CNN's multitask loss: cross-entropy + ``box_weight`` x smooth-L1 (beta 1) of the true class's deltas
    (``roi_heads.box_head_loss``).

    Args:
      outputs: ``FastRCNN`` outputs of a training apply (with 'roi_labels', 'roi_targets').
      batch: the training batch (unused: the targets travel in ``outputs``).
      box_weight: lambda.

    Returns:
      ``(loss, {'cls_loss', 'box_loss', 'fg_fraction'})``: sums over the sampled regions divided by their number
      (at least 1: an image without objects or proposals adds nothing, never NaN).
    """
    del batch
    cls, box = box_head_loss(outputs["cls_logits"], outputs["box_deltas"], outputs["roi_labels"],
                             outputs["roi_targets"], outputs["roi_mask"], beta=1.0)
    valid = outputs["roi_mask"]
    fg = jnp.sum(valid & (outputs["roi_labels"] > 0)) / jnp.maximum(jnp.sum(valid), 1)
    return cls + box_weight * box, {"cls_loss": cls, "box_loss": box, "fg_fraction": fg}


def decode(outputs, image_hw):
    """Per-class boxes [B, R, K, 4] (clipped) and scores [B, R, K] (softmax without background; 0 for padding):
    ``roi_heads.decode_head``."""
    return decode_head(outputs["cls_logits"], outputs["box_deltas"], outputs["rois"], outputs["roi_mask"],
                       image_hw, BOX_WEIGHTS)


def predict_fn(model: FastRCNN, score_threshold: float = 0.01, iou_threshold: float = 0.3,
               max_detections: int = 100) -> Callable:
    """``predict(variables, images, proposals=..., proposal_mask=...) -> Detections``, jitted end to end (backbone,
    RoI pooling, heads, decode, per-class NMS with the paper's threshold 0.3; ``common.make_predict``)."""
    return make_predict(model, decode, score_threshold=score_threshold, iou_threshold=iou_threshold,
                                 max_detections=max_detections, topk_candidates=400)


