"""YOLO v1 (Redmon et al. 2016): an S x S grid, B boxes and C class probabilities per cell, one regression.

Each cell predicts ``B`` boxes ``(x, y, sqrt(w), sqrt(h), confidence)`` and one set of ``C`` conditional class
probabilities: ``x, y`` are the box centre's offset inside the cell, ``w, h`` fractions of the image. Unlike the
paper's linear output layer, the box terms go through a sigmoid and the classes through a softmax (the loss is
the paper's sum-squared error on those values); this keeps every prediction in its valid range and trains
stably on small data.

Loss (paper, eq. 3), summed over the grid and averaged over the batch:
``lambda_coord * sum_resp [(x-x^)^2 + (y-y^)^2 + (sqrt w - sqrt w^)^2 + (sqrt h - sqrt h^)^2]
+ sum_resp (C - IoU)^2 + lambda_noobj * sum_not_resp C^2 + sum_obj_cells sum_c (p(c) - p^(c))^2``,
where the cell containing a GT centre is responsible for it (the largest GT when several share a cell) and, in
that cell, the predictor whose box has the highest IoU with the GT is "responsible".

Detection score = confidence x class probability, then per-class NMS from ``jaxvision.ops``.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision._checks import check_choice, check_rank
from jaxvision.models.backbones.resnet import ResNet50, ResNetTiny
from jaxvision.models.backbones.vgg import adaptive_avg_pool
from jaxvision.models.detection.common import IMAGENET_MEAN, IMAGENET_STD, make_predict, normalize
from jaxvision.ops import box_iou
from jaxvision.ops.anchors import yolo_grid


class YOLOv1(nn.Module):
    """YOLO v1 detector.

    Attributes:
        num_classes: ``C``.
        grid_size: ``S``; the backbone's last map is average-pooled to ``S x S`` if it is larger.
        boxes_per_cell: ``B``.
        backbone: module factory returning a list of feature maps; the last one is used.
        head: ``'fc'`` (paper: flatten, FC ``fc_hidden``, dropout, FC ``S*S*(5B+C)``) or ``'conv'`` (1x1 conv
            per cell; fully convolutional, fast on CPU).
        head_width: channels of the two 3x3 conv layers before the output.
        fc_hidden: hidden width of the FC head (4096 in the paper).
        dropout: dropout rate of the FC head (0.5 in the paper).
        pixel_mean, pixel_std: input normalization of [0, 1] images.
        dtype: computation dtype.
    """

    num_classes: int
    grid_size: int = 7
    boxes_per_cell: int = 2
    backbone: Callable[..., nn.Module] = ResNetTiny
    head: str = "conv"
    head_width: int = 128
    fc_hidden: int = 4096
    dropout: float = 0.5
    pixel_mean: Sequence[float] = IMAGENET_MEAN
    pixel_std: Sequence[float] = IMAGENET_STD
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images, train: bool = False):
        """Args: images ``float32 [B, H, W, 3]`` in [0, 1].

        Returns:
            raw predictions ``float32 [B, S, S, 5*B + C]``: per box ``(x, y, sqrt w, sqrt h, conf)`` logits,
            then ``C`` class logits.
        """
        check_rank("images", images, 4, "[B, H, W, C]")
        check_choice("head", self.head, ("fc", "conv"))
        s, out_ch = self.grid_size, 5 * self.boxes_per_cell + self.num_classes
        x = normalize(images, self.pixel_mean, self.pixel_std)
        x = self.backbone(dtype=self.dtype, name="backbone")(x, train)[-1]
        for i in range(2):
            x = nn.Conv(self.head_width, (3, 3), padding=1, use_bias=False, dtype=self.dtype, name=f"conv{i}")(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype, name=f"bn{i}")(x)
            x = nn.leaky_relu(x, 0.1)
        if x.shape[1:3] != (s, s):
            x = adaptive_avg_pool(x, (s, s))
        if self.head == "fc":
            x = x.reshape(x.shape[0], -1)
            x = nn.leaky_relu(nn.Dense(self.fc_hidden, dtype=self.dtype, name="fc")(x), 0.1)
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
            x = nn.Dense(s * s * out_ch, dtype=self.dtype, name="out")(x).reshape(-1, s, s, out_ch)
        else:
            x = nn.Conv(out_ch, (1, 1), dtype=self.dtype, name="out")(x)
        return x.astype(jnp.float32)


YOLOTiny = functools.partial(YOLOv1, backbone=ResNetTiny, head="conv", head_width=64)
#: The paper's 448 x 448, S=7, B=2 setup (VOC: C=20) on a ResNet-50 backbone with the paper's FC head.
YOLO448 = functools.partial(YOLOv1, grid_size=7, boxes_per_cell=2, backbone=ResNet50, head="fc", head_width=1024)


def _split(raw, boxes_per_cell):
    """raw ``[B, S, S, 5B + C]`` -> box terms (sigmoid) ``[B, S, S, nb, 5]``, class probabilities ``[B, S, S, C]``."""
    b, s = raw.shape[0], raw.shape[1]
    box = jax.nn.sigmoid(raw[..., : 5 * boxes_per_cell].reshape(b, s, s, boxes_per_cell, 5))
    return box, jax.nn.softmax(raw[..., 5 * boxes_per_cell:], axis=-1)


def _boxes(box, image_hw):
    """Box terms ``[B, S, S, nb, 5]`` -> xyxy pixel boxes ``[B, S, S, nb, 4]``."""
    h, w = image_hw
    s = box.shape[1]
    grid = yolo_grid(s).astype(box.dtype)  # [S, S, 2] cell (x, y) offsets
    cx = (grid[:, :, None, 0] + box[..., 0]) / s * w
    cy = (grid[:, :, None, 1] + box[..., 1]) / s * h
    bw, bh = box[..., 2] ** 2 * w, box[..., 3] ** 2 * h
    return jnp.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=-1)


def decode(raw, image_hw, boxes_per_cell: int = 2):
    """Raw output -> ``(boxes [B, S*S*nb, 4] xyxy px, scores [B, S*S*nb, C] = conf * p(class))``."""
    box, prob = _split(raw, boxes_per_cell)
    b = raw.shape[0]
    boxes = _boxes(box, image_hw).reshape(b, -1, 4)
    scores = (box[..., 4:5] * prob[:, :, :, None, :]).reshape(b, boxes.shape[1], -1)
    return boxes, scores


def loss_fn(raw, batch, boxes_per_cell: int = 2, lambda_coord: float = 5.0, lambda_noobj: float = 0.5,
            rescore: bool = True):
    """The YOLO v1 loss (see the module docstring).

    Args:
        raw: ``YOLOv1`` output ``[B, S, S, 5*nb + C]``.
        batch: ``{'image' [B, H, W, 3], 'boxes' [B, G, 4] xyxy px, 'labels' int32 [B, G], 'mask' bool [B, G]}``.
        boxes_per_cell: ``nb`` (the model's ``B``).
        lambda_coord: weight of the coordinate terms (5 in the paper).
        lambda_noobj: weight of the no-object confidence term (0.5 in the paper).
        rescore: confidence target = IoU of the responsible box with its GT (paper) instead of 1.

    Returns:
        ``(loss, {'coord', 'obj', 'noobj', 'cls'})`` scalars, each summed over the grid and averaged over images.
    """
    h, w = batch["image"].shape[1:3]
    nb_img, s = raw.shape[0], raw.shape[1]
    box, prob = _split(raw, boxes_per_cell)  # [B, S, S, nb, 5], [B, S, S, C]
    box, prob = box.reshape(nb_img, s * s, boxes_per_cell, 5), prob.reshape(nb_img, s * s, -1)
    gt, mask = batch["boxes"], batch["mask"]
    gcx, gcy = (gt[..., 0] + gt[..., 2]) / 2, (gt[..., 1] + gt[..., 3]) / 2  # [B, G]
    gw, gh = gt[..., 2] - gt[..., 0], gt[..., 3] - gt[..., 1]
    col = jnp.clip(jnp.floor(gcx / w * s), 0, s - 1).astype(jnp.int32)
    row = jnp.clip(jnp.floor(gcy / h * s), 0, s - 1).astype(jnp.int32)
    in_cell = ((row * s + col)[:, None, :] == jnp.arange(s * s)[None, :, None]) & mask[:, None, :]  # [B, S*S, G]
    pick = jnp.argmax(jnp.where(in_cell, (gw * gh)[:, None, :], -1.0), axis=-1)  # [B, S*S]
    obj = jnp.any(in_cell, axis=-1).astype(raw.dtype)  # [B, S*S]
    take = lambda a: jnp.take_along_axis(a, pick, axis=1)  # [B, G] -> [B, S*S]
    cell = jnp.arange(s * s)
    tx, ty = take(gcx) / w * s - cell % s, take(gcy) / h * s - cell // s
    tw, th = jnp.sqrt(jnp.maximum(take(gw), 0) / w), jnp.sqrt(jnp.maximum(take(gh), 0) / h)
    tbox = jnp.take_along_axis(gt, pick[..., None], axis=1)  # [B, S*S, 4]
    pbox = _boxes(box.reshape(nb_img, s, s, boxes_per_cell, 5), (h, w)).reshape(nb_img, s * s, boxes_per_cell, 4)
    iou = jax.lax.stop_gradient(box_iou(pbox, tbox[:, :, None, :])[..., 0])  # [B, S*S, nb]
    resp = jax.nn.one_hot(jnp.argmax(iou, axis=-1), boxes_per_cell) * obj[..., None]  # [B, S*S, nb]
    sq = lambda a, t: (a - t[..., None]) ** 2
    coord = jnp.sum(resp * (sq(box[..., 0], tx) + sq(box[..., 1], ty) + sq(box[..., 2], tw) + sq(box[..., 3], th)))
    conf_t = iou if rescore else jnp.ones_like(iou)
    obj_l = jnp.sum(resp * (box[..., 4] - conf_t) ** 2)
    noobj = jnp.sum((1 - resp) * box[..., 4] ** 2)
    onehot = jax.nn.one_hot(take(batch["labels"]), prob.shape[-1])
    cls = jnp.sum(obj[..., None] * (prob - onehot) ** 2)
    parts = {"coord": coord / nb_img, "obj": obj_l / nb_img, "noobj": noobj / nb_img, "cls": cls / nb_img}
    total = lambda_coord * parts["coord"] + parts["obj"] + lambda_noobj * parts["noobj"] + parts["cls"]
    return total, parts


def predict_fn(model: YOLOv1, score_threshold: float = 0.01, iou_threshold: float = 0.5,
               max_detections: int = 100) -> Callable:
    """``predict(variables, images) -> Detections``: decode, per-class NMS, ``max_detections`` per image."""
    nb = model.boxes_per_cell
    return make_predict(model, lambda raw, hw: decode(raw, hw, nb), score_threshold=score_threshold,
                        iou_threshold=iou_threshold, max_detections=max_detections, topk_candidates=400)
