"""R-CNN (Girshick et al. 2014): every region proposal warped to a fixed size and classified by a CNN.

Pipeline: class-agnostic proposals (selective search, ``jaxvision.proposals``, computed on the host and passed in)
-> each proposal, enlarged by R-CNN's context padding (``context`` of the warp size on every side: the paper's
16 px of 227), warped to ``warp_size`` x ``warp_size`` (``ops.crop_and_resize``, bilinear, anisotropic) -> a CNN
on every warped region -> ``K + 1``-way softmax (background = 0) and per-class box regression -> per-class NMS.

Training follows the paper's fine-tuning: regions with IoU >= 0.5 to a ground-truth box are that box's class,
the others background; each image contributes ``regions_per_image`` regions with up to 25% foreground
(``roi_heads.sample_rois``, ground-truth boxes offered as candidates too). The classifier is the
fine-tuned softmax (the paper's SVMs are replaced by it, as in its appendix). R-CNN's box regression is a
per-class linear map of the CNN features, trained separately from the CNN (its gradient stops at the features)
with a squared loss on the regions of IoU >= ``regression_iou`` (0.6) and the targets of ``BoxCoder((1, 1, 1, 1))``.

Protocol (docs/ARCHITECTURE.md, detector protocol, two-stage extension): training applies the model with
``targets=batch`` (holding 'proposals' and 'proposal_mask') and a ``'sample'`` rng
(``make_loss_fn(model, loss_fn, targets=True)``); ``predict(variables, images, proposals=..., proposal_mask=...)``.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision._checks import check_last_dim, check_rank
from jaxvision.models.backbones.resnet import ResNetSmall, ResNetTiny
from jaxvision.models.detection.common import IMAGENET_MEAN, IMAGENET_STD, make_predict, normalize
from jaxvision.models.detection.roi_heads import decode_head, sample_rois
from jaxvision.ops import BoxCoder, crop_and_resize
from jaxvision.ops.losses import softmax_cross_entropy

REGRESSION_WEIGHTS = (1.0, 1.0, 1.0, 1.0)  # R-CNN's t = (dx / w, dy / h, log dw, log dh)
REGRESSION_CODER = BoxCoder(REGRESSION_WEIGHTS)


def check_proposals(proposals, proposal_mask, batch_size: int):
    """Shapes of the proposal inputs: proposals [B, P, 4] with P >= 1, proposal_mask [B, P]."""
    check_rank("proposals", proposals, 3, "[B, P, 4]")
    check_last_dim("proposals", proposals, 4)
    if proposals.shape[0] != batch_size or proposals.shape[1] < 1:
        raise ValueError(f"proposals: expected [B={batch_size}, P >= 1, 4], got shape {proposals.shape}")
    if proposal_mask is None or tuple(proposal_mask.shape) != tuple(proposals.shape[:2]):
        got = None if proposal_mask is None else tuple(proposal_mask.shape)
        raise ValueError(f"proposal_mask: expected shape {tuple(proposals.shape[:2])}, got {got}")


def init_proposals(module: nn.Module, images, proposals, proposal_mask):
    """The proposals to run on without targets: a whole-image box per image while initializing from images alone,
    else the given ones (checked)."""
    if proposals is None and module.is_initializing():
        h, w = images.shape[1:3]
        proposals = jnp.broadcast_to(jnp.array([0.0, 0.0, w, h], jnp.float32), (images.shape[0], 1, 4))
        proposal_mask = jnp.ones((images.shape[0], 1), bool)
    if proposals is None:
        raise ValueError("proposals: expected [B, P, 4] region proposals (or targets when training), got None")
    check_proposals(proposals, proposal_mask, images.shape[0])
    return proposals, proposal_mask


def with_context(boxes, context: float):
    """Enlarge boxes so that, warped, a margin of ``context`` (fraction of the warp size) surrounds the original."""
    if context <= 0:
        return boxes
    c = boxes[..., :2] * 0.5 + boxes[..., 2:] * 0.5
    half = (boxes[..., 2:] - boxes[..., :2]) * (0.5 / (1.0 - 2.0 * context))
    return jnp.concatenate([c - half, c + half], -1)


class RCNN(nn.Module):
    """Warp-and-classify detector over given proposals.

    Attributes:
      num_classes: K object classes (the classifier has K + 1 outputs, background first).
      backbone: feature-map factory run on the warped regions (its last map is average-pooled).
      warp_size: side of the warped regions in px.
      context: context padding as a fraction of ``warp_size`` per side (R-CNN: 16 / 227); 0 disables it.
      hidden: width of the fully connected layer on the pooled features.
      regions_per_image, positive_fraction, fg_iou: training-region sampling (see the module docstring).
      pixel_mean, pixel_std: input normalization; dtype: computation dtype.
    """

    num_classes: int
    backbone: Callable[..., nn.Module] = ResNetSmall
    warp_size: int = 32
    context: float = 16 / 227
    hidden: int = 256
    regions_per_image: int = 32
    positive_fraction: float = 0.25
    fg_iou: float = 0.5
    pixel_mean: Sequence[float] = IMAGENET_MEAN
    pixel_std: Sequence[float] = IMAGENET_STD
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images, train: bool = False, targets: dict | None = None, proposals=None,
                 proposal_mask=None):
        """Args:
          images: float32 [B, H, W, 3] in [0, 1].
          train: BatchNorm mode.
          targets: a training batch ('proposals', 'proposal_mask', 'boxes', 'labels', 'mask'): regions are
            sampled against its ground truth (needs a 'sample' rng).
          proposals, proposal_mask: [B, P, 4] xyxy px and [B, P] bool, the regions to classify (without targets).

        Returns:
          dict: 'cls_logits' [B, R, K + 1], 'box_deltas' [B, R, K + 1, 4] (``REGRESSION_CODER`` units), 'rois'
          [B, R, 4], 'roi_mask' [B, R]; with targets also 'roi_labels' [B, R] (0 background) and 'roi_targets'
          [B, R, 4] (regression targets of the foreground regions), R = min(regions_per_image, P + G).
        """
        check_rank("images", images, 4, "[B, H, W, C]")
        out = {}
        if targets is not None:
            check_proposals(targets["proposals"], targets.get("proposal_mask"), images.shape[0])
            keys = jax.random.split(self.make_rng("sample"), images.shape[0])
            sample = functools.partial(sample_rois, num_samples=self.regions_per_image,
                                       positive_fraction=self.positive_fraction, fg_iou=self.fg_iou,
                                       bg_iou=self.fg_iou, bg_iou_low=0.0, box_weights=REGRESSION_WEIGHTS)
            s = jax.vmap(sample)(keys, targets["proposals"].astype(jnp.float32), targets["proposal_mask"],
                                 targets["boxes"].astype(jnp.float32), targets["labels"], targets["mask"])
            rois, roi_mask = s.boxes, s.valid
            out.update(roi_labels=s.labels, roi_targets=s.targets)
        else:
            proposals, proposal_mask = init_proposals(self, images, proposals, proposal_mask)
            rois, roi_mask = proposals.astype(jnp.float32), proposal_mask.astype(bool)
        b, r = rois.shape[:2]
        crops = crop_and_resize(images, with_context(rois, self.context), self.warp_size)
        x = normalize(crops.reshape(b * r, self.warp_size, self.warp_size, images.shape[-1]),
                      self.pixel_mean, self.pixel_std)
        x = self.backbone(dtype=self.dtype, name="backbone")(x, train)[-1]
        feats = nn.relu(nn.Dense(self.hidden, dtype=self.dtype, name="fc")(jnp.mean(x, axis=(1, 2))))
        logits = nn.Dense(self.num_classes + 1, dtype=self.dtype, name="cls")(feats)
        # R-CNN's class-specific bounding-box regressors: linear on the features, trained apart from the CNN
        k = self.num_classes + 1  # background's row is never trained nor used (roi_heads' layout)
        deltas = nn.Dense(4 * k, dtype=self.dtype, name="bbox_reg")(jax.lax.stop_gradient(feats))
        out.update(cls_logits=logits.reshape(b, r, -1).astype(jnp.float32),
                   box_deltas=deltas.reshape(b, r, k, 4).astype(jnp.float32),
                   rois=rois, roi_mask=roi_mask)
        return out


RCNNTiny = functools.partial(RCNN, backbone=functools.partial(ResNetTiny, stage_sizes=(1, 1)), warp_size=16, hidden=32,
                             regions_per_image=8)


def _pairwise_iou(a, b):
    """Elementwise IoU of xyxy boxes ``a``, ``b`` [..., 4] -> [...] (0 for empty unions)."""
    wh = jnp.clip(jnp.minimum(a[..., 2:], b[..., 2:]) - jnp.maximum(a[..., :2], b[..., :2]), 0.0)
    inter = wh[..., 0] * wh[..., 1]
    area = lambda x: jnp.clip(x[..., 2] - x[..., 0], 0.0) * jnp.clip(x[..., 3] - x[..., 1], 0.0)  # noqa: E731
    union = area(a) + area(b) - inter
    return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1.0), 0.0)


def loss_fn(outputs, batch, regression_iou: float = 0.6, regression_weight: float = 1.0):
    """Softmax cross-entropy over the sampled regions + R-CNN's squared box-regression loss.

    Args:
      outputs: ``RCNN`` outputs of a training apply (with 'roi_labels', 'roi_targets').
      batch: the training batch (unused: the targets travel in ``outputs``).
      regression_iou: foreground regions with IoU >= this to their ground truth train the regressor of its class.
      regression_weight: weight of the regression term (its gradient reaches only the regressors).

    Returns:
      ``(loss, {'cls_loss', 'box_loss', 'fg_fraction'})``; both terms are means over their regions (0 when there
      are none: an image without objects gives background regions only, never NaN).
    """
    del batch
    valid, labels, rois = outputs["roi_mask"], outputs["roi_labels"], outputs["rois"]
    n = jnp.maximum(jnp.sum(valid), 1)
    cls = jnp.sum(jnp.where(valid, softmax_cross_entropy(outputs["cls_logits"], labels), 0.0)) / n
    fg = valid & (labels > 0)
    gt = REGRESSION_CODER.decode(rois, outputs["roi_targets"])  # the matched ground truth, back from the targets
    reg = fg & (_pairwise_iou(rois, gt) >= regression_iou)
    pred = jnp.take_along_axis(outputs["box_deltas"], labels[..., None, None], axis=2)[..., 0, :]
    sq = jnp.sum((pred - outputs["roi_targets"]) ** 2, -1)
    box = jnp.sum(jnp.where(reg, sq, 0.0)) / jnp.maximum(jnp.sum(reg), 1)
    return cls + regression_weight * box, {"cls_loss": cls, "box_loss": box, "fg_fraction": jnp.sum(fg) / n}


def decode(outputs, image_hw):
    """Per-class boxes [B, R, K, 4] (regressed, clipped) and scores [B, R, K] (softmax without the background
    column; 0 for padding proposals): ``roi_heads.decode_head``."""
    return decode_head(outputs["cls_logits"], outputs["box_deltas"], outputs["rois"], outputs["roi_mask"],
                       image_hw, REGRESSION_WEIGHTS)


def predict_fn(model: RCNN, score_threshold: float = 0.01, iou_threshold: float = 0.3,
               max_detections: int = 100) -> Callable:
    """``predict(variables, images, proposals=..., proposal_mask=...) -> Detections``, jitted end to end (warping,
    CNN, decode, per-class NMS with R-CNN's threshold 0.3; ``common.make_predict``)."""
    return make_predict(model, decode, score_threshold=score_threshold, iou_threshold=iou_threshold,
                                 max_detections=max_detections, topk_candidates=400)
