"""Fast R-CNN (Girshick 2015): one backbone pass per image, RoI max pooling of the proposals, two heads.

Pipeline: class-agnostic proposals (selective search, passed in) -> backbone feature map of the whole image ->
``roi_pool`` of every proposal to ``roi_size`` x ``roi_size`` -> two fully connected layers -> ``K + 1``-way
classification (background = 0) and class-specific box deltas (``BoxCoder((10, 10, 5, 5))``: the paper's
target normalisation by standard deviations 0.1 / 0.2) -> per-class NMS.

Training follows the paper: mini-batches of ``rois_per_image`` regions per image with up to 25% foreground
(IoU >= 0.5 with a ground-truth box) and background from ``[bg_iou_low, 0.5)`` (0.1, the paper's hard-ish
negatives), ground-truth boxes offered as candidates too (``region_sampling.sample_regions``); the multitask loss
is cross-entropy + lambda * smooth-L1 (beta 1, lambda 1) on the foreground regions' true-class deltas, both
normalised by the number of sampled regions.

Protocol: as ``rcnn`` (training with ``targets=batch`` and a ``'sample'`` rng; ``predict(variables, images,
proposals=..., proposal_mask=...)``).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxvision._checks import check_rank
from jaxvision.models.backbones.resnet import ResNetSmall, ResNetTiny
from jaxvision.models.detection.common import IMAGENET_MEAN, IMAGENET_STD, make_predict, normalize
from jaxvision.models.detection.rcnn import check_proposals
from jaxvision.models.detection.rcnn import decode as rcnn_decode
from jaxvision.models.detection.region_sampling import sample_batch
from jaxvision.ops import BoxCoder, roi_pool
from jaxvision.ops.losses import smooth_l1, softmax_cross_entropy

BOX_CODER = BoxCoder((10.0, 10.0, 5.0, 5.0))


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
        """Args and returns as ``rcnn.RCNN.__call__`` ('box_deltas' [B, R, K, 4] in ``BOX_CODER`` units)."""
        check_rank("images", images, 4, "[B, H, W, C]")
        out = {}
        if targets is not None:
            check_proposals(targets["proposals"], targets.get("proposal_mask"), images.shape[0])
            s = sample_batch(self.make_rng("sample"), targets, self.rois_per_image,
                             positive_fraction=self.positive_fraction, fg_iou=self.fg_iou,
                             bg_iou_low=self.bg_iou_low)
            rois, roi_mask = s["boxes"], s["valid"]
            out.update(roi_labels=s["labels"], roi_gt_boxes=s["gt_boxes"], roi_iou=s["iou"])
        else:
            if proposals is None and self.is_initializing():  # init from images alone: one whole-image region
                h, w = images.shape[1:3]
                proposals = jnp.broadcast_to(jnp.array([0.0, 0.0, w, h], jnp.float32), (images.shape[0], 1, 4))
                proposal_mask = jnp.ones((images.shape[0], 1), bool)
            if proposals is None:
                raise ValueError("proposals: expected [B, P, 4] region proposals (or targets when training), got None")
            check_proposals(proposals, proposal_mask, images.shape[0])
            rois, roi_mask = proposals.astype(jnp.float32), proposal_mask.astype(bool)
        b, r = rois.shape[:2]
        feats = self.backbone(dtype=self.dtype, name="backbone")(normalize(images, self.pixel_mean, self.pixel_std),
                                                                  train)[-1]
        scale = feats.shape[1] / images.shape[1]
        idx = jnp.repeat(jnp.arange(b, dtype=jnp.int32), r)
        pooled = roi_pool(feats, rois.reshape(b * r, 4), idx, self.roi_size, spatial_scale=scale)
        x = pooled.reshape(b * r, -1)
        x = nn.relu(nn.Dense(self.hidden, dtype=self.dtype, name="fc6")(x))
        x = nn.relu(nn.Dense(self.hidden, dtype=self.dtype, name="fc7")(x))
        logits = nn.Dense(self.num_classes + 1, dtype=self.dtype, name="cls_score")(x)
        deltas = nn.Dense(4 * self.num_classes, dtype=self.dtype, name="bbox_pred",
                          kernel_init=nn.initializers.normal(0.001))(x)
        out.update(cls_logits=logits.reshape(b, r, -1).astype(jnp.float32),
                   box_deltas=deltas.reshape(b, r, self.num_classes, 4).astype(jnp.float32),
                   rois=rois, roi_mask=roi_mask)
        return out


FastRCNNTiny = functools.partial(FastRCNN, backbone=functools.partial(ResNetTiny, stage_sizes=(1, 1)), roi_size=3,
                                 hidden=32, rois_per_image=8)


def loss_fn(outputs, batch, box_weight: float = 1.0):
    """Fast R-CNN's multitask loss: cross-entropy + ``box_weight`` x smooth-L1 (beta 1) of the true class's deltas.

    Args:
      outputs: ``FastRCNN`` outputs of a training apply (with 'roi_labels', 'roi_gt_boxes').
      batch: the training batch (unused: the targets travel in ``outputs``).
      box_weight: lambda.

    Returns:
      ``(loss, {'cls_loss', 'box_loss', 'fg_fraction'})``: sums over the sampled regions divided by their number
      (at least 1: an image without objects or proposals adds nothing, never NaN).
    """
    del batch
    valid = outputs["roi_mask"]
    labels = outputs["roi_labels"]
    n = jnp.maximum(jnp.sum(valid), 1)
    cls = jnp.sum(jnp.where(valid, softmax_cross_entropy(outputs["cls_logits"], labels), 0.0)) / n
    fg = valid & (labels > 0)
    pred = jnp.take_along_axis(outputs["box_deltas"], jnp.maximum(labels - 1, 0)[..., None, None], axis=2)[..., 0, :]
    unit = jnp.array([0.0, 0.0, 1.0, 1.0])
    target = BOX_CODER.encode(jnp.where(fg[..., None], outputs["rois"], unit),
                              jnp.where(fg[..., None], outputs["roi_gt_boxes"], unit))
    box = jnp.sum(jnp.where(fg, jnp.sum(smooth_l1(pred, target, beta=1.0), -1), 0.0)) / n
    return cls + box_weight * box, {"cls_loss": cls, "box_loss": box, "fg_fraction": jnp.sum(fg) / n}


def decode(outputs, image_hw):
    """Per-class boxes [B, R, K, 4] (clipped) and scores [B, R, K] (softmax without background; 0 for padding)."""
    return rcnn_decode(outputs, image_hw, BOX_CODER)


def predict_fn(model: FastRCNN, score_threshold: float = 0.01, iou_threshold: float = 0.3,
               max_detections: int = 100) -> Callable:
    """``predict(variables, images, proposals=..., proposal_mask=...) -> Detections``, jitted end to end (backbone,
    RoI pooling, heads, decode, per-class NMS with the paper's threshold 0.3; ``common.make_predict``)."""
    return make_predict(model, decode, score_threshold=score_threshold, iou_threshold=iou_threshold,
                                 max_detections=max_detections, topk_candidates=400)


