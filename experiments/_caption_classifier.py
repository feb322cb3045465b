"""The ``shape_captions`` attribute classifier (not an experiment): judges whether an image shows its caption.

A ``SmallCNN`` trained on real ``shape_captions`` images predicts, from the pixels alone, the attributes a caption
states: the layout (one object, a vertical pair, a horizontal pair) and, per object in canonical order (upper /
left first), its colour, shape and size. Its 35 logits are seven softmax heads (``HEADS``); object 1's heads are
trained on pairs only. ``text_agreement`` compares its predictions on images (real or generated) with the caption
attributes they were made from; ``feature_network`` turns it into the ``FeatureNetwork`` of a shapes FID, and
``joint_logits`` gives the colour x shape class distribution of object 0 for a shapes Inception Score.

Training is a plain jitted Adam loop (seconds to a minute on a CPU); ``save`` / ``restore`` keep the variables in
one msgpack file next to the run.
"""
from __future__ import annotations

import functools
import os

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxvision import data
from jaxvision.models.backbones.small_cnn import SmallCNN
from jaxvision.train.state import jit_once

HEADS = (("layout", 3), ("color0", 8), ("shape0", 6), ("size0", 2), ("color1", 8), ("shape1", 6), ("size1", 2))
_SLICES = {}
_start = 0
for _name, _k in HEADS:
    _SLICES[_name] = slice(_start, _start + _k)
    _start += _k
NUM_LOGITS = _start
FILE = "caption_classifier.msgpack"


def make_model(widths=(32, 64), features: int = 128) -> SmallCNN:
    return SmallCNN(num_classes=NUM_LOGITS, widths=tuple(widths), features=features, dropout=0.1)


def targets(batch) -> dict:
    """Head name -> int labels [B] (-1 = not stated) from a ``shape_captions`` batch's annotation arrays."""
    out = {"layout": np.asarray(batch["layout"])}
    for i in (0, 1):
        for attr in ("color", "shape", "size"):
            out[f"{attr}{i}"] = np.asarray(batch[attr])[:, i]
    return out


def _loss(logits, tgt):
    total, acc = 0.0, {}
    for name, _ in HEADS:
        y = tgt[name]
        valid = y >= 0
        ce = optax.softmax_cross_entropy_with_integer_labels(logits[:, _SLICES[name]], jnp.maximum(y, 0))
        total = total + jnp.sum(jnp.where(valid, ce, 0.0)) / jnp.maximum(valid.sum(), 1)
        hit = jnp.argmax(logits[:, _SLICES[name]], -1) == y
        acc[name] = jnp.sum(hit & valid) / jnp.maximum(valid.sum(), 1)
    return total, acc


