"""SSD (Liu et al. 2016): multi-scale feature maps, default boxes, forced matching, hard negative mining.

``SSD(num_classes, backbone, aspect_ratios, ...)`` predicts, on every map ``k`` and every location, ``A_k =
2 + 2 * len(aspect_ratios[k])`` default boxes' class logits (background = index 0) and box deltas (3x3 conv
heads). Default boxes come from ``jaxvision.ops.anchors.ssd_default_boxes`` (torchvision DefaultBoxGenerator
semantics) at the actual feature-map sizes, in the same (row, col, box) order as the heads' outputs.

Training (torchvision ``SSD.compute_loss``): each GT's best default box is forced to match it, other boxes match
at IoU >= 0.5 (``ops.matching.ssd_match``); box loss = smooth-L1 (beta 1) on ``BoxCoder((10, 10, 5, 5))``
deltas of positives; classification = softmax CE on positives plus the 3x hardest negatives
(``ops.matching.hard_negative_mask``); both summed and divided by the number of positives in the batch.

Inference: softmax, decode, clip, per-class top-400, score > 0.01, per-class NMS 0.45, 200 detections.

``SSD300`` is the paper's 300 x 300 VGG16 model (torchvision ``ssd300_vgg16`` layout: ceil-mode pool3,
L2-normalized conv4_3 with learned scale 20, dilated fc6, 1x1 fc7, four extra blocks; 8732 default boxes).
``SSDTiny`` is a CPU-sized model for 64-96 px images.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision._checks import check_rank
from jaxvision.models.backbones.resnet import ResNetTiny
from jaxvision.models.backbones.vgg import VGG, VGG16_CFG
from jaxvision.models.detection.common import IMAGENET_MEAN, IMAGENET_STD, make_predict, normalize
from jaxvision.ops import box_iou, clip_boxes_to_image
from jaxvision.ops.anchors import ssd_default_boxes
from jaxvision.ops.coding import BoxCoder
from jaxvision.ops.losses import smooth_l1, softmax_cross_entropy
from jaxvision.ops.matching import hard_negative_mask, ssd_match

SSD_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
_xavier = nn.initializers.xavier_uniform()


class L2Norm(nn.Module):
    """Channel-wise L2 normalization with a learned per-channel scale (init ``scale``), as on SSD's conv4_3."""

    scale: float = 20.0

    @nn.compact
    def __call__(self, x):
        w = self.param("weight", nn.initializers.constant(self.scale), (x.shape[-1],))
        norm = jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True))
        return x / jnp.maximum(norm, 1e-12) * w.astype(x.dtype)


class SSDVGG16Backbone(nn.Module):
    """torchvision's SSD300 VGG16 trunk: returns six maps (38, 19, 10, 5, 3, 1 at 300 px).

    The VGG part lives under ``vgg`` with ``VGG``'s parameter names, so ImageNet VGG16 weights load with
    ``merge_pretrained(..., prefix=('backbone', 'vgg'))``.
    """

    batch_norm: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        conv = functools.partial(nn.Conv, kernel_init=_xavier, dtype=self.dtype)
        stages = VGG(cfg=VGG16_CFG[:-1], batch_norm=self.batch_norm, dtype=self.dtype, name="vgg")(x, train)
        c4, x = stages[3], stages[4]  # conv4_3 (pre-pool4, stride 8), conv5_3 (stride 16)
        x = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
        x = nn.relu(conv(1024, (3, 3), padding=6, kernel_dilation=6, name="fc6")(x))
        x = nn.relu(conv(1024, (1, 1), name="fc7")(x))
        feats = [L2Norm(20.0, name="l2norm")(c4), x]
        for i, (mid, out, stride, pad) in enumerate(((256, 512, 2, 1), (128, 256, 2, 1), (128, 256, 1, 0),
                                                     (128, 256, 1, 0))):
            x = nn.relu(conv(mid, (1, 1), name=f"extra{i}_reduce")(x))
            x = nn.relu(conv(out, (3, 3), (stride, stride), padding=pad, name=f"extra{i}_conv")(x))
            feats.append(x)
        return feats


