"""Single-object localization: "what and where" = a classifier plus a box-regression head.

The network maps an image to class logits and one box. The box head predicts ``(cx, cy, w, h)`` through a
sigmoid as fractions of the image size (returned as xyxy pixels; ``predict`` clips them to the image).
The multitask loss is ``cross_entropy + box_weight * box_loss`` with ``box_loss`` either smooth-L1 on the
image-normalized xyxy coordinates or the generalized IoU loss.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision._checks import check_choice, check_rank
from jaxvision.models.backbones.resnet import ResNet18, ResNetTiny
from jaxvision.models.detection.common import IMAGENET_MEAN, IMAGENET_STD, Detections, first_object, normalize
from jaxvision.ops import box_convert, box_iou, clip_boxes_to_image
from jaxvision.ops.iou import generalized_box_iou_loss
from jaxvision.ops.losses import smooth_l1, softmax_cross_entropy


class Localizer(nn.Module):
    """Classifier + box regressor on a backbone's last feature map.

    Attributes:
        num_classes: number of object classes ``C``.
        backbone: module factory returning a list of feature maps (e.g. ``ResNetTiny``); the last one is used.
        hidden: width of the shared fully connected layer.
        pixel_mean, pixel_std: input normalization of [0, 1] images.
        dtype: computation dtype.
    """

    num_classes: int
    backbone: Callable[..., nn.Module] = ResNetTiny
    hidden: int = 256
    pixel_mean: Sequence[float] = IMAGENET_MEAN
    pixel_std: Sequence[float] = IMAGENET_STD
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images, train: bool = False):
        """Args: images ``float32 [B, H, W, 3]`` in [0, 1].

        Returns:
            ``{'logits': float32 [B, C], 'boxes': float32 [B, 4]}``, boxes xyxy pixels (not clipped).
        """
        check_rank("images", images, 4, "[B, H, W, C]")
        h, w = images.shape[1:3]
        x = normalize(images, self.pixel_mean, self.pixel_std)
        x = self.backbone(dtype=self.dtype, name="backbone")(x, train)[-1]
        x = nn.Conv(64, (1, 1), dtype=self.dtype, name="reduce")(x)
        x = nn.relu(x).reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(self.hidden, dtype=self.dtype, name="fc")(x))
        logits = nn.Dense(self.num_classes, dtype=self.dtype, name="cls")(x)
        rel = nn.sigmoid(nn.Dense(4, dtype=self.dtype, name="box")(x))  # cx, cy, w, h in [0, 1]
        boxes = box_convert(rel * jnp.array([w, h, w, h], rel.dtype), "cxcywh", "xyxy")
        return {"logits": logits.astype(jnp.float32), "boxes": boxes.astype(jnp.float32)}


LocalizerTiny = functools.partial(Localizer, backbone=ResNetTiny, hidden=64)
LocalizerResNet18 = functools.partial(Localizer, backbone=ResNet18, hidden=1024)


def loss_fn(outputs, batch, box_loss: str = "smooth_l1", box_weight: float = 1.0):
    """Multitask localization loss, averaged over the batch.

    Args:
        outputs: ``Localizer`` outputs (logits ``[B, C]``, boxes ``[B, 4]`` xyxy px).
        batch: ``{'image' [B, H, W, 3], 'boxes' [B, G, 4] xyxy px, 'labels' [B, G], 'mask' [B, G]}``; the first
            valid object of each image is the target.
        box_loss: ``'smooth_l1'`` (on xyxy divided by the image size, beta = 1/9 like Fast R-CNN's
            ``sigma=3``) or ``'giou'``.
        box_weight: weight of the box term.

    Returns:
        ``(loss, {'cls_loss', 'box_loss'})`` scalars.
    """
    check_choice("box_loss", box_loss, ("smooth_l1", "giou"))
    gt_boxes, gt_labels = first_object(batch, "boxes", "labels")
    cls = jnp.mean(softmax_cross_entropy(outputs["logits"], gt_labels))
    h, w = batch["image"].shape[1:3]
    if box_loss == "smooth_l1":
        scale = jnp.array([w, h, w, h], jnp.float32)
        box = jnp.mean(jnp.sum(smooth_l1(outputs["boxes"] / scale, gt_boxes / scale, beta=1.0 / 9), axis=-1))
    else:
        box = generalized_box_iou_loss(outputs["boxes"], gt_boxes, reduction="mean")
    return cls + box_weight * box, {"cls_loss": cls, "box_loss": box}


def predict_fn(model: Localizer) -> Callable:
    """``predict(variables, images) -> Detections`` with ``D = 1``: the box clipped to the image, the top class
    and its probability."""

    @jax.jit
    def predict(variables, images):
        out = model.apply(variables, images, train=False)
        prob = jax.nn.softmax(out["logits"], axis=-1)
        boxes = clip_boxes_to_image(out["boxes"], tuple(images.shape[1:3]))
        return Detections(boxes=boxes[:, None], scores=jnp.max(prob, -1)[:, None],
                          classes=jnp.argmax(prob, -1).astype(jnp.int32)[:, None],
                          num_valid=jnp.ones(images.shape[:1], jnp.int32))

    return predict


def localization_metrics(det: Detections, batch) -> dict:
    """Classification accuracy and IoU of the single predicted box vs the first GT object, per batch.

    Returns:
        ``{'accuracy': float32 [B], 'iou': float32 [B]}`` per-image values (average them over a dataset).
    """
    gt_boxes, gt_labels = first_object(batch, "boxes", "labels")
    iou = jax.vmap(lambda p, g: box_iou(p[None], g[None])[0, 0])(det.boxes[:, 0], gt_boxes)
    return {"accuracy": (det.classes[:, 0] == gt_labels).astype(jnp.float32), "iou": iou}