def train_classifier(num_steps: int, batch_size: int = 64, image_size: int = 32, widths=(32, 64),
                     features: int = 128, learning_rate: float = 2e-3, seed: int = 0, num_examples=None,
                     low_res: int = 0) -> dict:
    """Train on the ``shape_captions`` train split; returns its variables.

    ``low_res`` > 0: half the batches' images are downsampled to ``low_res`` px and back (bilinear), so the
    classifier also reads upsampled Stage-I images.
    """
    model = make_model(widths, features)
    ds = data.load("shape_captions", "train", batch_size, seed=seed, image_size=image_size,
                   num_examples=num_examples)
    variables = jit_once(lambda k: model.init(k, jnp.zeros((1, image_size, image_size, 3)), train=False))(
        jax.random.PRNGKey(seed))
    tx = optax.adam(optax.cosine_decay_schedule(learning_rate, max(num_steps, 1)))
    state = (variables["params"], variables["batch_stats"], tx.init(variables["params"]))

    @jax.jit
    def step(state, images, tgt, key):
        params, bs, opt = state
        k1, k2 = jax.random.split(key)
        if low_res:
            small = jax.image.resize(images, (images.shape[0], low_res, low_res, 3), "linear", antialias=True)
            blur = jax.image.resize(small, images.shape, "linear")
            images = jnp.where(jax.random.bernoulli(k1, 0.5, (images.shape[0], 1, 1, 1)), blur, images)

        def loss_fn(p):
            (_, logits), mut = model.apply({"params": p, "batch_stats": bs}, images, train=True,
                                           mutable=["batch_stats"], rngs={"dropout": k2})
            loss, acc = _loss(logits, tgt)
            return loss, (mut["batch_stats"], acc)

        (loss, (bs, acc)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt = tx.update(grads, opt, params)
        return (optax.apply_updates(params, updates), bs, opt), loss

    key = jax.random.PRNGKey(seed + 1)
    for i in range(num_steps):
        batch = ds.batch(i % len(ds), i // len(ds))
        state, loss = step(state, batch["image"], targets(batch), jax.random.fold_in(key, i))
    if not np.isfinite(float(loss)):
        raise FloatingPointError(f"caption classifier: loss {float(loss)} after {num_steps} steps")
    return {"params": state[0], "batch_stats": state[1]}


def save(path: str, variables, widths, features: int) -> None:
    blob = flax.serialization.msgpack_serialize({"variables": jax.device_get(variables),
                                                 "widths": list(widths), "features": int(features)})
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(blob)


def restore(path: str):
    """``(apply, info)``: ``apply(images float32 [N, S, S, 3] in [0, 1]) -> (features [N, F], logits [N, 35])``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no caption classifier at {os.path.abspath(path)}; train first")
    with open(path, "rb") as f:
        saved = flax.serialization.msgpack_restore(f.read())
    widths = tuple(int(w) for w in (saved["widths"].values() if isinstance(saved["widths"], dict)
                                    else saved["widths"]))
    model = make_model(widths, int(saved["features"]))
    variables = saved["variables"]
    fn = jax.jit(functools.partial(model.apply, train=False))
    return (lambda images: fn(variables, images)), {"widths": widths, "features": int(saved["features"])}


def predict(apply, images, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(features [N, F], logits [N, 35]) of float images [N, S, S, 3] in [0, 1] (resized to the classifier's S
    by the caller)."""
    feats, logits = [], []
    for i in range(0, len(images), batch):
        f, lg = apply(jnp.asarray(images[i:i + batch], jnp.float32))
        feats.append(np.asarray(f))
        logits.append(np.asarray(lg))
    return np.concatenate(feats), np.concatenate(logits)


def text_agreement(logits: np.ndarray, attrs: dict) -> dict:
    """How often the classifier's reading of the images agrees with the captions' attributes.

    Args:
      logits: [N, 35] classifier logits of the images.
      attrs: the captions' annotation, ``{'layout' [N], 'color' [N, 2], 'shape' [N, 2], 'size' [N, 2]}``.

    Returns:
      ``layout``, ``color``, ``shape``, ``size``: agreement rates (colour/shape/size over every object a caption
      names), ``pair_relation``: layout agreement on the pair captions only, ``all``: fraction of images whose
      every stated attribute agrees.
    """
    pred = {name: np.argmax(logits[:, _SLICES[name]], -1) for name, _ in HEADS}
    tgt = targets(attrs)
    ok_all = pred["layout"] == tgt["layout"]
    out = {"layout": float(np.mean(ok_all))}
    pair = tgt["layout"] > 0
    out["pair_relation"] = float(np.mean(ok_all[pair])) if pair.any() else float("nan")
    for attr in ("color", "shape", "size"):
        hits, stated = 0, 0
        for i in (0, 1):
            valid = tgt[f"{attr}{i}"] >= 0
            hit = (pred[f"{attr}{i}"] == tgt[f"{attr}{i}"]) | ~valid
            ok_all &= hit
            hits += int(np.sum(hit & valid))
            stated += int(np.sum(valid))
        out[attr] = hits / max(stated, 1)
    out["all"] = float(np.mean(ok_all))
    return out


def joint_logits(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities [N, 48] of object 0's (colour, shape) class: the Inception Score's class distribution."""
    lc = jax.nn.log_softmax(jnp.asarray(logits[:, _SLICES["color0"]]), -1)
    ls = jax.nn.log_softmax(jnp.asarray(logits[:, _SLICES["shape0"]]), -1)
    return np.asarray((lc[:, :, None] + ls[:, None, :]).reshape(len(logits), -1))


def feature_network(apply, size: int, variables_hash: str | None = None):
    """The classifier as a ``jaxvision.metrics.FeatureNetwork`` (images resized to ``size`` first)."""
    from jaxvision.metrics import FeatureNetwork

    def fn(images):
        if images.shape[1] != size:
            images = jax.image.resize(images, (images.shape[0], size, size, 3), "linear")
        f, logits = apply(images)
        return {"features": f, "logits": logits}

    return FeatureNetwork(fn, f"shape_captions attribute classifier ({size} px)", variables_hash,
                          f"bilinear to {size}x{size}", 3)