class SSDLiteBackbone(nn.Module):
    """A small multi-scale trunk: the last ``taps`` stages of ``base`` plus stride-2 extra blocks.

    Attributes:
        base: module factory returning a list of stage features (e.g. ``ResNetTiny``).
        taps: how many of the base's last stages to use as detection maps.
        extras: output channels of each extra block (1x1 reduce to half, 3x3 stride 2, BN, ReLU).
        dtype: computation dtype.
    """

    base: Callable[..., nn.Module] = ResNetTiny
    taps: int = 2
    extras: Sequence[int] = (128, 128)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        feats = list(self.base(dtype=self.dtype, name="base")(x, train)[-self.taps:])
        x = feats[-1]
        for i, ch in enumerate(self.extras):
            x = nn.relu(nn.Conv(ch // 2, (1, 1), use_bias=False, dtype=self.dtype, name=f"extra{i}_reduce")(x))
            x = nn.Conv(ch, (3, 3), (2, 2), padding=1, use_bias=False, dtype=self.dtype, name=f"extra{i}_conv")(x)
            x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype,
                                     name=f"extra{i}_bn")(x))
            feats.append(x)
        return feats


class SSD(nn.Module):
    """Single Shot MultiBox Detector.

    Attributes:
        num_classes: foreground classes ``C`` (the head predicts ``C + 1`` with background at index 0).
        backbone: module factory returning the list of detection feature maps (one head per map).
        aspect_ratios: per map, the extra aspect ratios (each adds ``r`` and ``1/r``).
        scales: ``len(maps) + 1`` box scales as fractions of the image (torchvision ``scales``), or None to
            space them linearly in ``[min_ratio, max_ratio]``.
        min_ratio, max_ratio: see ``scales``.
        steps: per map, the pixel step of box centres, or None for ``image_size / map_size``.
        pixel_mean, pixel_std: input normalization of [0, 1] images.
        dtype: computation dtype.
    """

    num_classes: int
    backbone: Callable[..., nn.Module] = SSDLiteBackbone
    aspect_ratios: Sequence[Sequence[float]] = ((2,), (2, 3), (2, 3), (2,))
    scales: Sequence[float] | None = None
    min_ratio: float = 0.15
    max_ratio: float = 0.9
    steps: Sequence[int] | None = None
    pixel_mean: Sequence[float] = IMAGENET_MEAN
    pixel_std: Sequence[float] = IMAGENET_STD
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images, train: bool = False):
        """Args: images ``float32 [B, H, W, 3]`` in [0, 1].

        Returns:
            ``{'cls_logits': float32 [B, A, C + 1], 'bbox_regression': float32 [B, A, 4] (BoxCoder deltas),
            'anchors': float32 [A, 4] xyxy px default boxes}``.
        """
        check_rank("images", images, 4, "[B, H, W, C]")
        feats = self.backbone(dtype=self.dtype, name="backbone")(normalize(images, self.pixel_mean,
                                                                           self.pixel_std), train)
        if len(feats) != len(self.aspect_ratios):
            raise ValueError(f"aspect_ratios: expected one entry per feature map ({len(feats)}), "
                             f"got {len(self.aspect_ratios)}")
        b, k1 = images.shape[0], self.num_classes + 1
        cls, reg = [], []
        for i, (f, ars) in enumerate(zip(feats, self.aspect_ratios)):
            a = 2 + 2 * len(ars)
            c = nn.Conv(a * k1, (3, 3), padding=1, kernel_init=_xavier, dtype=self.dtype, name=f"cls_head{i}")(f)
            r = nn.Conv(a * 4, (3, 3), padding=1, kernel_init=_xavier, dtype=self.dtype, name=f"box_head{i}")(f)
            cls.append(c.reshape(b, -1, k1))
            reg.append(r.reshape(b, -1, 4))
        anchors = ssd_default_boxes([tuple(f.shape[1:3]) for f in feats], tuple(images.shape[1:3]),
                                    [list(a) for a in self.aspect_ratios], min_ratio=self.min_ratio,
                                    max_ratio=self.max_ratio, scales=None if self.scales is None else
                                    list(self.scales), steps=None if self.steps is None else list(self.steps))
        return {"cls_logits": jnp.concatenate(cls, 1).astype(jnp.float32),
                "bbox_regression": jnp.concatenate(reg, 1).astype(jnp.float32),
                "anchors": jnp.asarray(anchors, jnp.float32)}


