"""Landmark detection: per-landmark heatmaps read out by a differentiable soft-argmax.

The network predicts one heatmap per landmark on a stride-4 grid (last backbone map upsampled x2 and fused with
the previous stage); a spatial softmax turns each heatmap into a distribution whose expectation over the cell
centres is the landmark's ``(x, y)`` in pixels ("integral regression"). Training minimizes the L1 distance
between predicted and ground-truth landmarks, normalized by the image size, over valid landmarks
(``landmarks_mask``) of the image's first object. Metrics: normalized mean error (NME) and PCK@alpha, both
normalized by the object's box size ``max(w, h)``.
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
from jaxvision.models.detection.common import IMAGENET_MEAN, IMAGENET_STD, first_object, normalize


class LandmarkNet(nn.Module):
    """Heatmap landmark detector.

    Attributes:
        num_landmarks: ``L`` landmarks per object.
        backbone: module factory returning a list of feature maps; the last two are fused.
        width: channels of the fused head.
        pixel_mean, pixel_std: input normalization of [0, 1] images.
        dtype: computation dtype.
    """

    num_landmarks: int
    backbone: Callable[..., nn.Module] = ResNetTiny
    width: int = 64
    pixel_mean: Sequence[float] = IMAGENET_MEAN
    pixel_std: Sequence[float] = IMAGENET_STD
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images, train: bool = False):
        """Args: images ``float32 [B, H, W, 3]`` in [0, 1].

        Returns:
            ``{'landmarks': float32 [B, L, 2] (x, y) pixels, 'heatmaps': float32 [B, h, w, L] logits}``.
        """
        check_rank("images", images, 4, "[B, H, W, C]")
        hgt, wid = images.shape[1:3]
        feats = self.backbone(dtype=self.dtype, name="backbone")(
            normalize(images, self.pixel_mean, self.pixel_std), train)
        hi, lo = feats[-2], feats[-1]
        up = jax.image.resize(lo, (lo.shape[0], hi.shape[1], hi.shape[2], lo.shape[3]), "nearest")
        x = jnp.concatenate([hi, up], axis=-1)
        x = nn.Conv(self.width, (3, 3), padding=1, use_bias=False, dtype=self.dtype, name="fuse")(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype, name="fuse_bn")(x))
        heat = nn.Conv(self.num_landmarks, (1, 1), dtype=self.dtype, name="heatmap")(x).astype(jnp.float32)
        b, h, w, n = heat.shape
        prob = jax.nn.softmax(heat.reshape(b, h * w, n), axis=1)  # [B, h*w, L]
        ys = (jnp.arange(h, dtype=jnp.float32) + 0.5) * (hgt / h)
        xs = (jnp.arange(w, dtype=jnp.float32) + 0.5) * (wid / w)
        grid = jnp.stack(jnp.meshgrid(xs, ys), axis=-1).reshape(h * w, 2)  # [h*w, 2] (x, y)
        return {"landmarks": jnp.einsum("bpl,pc->blc", prob, grid), "heatmaps": heat}


LandmarkNetTiny = functools.partial(LandmarkNet, backbone=ResNetTiny, width=32)


def _first_object(batch):
    """First valid object per image: landmarks ``[B, L, 2]``, landmarks_mask ``[B, L]``, boxes ``[B, 4]``."""
    landmarks, landmarks_mask, mask, boxes = first_object(batch, "landmarks", "landmarks_mask", "mask", "boxes")
    return landmarks, landmarks_mask & mask[:, None], boxes


def loss_fn(outputs, batch):
    """Mean L1 distance (in image-size units) over valid landmarks of each image's first object.

    Args:
        outputs: ``LandmarkNet`` outputs.
        batch: ``{'image' [B, H, W, 3], 'landmarks' float32 [B, G, L, 2] (x, y) px, 'landmarks_mask' bool
            [B, G, L], 'mask' bool [B, G], 'boxes' [B, G, 4]}``.

    Returns:
        ``(loss, {'l1': loss})``.
    """
    gt, valid, _ = _first_object(batch)
    h, w = batch["image"].shape[1:3]
    scale = jnp.array([w, h], jnp.float32)
    err = jnp.sum(jnp.abs(outputs["landmarks"] - gt) / scale, axis=-1)  # [B, L]
    loss = jnp.sum(jnp.where(valid, err, 0.0)) / jnp.maximum(jnp.sum(valid), 1)
    return loss, {"l1": loss}


def predict_fn(model: LandmarkNet) -> Callable:
    """``predict(variables, images) -> landmarks float32 [B, L, 2]`` (x, y) pixels, jit-compiled."""
    return jax.jit(lambda variables, images: model.apply(variables, images, train=False)["landmarks"])


def landmark_metrics(pred, batch, alpha: float = 0.1) -> dict:
    """Per-landmark normalized errors and PCK for a batch.

    Args:
        pred: ``float32 [B, L, 2]`` predicted landmarks (x, y) px.
        batch: as in ``loss_fn``.
        alpha: PCK threshold as a fraction of the object size ``max(box w, box h)``.

    Returns:
        ``{'error': float32 [B, L] distance / size, 'correct': float32 [B, L] (error <= alpha), 'valid': bool
        [B, L]}``; NME = sum(error * valid) / sum(valid), PCK = sum(correct * valid) / sum(valid).
    """
    check_rank("pred", pred, 3, "[B, L, 2]")
    gt, valid, box = _first_object(batch)
    size = jnp.maximum(jnp.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]), 1e-6)  # [B]
    err = jnp.linalg.norm(pred - gt, axis=-1) / size[:, None]
    return {"error": err, "correct": (err <= alpha).astype(jnp.float32), "valid": valid}
