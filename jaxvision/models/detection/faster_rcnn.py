"""Faster R-CNN (Ren et al. 2015): a region proposal network and a RoI-Align box head on one feature map.

``FasterRCNN(num_classes, backbone, ...)`` is torchvision's ``FasterRCNN`` with a single-level backbone (its
"custom backbone" recipe: ``AnchorGenerator`` of one level, ``MultiScaleRoIAlign`` of one map), static-shape:

- **RPN** (``RPNHead``): 3x3 conv (``ops.small_map_conv``: one matmul on the CPU over ResNet-50's C5) + ReLU,
  1x1 objectness logit and 1x1 (dx, dy, dw, dh) per anchor; anchors of ``len(anchor_sizes) x len(aspect_ratios)``
  shapes per location (``ops.anchor_grid``, torchvision order).
  Proposals: top ``pre_nms_top_n`` anchors by objectness, decoded (``BoxCoder`` weights 1), clipped, boxes smaller
  than ``min_size`` dropped, NMS ``rpn_nms_thresh``, first ``post_nms_top_n`` kept (padding masked), no gradient.
  Training targets (``rpn_loss``): IoU >= 0.7 positive, < 0.3 negative, plus each ground truth's best anchors
  (``match_boxes(allow_low_quality_matches=True)``); 256 anchors per image, at most half positive
  (``balanced_sample``); BCE on the sampled anchors + smooth-L1 (beta 1/9) on the positives, both divided by
  the number sampled.
- **RoI head** (``roi_heads``): in training the ground truth is appended to the proposals and ``box_batch_size``
  RoIs per image are sampled (IoU >= 0.5 foreground, at most 25 %), pooled with ``roi_align`` (7 x 7, sampling
  ratio 2) and fed to ``RoIBoxHead`` (two FC layers, class logits, class-specific deltas with ``BoxCoder`` weights
  (10, 10, 5, 5)); loss = cross-entropy + smooth-L1 (beta 1/9) / number of sampled RoIs. At test time the head
  runs on the ``post_nms_top_n_test`` proposal slots (``roi_heads.classify_valid_rois``: on the CPU on one bucket
  of rows just holding the valid proposals, since after the RPN's NMS most slots are padding); ``decode`` +
  ``multiclass_nms`` (score > 0.05, per-class NMS 0.5, 100 detections) end ``predict_fn``'s one jitted program.

Training runs ``model.apply(..., targets=batch, rngs={'sample': key})`` (RoI sampling) and ``loss_fn(outputs,
batch, rng=key)`` (RPN anchor sampling): ``make_loss_fn(model, loss_fn, targets=True, loss_rng=True)``.
Ground-truth boxes with zero width or height are ignored (``roi_heads.valid_boxes``); an image without objects
gives only background targets (finite loss).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision._checks import check_rank
from jaxvision.models.backbones.resnet import ResNet50, ResNetTiny
from jaxvision.models.detection import roi_heads
from jaxvision.models.detection.common import IMAGENET_MEAN, IMAGENET_STD, make_predict, normalize
from jaxvision.ops import (
    BoxCoder,
    anchor_grid,
    anchor_strides,
    balanced_sample,
    box_iou,
    clip_boxes_to_image,
    match_boxes,
    nms,
    small_map_conv,
    take_valid,
)
from jaxvision.ops.losses import smooth_l1

RPN_BOX_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
_head_init = nn.initializers.normal(0.01)


class RPNHead(nn.Module):
    """torchvision ``RPNHead`` (one conv layer): ``features [B, h, w, C] -> (objectness [B, h*w*A],
    deltas [B, h*w*A, 4])`` in (row, column, anchor) order."""

    num_anchors: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        b = x.shape[0]
        conv = functools.partial(nn.Conv, kernel_init=_head_init, dtype=self.dtype)
        # small_map_conv: on the CPU, a 3x3 conv over a small channel-heavy map (ResNet-50's C5) as one matmul
        t = nn.relu(conv(x.shape[-1], (3, 3), padding=1, conv_general_dilated=small_map_conv, name="conv")(x))
        logits = conv(self.num_anchors, (1, 1), name="cls_logits")(t)
        deltas = conv(4 * self.num_anchors, (1, 1), name="bbox_pred")(t)
        return logits.reshape(b, -1).astype(jnp.float32), deltas.reshape(b, -1, 4).astype(jnp.float32)


def propose(objectness, deltas, anchors, image_hw, pre_nms_top_n: int, post_nms_top_n: int,
            nms_thresh: float = 0.7, min_size: float = 1e-3):
    """RPN proposals of one image (torchvision ``RegionProposalNetwork.filter_proposals``, one level).

    Args:
        objectness: ``[A]`` logits. deltas: ``[A, 4]``. anchors: ``[A, 4]`` xyxy px. image_hw: (H, W).
        pre_nms_top_n, post_nms_top_n: static ints (clamped to ``A``).
        nms_thresh: NMS IoU threshold. min_size: boxes with a side below this are dropped.

    Returns:
        ``(boxes [N, 4], scores [N] sigmoid objectness, valid bool [N])``, ``N = min(post, pre, A)``, by
        decreasing score, padding zeroed.
    """
    anchors = jnp.asarray(anchors)
    k = min(int(pre_nms_top_n), objectness.shape[0])
    top, idx = jax.lax.top_k(objectness, k)
    boxes = BoxCoder(RPN_BOX_WEIGHTS).decode(anchors[idx], deltas[idx])
    boxes = clip_boxes_to_image(boxes, tuple(image_hw))
    big = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
    scores = jax.nn.sigmoid(top)
    n = min(int(post_nms_top_n), k)
    keep, _ = nms(boxes, jnp.where(big, scores, -1.0), nms_thresh, max_output_size=n, score_threshold=-0.5)
    return take_valid(boxes, keep), take_valid(scores, keep), keep >= 0


def _bce_with_logits(x, z):
    return jnp.maximum(x, 0.0) - x * z + jnp.log1p(jnp.exp(-jnp.abs(x)))


def rpn_targets(anchors, gt_boxes, gt_mask, fg_iou: float = 0.7, bg_iou: float = 0.3):
    """RPN anchor targets of one image (torchvision ``assign_targets_to_anchors`` + ``encode``).

    Returns:
        ``(matches int32 [A]`` (ground-truth index, -1 background, -2 ignored), ``targets [A, 4]`` BoxCoder(1)
        deltas of the positive anchors, 0 elsewhere).
    """
    gt_valid = roi_heads.valid_boxes(gt_boxes, gt_mask)
    matches = match_boxes(box_iou(gt_boxes, anchors), gt_valid, fg_iou, bg_iou, allow_low_quality_matches=True)
    pos = matches >= 0
    gt = gt_boxes[jnp.maximum(matches, 0)]
    deltas = BoxCoder(RPN_BOX_WEIGHTS).encode(jnp.where(pos[:, None], anchors, 1.0), jnp.where(pos[:, None], gt, 1.0))
    return matches, jnp.where(pos[:, None], deltas, 0.0)


def rpn_loss(objectness, deltas, anchors, gt_boxes, gt_mask, rng, batch_size_per_image: int = 256,
             positive_fraction: float = 0.5, fg_iou: float = 0.7, bg_iou: float = 0.3, beta: float = 1.0 / 9):
    """torchvision ``RegionProposalNetwork.compute_loss`` over a batch.

    Args:
        objectness: ``[B, A]`` logits. deltas: ``[B, A, 4]``. anchors: ``[A, 4]``.
        gt_boxes: ``[B, G, 4]``; gt_mask: ``bool [B, G]``. rng: PRNG key (split per image).
        batch_size_per_image, positive_fraction: anchors sampled per image and their largest positive share.

    Returns:
        ``(objectness_loss, box_loss, num_positive)``: BCE mean over sampled anchors; smooth-L1 sum over positive
        anchors / number sampled.
    """
    matches, targets = jax.vmap(lambda g, m: rpn_targets(anchors, g, m, fg_iou, bg_iou))(gt_boxes, gt_mask)
    keys = jax.random.split(rng, objectness.shape[0])
    pos, neg = jax.vmap(lambda k, m: balanced_sample(k, m, int(batch_size_per_image), float(positive_fraction)))(
        keys, matches)
    sampled = pos | neg
    n = jnp.maximum(jnp.sum(sampled), 1).astype(jnp.float32)
    obj = jnp.sum(jnp.where(sampled, _bce_with_logits(objectness, pos.astype(jnp.float32)), 0.0)) / n
    box = jnp.sum(jnp.where(pos[..., None], smooth_l1(deltas, targets, beta=beta), 0.0)) / n
    return obj, box, jnp.sum(pos)


class FasterRCNN(nn.Module):
    """Faster R-CNN on the last (or ``feature_index``) map of a backbone.

    Attributes:
        num_classes: foreground classes ``C``.
        backbone: module factory returning a list of feature maps (``backbones`` protocol).
        feature_index: which map feeds the RPN and the RoI head.
        anchor_sizes, aspect_ratios: anchors per location (paper: 128, 256, 512 px x 0.5, 1, 2).
        rpn_pre_nms_top_n_train/test, rpn_post_nms_top_n_train/test, rpn_nms_thresh, rpn_min_size: proposals
            (torchvision 2000/1000, 2000/1000, 0.7, 1e-3).
        box_batch_size_per_image, box_positive_fraction, box_fg_iou, box_bg_iou: RoI sampling (512, 0.25, 0.5, 0.5).
        representation_size: RoI head FC width (1024). pool_size: RoI Align output (7). sampling_ratio: 2.
        rpn_channels: channels of the RPN's 3x3 conv (None: the feature map's).
        head_strategy: test-time RoI head, ``roi_heads.classify_valid_rois``'s ``strategy`` (None: a bucket of
            rows holding the valid proposals on the CPU, all proposal slots at once on accelerators).
        pixel_mean, pixel_std: input normalization; dtype: computation dtype.
    """

    num_classes: int
    backbone: Callable[..., nn.Module] = ResNetTiny
    feature_index: int = -1
    anchor_sizes: Sequence[float] = (128.0, 256.0, 512.0)
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0)
    rpn_pre_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_test: int = 1000
    rpn_nms_thresh: float = 0.7
    rpn_min_size: float = 1e-3
    box_batch_size_per_image: int = 512
    box_positive_fraction: float = 0.25
    box_fg_iou: float = 0.5
    box_bg_iou: float = 0.5
    representation_size: int = 1024
    pool_size: int = 7
    sampling_ratio: int = 2
    head_strategy: str | None = None
    pixel_mean: Sequence[float] = IMAGENET_MEAN
    pixel_std: Sequence[float] = IMAGENET_STD
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images, train: bool = False, targets: dict | None = None):
        """Args: images ``float32 [B, H, W, 3]`` in [0, 1]; ``targets``: the training batch (``boxes``,
        ``labels``, ``mask``) to sample RoIs against (needs the ``'sample'`` rng stream).

        Returns:
            ``{'objectness' [B, A], 'rpn_deltas' [B, A, 4], 'anchors' [A, 4], 'proposals' [B, N, 4],
            'proposal_valid' [B, N], 'rois' [B, R, 4], 'roi_valid' [B, R], 'class_logits' [B, R, C + 1],
            'box_regression' [B, R, C + 1, 4]}`` with ``R = N`` (all proposals) without targets, else the sampled
            RoIs plus ``'roi_labels' [B, R]`` and ``'roi_targets' [B, R, 4]``.
        """
        check_rank("images", images, 4, "[B, H, W, C]")
        hw = tuple(images.shape[1:3])
        feats = self.backbone(dtype=self.dtype, name="backbone")(
            normalize(images, self.pixel_mean, self.pixel_std), train)[self.feature_index]
        fhw = tuple(feats.shape[1:3])
        sizes, ratios = tuple(float(s) for s in self.anchor_sizes), tuple(float(r) for r in self.aspect_ratios)
        anchors = anchor_grid([fhw], anchor_strides(hw, [fhw]), (sizes,), (ratios,))
        objectness, deltas = RPNHead(len(sizes) * len(ratios), self.dtype, name="rpn")(feats)
        pre = self.rpn_pre_nms_top_n_train if train else self.rpn_pre_nms_top_n_test
        post = self.rpn_post_nms_top_n_train if train else self.rpn_post_nms_top_n_test
        if self.is_initializing():  # only shapes matter: skip the NMS, which would double init's compile time
            n = min(int(pre), int(post), anchors.shape[0])
            proposals = jnp.broadcast_to(anchors[:n], (images.shape[0], n, 4))
            proposal_valid = jnp.ones(proposals.shape[:2], bool)
        else:
            proposals, _, proposal_valid = jax.vmap(lambda o, d: propose(
                o, d, anchors, hw, pre, post, self.rpn_nms_thresh, self.rpn_min_size))(
                jax.lax.stop_gradient(objectness), jax.lax.stop_gradient(deltas))
        out = {"objectness": objectness, "rpn_deltas": deltas, "anchors": anchors, "proposals": proposals,
               "proposal_valid": proposal_valid}
        if targets is not None:
            keys = jax.random.split(self.make_rng("sample"), images.shape[0])
            samples = jax.vmap(functools.partial(
                roi_heads.sample_rois, num_samples=self.box_batch_size_per_image,
                positive_fraction=self.box_positive_fraction, fg_iou=self.box_fg_iou, bg_iou=self.box_bg_iou))(
                keys, proposals, proposal_valid, targets["boxes"], targets["labels"], targets["mask"])
            rois, roi_valid = samples.boxes, samples.valid
            out.update(roi_labels=samples.labels, roi_targets=samples.targets)
        else:
            rois, roi_valid = proposals, proposal_valid
        # torchvision MultiScaleRoIAlign's scale of one level: the nearest power of two of feature / image size
        scale = 2.0 ** round(math.log2(fhw[1] / hw[1]))
        head = roi_heads.RoIBoxHead(self.num_classes, self.representation_size, self.dtype, name="box_head")
        pool = dict(output_size=self.pool_size, spatial_scale=scale, sampling_ratio=self.sampling_ratio)
        if targets is None and not self.is_initializing():  # test time: the head only where proposals are
            head_params = {"params": self.variables["params"]["box_head"]}
            unbound = head.clone(parent=None, name=None)
            logits, box_regression = roi_heads.classify_valid_rois(
                lambda pooled: unbound.apply(head_params, pooled), feats, rois, roi_valid,
                strategy=self.head_strategy, **pool)
        else:
            logits, box_regression = head(roi_heads.pool_rois(feats, rois, **pool))
        out.update(rois=rois, roi_valid=roi_valid, class_logits=logits, box_regression=box_regression)
        return out


#: ImageNet scale: ResNet-50's C5 map (stride 32, 2048 channels) as in torchvision's custom-backbone recipe,
#: the paper's anchors (128, 256, 512 x 0.5, 1, 2); load ImageNet weights with ``torchvision_weights``.
FasterRCNNResNet50 = functools.partial(FasterRCNN, backbone=ResNet50)
#: CPU-sized model for tests: ResNetTiny's last map, small anchors and sample counts.
FasterRCNNTiny = functools.partial(
    FasterRCNN, backbone=ResNetTiny, anchor_sizes=(8.0, 16.0, 32.0), rpn_pre_nms_top_n_train=64,
    rpn_pre_nms_top_n_test=64, rpn_post_nms_top_n_train=32, rpn_post_nms_top_n_test=16, box_batch_size_per_image=32,
    representation_size=32)


def loss_fn(outputs, batch, rng, rpn_batch_size_per_image: int = 256, rpn_positive_fraction: float = 0.5,
            rpn_fg_iou: float = 0.7, rpn_bg_iou: float = 0.3):
    """RPN loss + RoI head loss (torchvision's four terms, summed with weight 1).

    Args:
        outputs: ``FasterRCNN`` outputs of a forward pass with ``targets``.
        batch: ``{'boxes' [B, G, 4] xyxy px, 'labels' [B, G], 'mask' [B, G]}``.
        rng: key of the RPN anchor sampling.
        rpn_*: RPN sampling and matching (torchvision 256, 0.5, 0.7, 0.3).

    Returns:
        ``(loss, {'loss_objectness', 'loss_rpn_box_reg', 'loss_classifier', 'loss_box_reg', 'rpn_num_pos',
        'roi_num_fg'})``.
    """
    if "roi_labels" not in outputs:
        raise ValueError("outputs: expected the outputs of a forward pass with targets (make_loss_fn(..., "
                         "targets=True)), got no 'roi_labels'")
    obj, rpn_box, npos = rpn_loss(outputs["objectness"], outputs["rpn_deltas"], outputs["anchors"], batch["boxes"],
                                  batch["mask"], rng, rpn_batch_size_per_image, rpn_positive_fraction, rpn_fg_iou,
                                  rpn_bg_iou)
    cls, box = roi_heads.box_head_loss(outputs["class_logits"], outputs["box_regression"], outputs["roi_labels"],
                                       outputs["roi_targets"], outputs["roi_valid"])
    parts = {"loss_objectness": obj, "loss_rpn_box_reg": rpn_box, "loss_classifier": cls, "loss_box_reg": box}
    total = obj + rpn_box + cls + box
    parts.update(rpn_num_pos=npos.astype(jnp.float32),
                 roi_num_fg=jnp.sum(outputs["roi_valid"] & (outputs["roi_labels"] > 0)).astype(jnp.float32))
    return total, parts


def decode(outputs, image_hw):
    """Outputs of a forward without targets -> ``(boxes [B, R, C, 4], scores [B, R, C])`` (``decode_head``)."""
    return roi_heads.decode_head(outputs["class_logits"], outputs["box_regression"], outputs["rois"],
                                 outputs["roi_valid"], image_hw)


def predict_fn(model: FasterRCNN, score_threshold: float = 0.05, iou_threshold: float = 0.5,
               max_detections: int = 100) -> Callable:
    """``predict(variables, images) -> Detections`` (torchvision defaults: box score 0.05, NMS 0.5, 100 per image),
    one jitted program from pixels to detections."""
    return make_predict(model, decode, score_threshold=score_threshold, iou_threshold=iou_threshold,
                        max_detections=max_detections, topk_candidates=1 << 30)