#: torchvision ssd300_vgg16: 300 x 300 input, 8732 default boxes, Caffe-style input normalization.
SSD300 = functools.partial(
    SSD, backbone=SSDVGG16Backbone, aspect_ratios=((2,), (2, 3), (2, 3), (2, 3), (2,), (2,)),
    scales=(0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05), steps=(8, 16, 32, 64, 100, 300),
    pixel_mean=(0.48235, 0.45882, 0.40784), pixel_std=(1 / 255, 1 / 255, 1 / 255))
#: CPU-sized SSD: ResNetTiny stride-4/8 maps + two extra blocks (16, 8, 4, 2 cells at 64 px).
SSDTiny = functools.partial(SSD, backbone=SSDLiteBackbone, aspect_ratios=((2,), (2, 3), (2, 3), (2,)))


def loss_fn(outputs, batch, iou_threshold: float = 0.5, neg_pos_ratio: int = 3,
            box_weights: Sequence[float] = SSD_BOX_WEIGHTS):
    """SSD multibox loss (torchvision semantics).

    Args:
        outputs: ``SSD`` outputs.
        batch: ``{'boxes' float32 [B, G, 4] xyxy px, 'labels' int32 [B, G] 0-based, 'mask' bool [B, G]}``.
        iou_threshold: default boxes with IoU >= this match (besides each GT's forced best box).
        neg_pos_ratio: hard negatives per positive.
        box_weights: BoxCoder weights.

    Returns:
        ``(loss, {'bbox_regression', 'classification', 'num_pos'})``; loss = box + cls, both / max(1, #pos).
    """
    anchors = outputs["anchors"]  # [A, 4]
    coder = BoxCoder(weights=tuple(box_weights))

    def per_image(logits, reg, gt, labels, mask):
        matches = ssd_match(box_iou(gt, anchors), mask, iou_threshold)  # [A]
        pos = matches >= 0
        idx = jnp.maximum(matches, 0)
        # Non-positives may point at padded zero-size GT (-inf deltas): zero them so no NaN reaches the grads.
        target = jnp.where(pos[:, None], coder.encode(anchors, gt[idx]), 0.0)  # [A, 4]
        box = jnp.sum(jnp.where(pos[:, None], smooth_l1(reg, target, beta=1.0), 0.0))
        cls_t = jnp.where(pos, labels[idx] + 1, 0)
        ce = softmax_cross_entropy(logits, cls_t)  # [A]
        neg = hard_negative_mask(jnp.where(pos, 0.0, ce), pos, neg_pos_ratio)
        return box, jnp.sum(jnp.where(pos | neg, ce, 0.0)), jnp.sum(pos)

    box, cls, npos = jax.vmap(per_image)(outputs["cls_logits"], outputs["bbox_regression"], batch["boxes"],
                                         batch["labels"], batch["mask"])
    n = jnp.maximum(jnp.sum(npos), 1).astype(jnp.float32)
    parts = {"bbox_regression": jnp.sum(box) / n, "classification": jnp.sum(cls) / n,
             "num_pos": jnp.sum(npos).astype(jnp.float32)}
    return parts["bbox_regression"] + parts["classification"], parts


def decode(outputs, image_hw, box_weights: Sequence[float] = SSD_BOX_WEIGHTS):
    """Outputs -> ``(boxes [B, A, 4] xyxy px clipped, scores [B, A, C] foreground softmax probabilities)``."""
    boxes = BoxCoder(weights=tuple(box_weights)).decode(outputs["anchors"], outputs["bbox_regression"])
    boxes = clip_boxes_to_image(boxes, tuple(image_hw))
    return boxes, jax.nn.softmax(outputs["cls_logits"], axis=-1)[..., 1:]


def predict_fn(model: SSD, score_threshold: float = 0.01, iou_threshold: float = 0.45, max_detections: int = 200,
               topk_candidates: int = 400) -> Callable:
    """``predict(variables, images) -> Detections`` (torchvision SSD defaults: 0.01, 0.45, 200, top-400)."""
    return make_predict(model, decode, score_threshold=score_threshold, iou_threshold=iou_threshold,
                        max_detections=max_detections, topk_candidates=topk_candidates)
