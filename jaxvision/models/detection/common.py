"""The common detector interface: the ``Detections`` type, per-class NMS postprocessing and loss plumbing.

Every detector in this package exposes

- ``predict_fn(model, ...) -> predict(variables, images) -> Detections``: jit-compiled end to end (network,
  decoding, per-class NMS), fixed output shapes ``D = max_detections`` padded with ``classes = -1``;
- ``loss_fn(outputs, batch, ...) -> (loss, metrics)`` on the network's raw outputs, wrapped by
  ``make_loss_fn(model, loss)`` into ``loss(params, batch_stats, batch, rng)`` for ``jax.value_and_grad``
  (two-stage detectors: ``make_loss_fn(model, loss, targets=True, loss_rng=True)``, see there).

Images are NHWC float32 in [0, 1]; boxes xyxy in absolute pixels; classes are the dataset's 0-based foreground
labels (detectors with a background class hide it).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxvision._checks import check_rank
from jaxvision.ops import batched_nms

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(images, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """``(images - mean) / std`` per channel; images ``float32 [B, H, W, 3]`` in [0, 1]."""
    return (images - jnp.asarray(mean, images.dtype)) / jnp.asarray(std, images.dtype)


class Detections(NamedTuple):
    """Fixed-shape batch of detections, sorted by descending score within each image.

    Attributes:
        boxes: ``float32 [B, D, 4]`` xyxy absolute pixels (zeros in padding slots).
        scores: ``float32 [B, D]`` confidence in [0, 1] (0 in padding slots).
        classes: ``int32 [B, D]`` 0-based class index, ``-1`` in padding slots.
        num_valid: ``int32 [B]`` number of real detections; slots ``>= num_valid`` are padding.
    """

    boxes: jax.Array
    scores: jax.Array
    classes: jax.Array
    num_valid: jax.Array


def multiclass_nms(boxes, scores, score_threshold: float = 0.01, iou_threshold: float = 0.45,
                   max_detections: int = 200, topk_candidates: int = 400) -> Detections:
    """torchvision's SSD/RetinaNet postprocess for one image: per-class top-k, score threshold, per-class NMS.

    Args:
        boxes: ``float32 [A, 4]`` class-agnostic or ``[A, C, 4]`` class-specific decoded xyxy pixel boxes.
        scores: ``float32 [A, C]`` per-class scores in [0, 1] (no background column).
        score_threshold: keep candidates with score strictly greater than this.
        iou_threshold: per-class NMS IoU threshold.
        max_detections: ``D``, detections kept per image (fixed output size).
        topk_candidates: candidates per class entering NMS (``min(topk_candidates, A)``).

    Returns:
        ``Detections`` without the batch axis: boxes ``[D, 4]``, scores ``[D]``, classes ``[D]``, num_valid ``[]``.
    """
    num_anchors, num_classes = scores.shape
    k = min(int(topk_candidates), num_anchors)
    top_s, top_i = jax.lax.top_k(scores.T, k)  # [C, k]
    cls = jnp.broadcast_to(jnp.arange(num_classes, dtype=jnp.int32)[:, None], (num_classes, k))
    if boxes.ndim == 2:
        cand = boxes[top_i]  # [C, k, 4]
    else:
        cand = boxes[top_i, cls]  # [C, k, 4]
    cand, top_s, cls = cand.reshape(-1, 4), top_s.reshape(-1), cls.reshape(-1)
    ok = top_s > score_threshold
    # Only candidates above the threshold take part (the CPU's NMS walk stops after them).
    keep, _ = batched_nms(cand, top_s, cls, iou_threshold, max_output_size=max_detections,
                          score_threshold=score_threshold)  # [D] (-1 pad)
    safe = jnp.maximum(keep, 0)
    valid = (keep >= 0) & ok[safe]
    # NMS returns kept indices by descending score, so the valid ones form a prefix.
    return Detections(
        boxes=jnp.where(valid[:, None], cand[safe], 0.0),
        scores=jnp.where(valid, top_s[safe], 0.0),
        classes=jnp.where(valid, cls[safe], -1),
        num_valid=jnp.sum(valid).astype(jnp.int32),
    )


def batched_postprocess(boxes, scores, **kwargs) -> Detections:
    """``multiclass_nms`` over a batch: boxes ``[B, A, 4]`` or ``[B, A, C, 4]``, scores ``[B, A, C]``."""
    check_rank("boxes", boxes, (3, 4), "[B, A, 4] or [B, A, C, 4]")
    check_rank("scores", scores, 3, "[B, A, C]")
    return jax.vmap(lambda b, s: multiclass_nms(b, s, **kwargs))(boxes, scores)


def make_predict(model, decode: Callable, **postprocess) -> Callable:
    """Build ``predict(variables, images, **inputs) -> Detections``, jit-compiled including NMS.

    Args:
        model: a Flax module whose ``apply(variables, images, train=False, **inputs)`` returns raw outputs.
            ``inputs`` are extra per-image arrays a model needs at test time (none for one-stage detectors and
            Faster R-CNN; Fast R-CNN: ``proposals`` ``[B, P, 4]`` and ``proposal_mask`` ``[B, P]``), passed by
            keyword: ``predict(variables, images, proposals=..., proposal_mask=...)``.
        decode: ``decode(outputs, image_shape) -> (boxes [B, A, (C,) 4], scores [B, A, C])``.
        **postprocess: ``multiclass_nms`` options (score_threshold, iou_threshold, max_detections, ...).
    """

    @jax.jit
    def predict(variables, images, **inputs):
        check_rank("images", images, 4, "[B, H, W, C]")
        outputs = model.apply(variables, images, train=False, **inputs)
        boxes, scores = decode(outputs, images.shape[1:3])
        return batched_postprocess(boxes, scores, **postprocess)

    return predict


def first_object(batch, *keys: str) -> tuple:
    """``batch[key]`` of the first valid object (by ``batch['mask']``) of every image, for each key.

    Single-object heads (localization, landmarks) are trained on data padded to ``G`` objects per image.

    Args:
        batch: dict with ``'mask'`` bool ``[B, G]`` and every ``key`` as ``[B, G, ...]``.
        *keys: the entries to take, e.g. ``'boxes'`` (``[B, G, 4]`` -> ``[B, 4]``), ``'labels'``.

    Returns:
        One array ``[B, ...]`` per key (an image without a valid object yields its slot 0).
    """
    idx = jnp.argmax(batch["mask"], axis=1)  # [B]
    take = lambda a: jnp.take_along_axis(a, idx.reshape((-1,) + (1,) * (a.ndim - 1)), axis=1)[:, 0]  # noqa: E731
    return tuple(take(batch[k]) for k in keys)


def make_loss_fn(model, head_loss: Callable, *, targets: bool = False, loss_rng: bool = False) -> Callable:
    """Wrap a loss on raw outputs into ``loss(params, batch_stats, batch, rng) -> (loss, (batch_stats, metrics))``.

    The model runs in training mode (BatchNorm batch statistics, updated ``batch_stats`` returned).
    ``head_loss(outputs, batch) -> (scalar, dict of scalars)``. Differentiate w.r.t. ``params`` with
    ``jax.value_and_grad(loss, has_aux=True)``; the signature is ``jaxvision.train.make_train_step``'s.

    One-stage detectors use the defaults: ``model.apply(variables, batch['image'], train=True,
    rngs={'dropout': rng})`` then ``head_loss(outputs, batch)`` (exactly as before the options existed).

    Two-stage detectors (the detector protocol in docs/ARCHITECTURE.md) set the options; ``rng`` is then split
    into three keys (dropout, sample, loss):

    Args:
        model: the Flax module.
        head_loss: the model's ``loss_fn`` (bind hyperparameters with ``functools.partial``).
        targets: apply the model as ``model.apply(variables, batch['image'], train=True, targets=batch,
            rngs={'dropout': k0, 'sample': k1})``: the forward pass sees the padded ground truth (and any other
            batch key, e.g. Fast R-CNN's ``proposals`` / ``proposal_mask``) and samples RoIs against it with
            ``self.make_rng('sample')`` before running its RoI head on them.
        loss_rng: call ``head_loss(outputs, batch, rng=k2)``: a key for sampling that only selects loss terms
            (Faster R-CNN's 256 RPN anchors per image).
    """
    two_stage = targets or loss_rng

    def loss(params, batch_stats, batch, rng):
        variables = {"params": params}
        if batch_stats:
            variables["batch_stats"] = batch_stats
        if two_stage:
            drop_rng, sample_rng, head_rng = jax.random.split(rng, 3)
            rngs = {"dropout": drop_rng, "sample": sample_rng}
        else:
            rngs, head_rng = {"dropout": rng}, None
        kwargs = {"targets": batch} if targets else {}
        outputs, updates = model.apply(variables, batch["image"], train=True, rngs=rngs, mutable=["batch_stats"],
                                       **kwargs)
        value, metrics = head_loss(outputs, batch, rng=head_rng) if loss_rng else head_loss(outputs, batch)
        return value, (updates.get("batch_stats", batch_stats), metrics)

    return loss
