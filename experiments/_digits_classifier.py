"""Shared digits classifier (not an experiment: leading underscore): the ``digits_classifier`` experiment trains it,
``dcgan_digits`` uses it as the feature network of its digits FID/IS (training it first if needed).

SmallCNN on scikit-learn's handwritten digits. Trains on the 1,437 training digits (resized to 16 px, random +-2 px
shifts), evaluates top-1 accuracy on the
fixed 360-image test split, writes ``metrics.jsonl``, checkpoints and ``predictions.png`` (test digits captioned with
their predicted class, red when wrong). Its checkpoint is the feature network for digits FID/IS:
``load_classifier(workdir)`` returns the trained network as ``apply(images) -> (features, logits)``.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments._run_options import RunOptions, fit_options, log_images
from jaxvision import data
from jaxvision.data import digits
from jaxvision.metrics.multihost import map_over_devices
from jaxvision.models.backbones.small_cnn import SmallCNN
from jaxvision.train import CheckpointManager, TrainState, fit, make_train_step, parallel
from jaxvision.train.checkpoint import CHECKPOINT_DIR
from jaxvision.train.images import save_image_grid
from jaxvision.train.state import jit_once

NAME = "digits_classifier"


@dataclasses.dataclass
class Config(RunOptions):
    size: Literal[8, 16, 32] = 16     # digits resized to size x size
    batch_size: int = 64
    num_steps: int = 500
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    shift: int = 2                    # random translation augmentation, px
    widths: tuple[int, ...] = (32, 64)
    features: int = 128
    dropout: float = 0.25
    seed: int = 0
    data_parallel: bool = False       # pmap over all local devices (batch_size must divide evenly)
    log_every: int = 50
    eval_every: int = 250
    checkpoint_every: int = 250
    keep: int = 3
    progress: bool = True


TINY = dict(size=8, num_steps=6, batch_size=32, widths=(4, 8), features=16, warmup_steps=2, log_every=2, eval_every=3,
            checkpoint_every=3, progress=False)


def lr_schedule(cfg: Config):
    """Linear warmup from 0 over ``warmup_steps``, cosine decay to 0 at ``num_steps`` (count -> lr)."""
    return optax.warmup_cosine_decay_schedule(0.0, cfg.learning_rate, cfg.warmup_steps,
                                              max(cfg.num_steps, cfg.warmup_steps + 1))


def make_model(cfg: Config) -> SmallCNN:
    return SmallCNN(num_classes=10, widths=tuple(cfg.widths), features=cfg.features, dropout=cfg.dropout,
                    bn_axis_name=parallel.AXIS if cfg.data_parallel else None)


def _shift(images: jax.Array, rng: jax.Array, max_shift: int) -> jax.Array:
    """Translate each image by a random integer offset in [-max_shift, max_shift] (zero fill). [B,H,W,C]."""
    if max_shift == 0:
        return images
    b, h, w, _ = images.shape
    padded = jnp.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)))
    offsets = jax.random.randint(rng, (b, 2), 0, 2 * max_shift + 1)
    crop = lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, img.shape[-1]))  # noqa: E731
    return jax.vmap(crop)(padded, offsets)


def make_state(cfg: Config) -> TrainState:
    model = make_model(cfg)
    init_rng, state_rng = jax.random.split(jax.random.PRNGKey(cfg.seed))
    # jitted (eager init compiles every op separately), unoptimized (PRNG kernels compile slowly on CPU)
    variables = jit_once(lambda r: model.init(r, jnp.zeros((1, cfg.size, cfg.size, 1)), train=False))(init_rng)
    tx = optax.adamw(lr_schedule(cfg), weight_decay=cfg.weight_decay)
    create = lambda v, r: TrainState.create(apply_fn=model.apply, params=v["params"], tx=tx, rng=r,  # noqa: E731
                                            batch_stats=v["batch_stats"])
    return jit_once(create)(variables, state_rng)


def make_loss_fn(cfg: Config) -> Callable:
    model = make_model(cfg)

    def loss_fn(params, batch_stats, batch, rng):
        aug_rng, drop_rng = jax.random.split(rng)
        x = _shift(batch["image"], aug_rng, cfg.shift)
        (_, logits), updates = model.apply({"params": params, "batch_stats": batch_stats}, x, train=True,
                                           mutable=["batch_stats"], rngs={"dropout": drop_rng})
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
        acc = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
        return loss, (updates["batch_stats"], {"accuracy": acc})

    return loss_fn


@functools.partial(jax.jit, static_argnums=0)
def _apply(model: SmallCNN, variables: dict, images: jax.Array):
    return model.apply(variables, images, train=False)


@functools.lru_cache(maxsize=4)
def _device_logits(model: SmallCNN):
    """Logits of ``model`` (eval mode: images independent) with the images split over every local device."""
    return map_over_devices(lambda variables, images: _apply(model, variables, images)[1])


def predict(cfg: Config, state: TrainState, images: np.ndarray) -> np.ndarray:
    """Class predictions int32 [N] for float32 images [N, S, S, 1] in [0, 1] (over all local devices)."""
    logits = _device_logits(make_model(cfg))({"params": state.params, "batch_stats": state.batch_stats}, images)
    return np.argmax(logits, -1).astype(np.int32)


def _evaluate_state(cfg: Config, state: TrainState, workdir: str | None = None) -> dict:
    images, labels = digits.arrays("test", cfg.size)
    pred = predict(cfg, state, np.asarray(images))
    metrics = {"test_accuracy": float(np.mean(pred == labels)), "test_errors": int(np.sum(pred != labels))}
    if workdir is not None:
        order = np.concatenate([np.flatnonzero(pred != labels), np.flatnonzero(pred == labels)])[:64]
        colors = [(255, 40, 40) if pred[k] != labels[k] else (40, 220, 40) for k in order]
        save_image_grid(os.path.join(workdir, "predictions.png"), images[order],
                        [str(pred[k]) for k in order], colors, ncol=8, scale=max(1, 48 // cfg.size))
    return metrics


def train(cfg: Config, workdir: str) -> dict:
    """Train, evaluate on the test split, write predictions.png; returns the final metrics."""
    ndev = parallel.local_device_count() if cfg.data_parallel else None
    ds = data.load("digits", "train", cfg.batch_size, seed=cfg.seed, num_devices=ndev, size=cfg.size)
    step = make_train_step(make_loss_fn(cfg), axis_name=parallel.AXIS if cfg.data_parallel else None)
    state, summary = fit(make_state(cfg), step, ds, num_steps=cfg.num_steps, workdir=workdir, experiment=NAME,
                         config=cfg, eval_fn=lambda s: _evaluate_state(cfg, s), eval_every=cfg.eval_every,
                         checkpoint_every=cfg.checkpoint_every, keep=cfg.keep, log_every=cfg.log_every,
                         data_parallel=cfg.data_parallel, progress=cfg.progress, learning_rate=lr_schedule(cfg),
                         **fit_options(cfg))
    result = {**summary, **_evaluate_state(cfg, state, workdir)}
    log_images(cfg, workdir, int(state.step), {"eval/predictions": os.path.join(workdir, "predictions.png")})
    return result


def _restore(cfg: Config, workdir: str) -> TrainState:
    if not os.path.isdir(os.path.join(workdir, CHECKPOINT_DIR)):
        raise FileNotFoundError(f"no checkpoint of {NAME} in {os.path.abspath(workdir)}; run "
                                f"`jaxvision train {NAME} --workdir {workdir}` first")
    ckpt = CheckpointManager(workdir, NAME, cfg)
    try:
        return ckpt.restore(make_state(cfg))
    finally:
        ckpt.close()


def evaluate(cfg: Config, workdir: str) -> dict:
    """Test accuracy of the latest checkpoint in ``workdir``; rewrites predictions.png."""
    return _evaluate_state(cfg, _restore(cfg, workdir), workdir)


def load_classifier(workdir: str) -> tuple[Callable, Config]:
    """The trained classifier of ``workdir`` as a feature network for digits FID/IS.

    The model configuration is read from the checkpoint itself.

    Returns:
      ``(apply, cfg)``: ``apply(images float32 [B, S, S, 1] in [0, 1]) -> (features float32 [B, cfg.features],
      logits float32 [B, 10])`` (jitted, inference mode; GAN images in [-1, 1] must be mapped with ``(x + 1) / 2``
      first), and the run's Config (``cfg.size`` is S).
    """
    if not os.path.isdir(os.path.join(workdir, CHECKPOINT_DIR)):
        raise FileNotFoundError(f"no checkpoint of {NAME} in {os.path.abspath(workdir)}")
    with CheckpointManager(workdir, NAME) as ckpt:
        meta = ckpt.metadata()
    saved = {k: v for k, v in meta["config"].items() if k in {f.name for f in dataclasses.fields(Config)}}
    saved["widths"] = tuple(saved.get("widths", Config.widths))
    cfg = Config(**{**saved, "data_parallel": False})
    state = _restore(cfg, workdir)
    model = make_model(cfg)
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    return (lambda images: _apply(model, variables, images)), cfg
