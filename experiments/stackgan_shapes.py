"""stackgan_shapes: StackGAN (Zhang et al. 2017) text-to-image on captioned shapes, judged by a shapes classifier.

Data: ``shape_captions`` ("a small red circle above a large blue square"; 32 px images, tokens of a 24-word
vocabulary). Stage I learns ``image_size`` px images (the data downsampled), Stage II refines them to
``factor`` x ``image_size`` px with Stage I frozen (its parameters are the ``stage1`` entries of Stage II's
generator; ``freeze_stage1`` zeroes their updates). Both stages train with the conditional GAN step
(``jaxvision.train.gan.conditional``): the caption tokens are the condition of G and D, G's loss adds the
conditioning augmentation's KL term (weight ``kl_weight``), and D is matching-aware: real images with the caption
of another image of the batch (the batch rolled by one) count as fake. Checkpoints: ``<workdir>/stage1`` and
``<workdir>/stage2``.

Text consistency: an attribute classifier (``experiments/_caption_classifier.py``: layout, and per object colour,
shape and size), trained on real images in the run (``<workdir>/caption_classifier.msgpack``), reads the test
captions' generated images; the agreement with the captions is reported for Stage I (upsampled), Stage II, the
real test images (the classifier's ceiling), the real images at Stage-I resolution, and the random-caption
baseline (Stage II images against the captions of other test images). A shapes FID (the classifier's penultimate
features, against real training images) and a shapes Inception Score (object 0's colour x shape class, 48
classes) go with every row. Outputs: ``results.md``, ``grid.png`` (caption | Stage I | Stage II), ``metrics.jsonl``.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import _caption_classifier as cc
from experiments._run_options import RunOptions, fit_options, log_images
from jaxvision import data
from jaxvision.data import shape_captions
from jaxvision.models.gan.stackgan import (
    StageIGenerator,
    StageIIGenerator,
    TextImageDiscriminator,
    freeze_stage1,
)
from jaxvision.train import CheckpointManager, MetricsWriter, fit
from jaxvision.train.gan import LOSSES, GANState, latent_noise
from jaxvision.train.gan.conditional import kl_term, make_conditional_gan_step
from jaxvision.train.images import image_grid
from jaxvision.train.state import jit_once

NAME = "stackgan_shapes"


@dataclasses.dataclass
class Config(RunOptions):
    EVALS_DURING_TRAINING = False     # no eval metric in fit: keep_best is refused

    image_size: Literal[8, 16, 32] = 16   # Stage-I px
    factor: Literal[2, 4] = 2             # Stage-II px = factor * image_size
    max_objects: Literal[1, 2] = 2
    num_train_examples: int = 4096
    nz: int = 32
    c_dim: int = 16
    embed_dim: int = 32
    text_hidden: int = 64
    ngf1: int = 32
    ngf2: int = 16
    ndf: int = 32
    num_residual: int = 2
    loss: Literal[LOSSES] = "non_saturating"
    kl_weight: float = 2.0
    matching_aware: bool = True
    batch_size: int = 64
    stage1_steps: int = 1500
    stage2_steps: int = 1000
    learning_rate: float = 2e-4
    b1: float = 0.5
    seed: int = 0
    classifier_steps: int = 800
    classifier_widths: tuple[int, ...] = (16, 32)
    classifier_features: int = 64
    num_eval_samples: int = 512           # test captions (<= 512, the test split)
    log_every: int = 50
    checkpoint_every: int = 500
    keep: int = 1
    progress: bool = True


TINY = dict(image_size=8, factor=2, num_train_examples=64, nz=4, c_dim=4, embed_dim=4, text_hidden=8, ngf1=4,
            ngf2=4, ndf=4, num_residual=1, batch_size=8, stage1_steps=2, stage2_steps=2, classifier_steps=2,
            classifier_widths=(4, 8), classifier_features=8, num_eval_samples=32, log_every=1,
            checkpoint_every=2, progress=False)
EVAL_KEYS = ("num_eval_samples", "progress")
VOCAB = len(shape_captions.VOCABULARY)


def _data_size(cfg: Config) -> int:
    return max(16, cfg.image_size * cfg.factor)


def models(cfg: Config):
    g1 = StageIGenerator(VOCAB, size=cfg.image_size, nz=cfg.nz, c_dim=cfg.c_dim, ngf=cfg.ngf1,
                         embed_dim=cfg.embed_dim, text_hidden=cfg.text_hidden)
    g2 = StageIIGenerator(stage1=g1, factor=cfg.factor, ngf=cfg.ngf2, num_residual=cfg.num_residual)
    d = [TextImageDiscriminator(VOCAB, size=s, ndf=cfg.ndf, embed_dim=cfg.embed_dim, text_hidden=cfg.text_hidden)
         for s in (cfg.image_size, cfg.image_size * cfg.factor)]
    return g1, g2, d[0], d[1]


def _adam(cfg: Config):
    return optax.adam(cfg.learning_rate, b1=cfg.b1)


def make_state(cfg: Config, stage: int, stage1: GANState | None = None) -> GANState:
    """Fresh state of ``stage`` (1 or 2); Stage II takes Stage I's trained generator from ``stage1``."""
    g1, g2, d1, d2 = models(cfg)
    g, d = (g1, d1) if stage == 1 else (g2, d2)
    size = cfg.image_size * (1 if stage == 1 else cfg.factor)
    kg, kd, kr = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(cfg.seed), stage), 3)
    tokens = jnp.zeros((1, shape_captions.MAX_TOKENS), jnp.int32)
    # jitted once (eager init dispatches every op separately)
    gv = jit_once(lambda k: g.init(k, tokens, jnp.zeros((1, cfg.nz + cfg.c_dim)), train=False))(kg)
    dv = jit_once(lambda k: d.init(k, jnp.zeros((1, size, size, 3)), tokens, train=False))(kd)
    g_tx = _adam(cfg)
    if stage == 2:
        gv = {"params": dict(gv["params"]), "batch_stats": dict(gv["batch_stats"])}
        if stage1 is not None:
            gv["params"]["stage1"] = stage1.g_params
            gv["batch_stats"]["stage1"] = stage1.g_batch_stats
        g_tx = freeze_stage1(g_tx, gv["params"])
    return GANState.create(g_apply_fn=g.apply, g_variables=gv, d_apply_fn=d.apply, d_variables=dv, g_tx=g_tx,
                           d_tx=_adam(cfg), rng=kr)


def to_gan_range(images, size: int):
    """[B, S, S, 3] in [0, 1] -> [B, size, size, 3] in [-1, 1] (antialiased bilinear resize)."""
    if images.shape[1] != size:
        images = jax.image.resize(images, (images.shape[0], size, size, 3), "linear", antialias=True)
    return jnp.clip(images, 0.0, 1.0) * 2.0 - 1.0


def make_step(cfg: Config, stage: int):
    """``(state, batch) -> (state, metrics)`` for ``fit`` on ``shape_captions`` batches."""
    size = cfg.image_size * (1 if stage == 1 else cfg.factor)
    gan_step = make_conditional_gan_step(
        cfg.loss, terms=[kl_term(cfg.kl_weight)], condition_key="tokens", target_key="image",
        latent_shape=(cfg.nz + cfg.c_dim,), mismatch_key="wrong_tokens" if cfg.matching_aware else None)

    def step(state, batch):
        tokens = batch["tokens"]
        b = {"image": to_gan_range(batch["image"], size), "tokens": tokens}
        if cfg.matching_aware:
            b["wrong_tokens"] = jnp.roll(tokens, 1, axis=0)  # the caption of another image of the batch
        state, metrics = gan_step(state, b)
        metrics["loss"] = metrics["d_loss"] + metrics["g_loss"]
        return state, metrics

    return step


def _fit(cfg: Config, workdir: str, stage: int, state: GANState) -> GANState:
    ds = data.load("shape_captions", "train", cfg.batch_size, seed=cfg.seed, image_size=_data_size(cfg),
                   max_objects=cfg.max_objects, num_examples=cfg.num_train_examples)
    steps = cfg.stage1_steps if stage == 1 else cfg.stage2_steps
    state, _ = fit(state, make_step(cfg, stage), ds, num_steps=steps, workdir=os.path.join(workdir, f"stage{stage}"),
                   experiment=NAME, config=cfg, checkpoint_every=cfg.checkpoint_every, keep=cfg.keep,
                   log_every=cfg.log_every, progress=cfg.progress, learning_rate=cfg.learning_rate,
                   **fit_options(cfg))
    return state


def _restore(cfg: Config, workdir: str, stage: int, template: GANState) -> GANState:
    with CheckpointManager(os.path.join(workdir, f"stage{stage}"), NAME, cfg) as ckpt:
        if ckpt.latest_step() is None:
            raise FileNotFoundError(f"no Stage-{stage} checkpoint of {NAME} in {os.path.abspath(workdir)}; "
                                    "train first")
        return ckpt.restore(template)


# -- evaluation ------------------------------------------------------------------------------------------------

def _classifier(cfg: Config, workdir: str):
    path = os.path.join(workdir, cc.FILE)
    if not os.path.isfile(path):
        variables = cc.train_classifier(cfg.classifier_steps, cfg.batch_size, _data_size(cfg),
                                        cfg.classifier_widths, cfg.classifier_features, seed=cfg.seed,
                                        num_examples=cfg.num_train_examples, low_res=cfg.image_size)
        cc.save(path, variables, cfg.classifier_widths, cfg.classifier_features)
    return cc.restore(path)[0]


def generate(cfg: Config, state2: GANState, tokens, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Stage-I and Stage-II images in [0, 1] ([N, S1, S1, 3], [N, S2, S2, 3]) for caption tokens [N, L]."""
    z = latent_noise(jax.random.PRNGKey(cfg.seed + 20_000), len(tokens), (cfg.nz + cfg.c_dim,))
    fn = jax.jit(lambda v, t, z: state2.g_apply_fn(v, t, z, train=False))
    v = state2.generator_variables()
    lo, hi = [], []
    for i in range(0, len(tokens), batch):
        img, aux = fn(v, jnp.asarray(tokens[i:i + batch]), z[i:i + batch])
        hi.append(np.asarray(img))
        lo.append(np.asarray(aux["low_res"]))
    to01 = lambda x: np.clip((np.concatenate(x) + 1.0) / 2.0, 0.0, 1.0)  # noqa: E731
    return to01(lo), to01(hi)


def _resize(images, size: int) -> np.ndarray:
    return np.asarray(jax.image.resize(jnp.asarray(images), (len(images), size, size, 3), "linear",
                                       antialias=True))


def _row(apply, net, real_ref, images, attrs) -> dict:
    from jaxvision.metrics import fid, inception_score

    _, logits = cc.predict(apply, images)
    mean, std = inception_score(cc.joint_logits(logits), splits=10 if len(images) >= 100 else 1)
    return {**cc.text_agreement(logits, attrs), "is": float(mean), "is_std": float(std),
            "fid": float(fid(real_ref, images, network=net).value)}


def _grid(path: str, captions, low, high, scale: int = 3, rows: int = 16) -> None:
    from PIL import Image, ImageDraw

    n = min(rows, len(captions))
    size = high.shape[1]
    pair = np.stack([_resize(low[:n], size), high[:n]], 1).reshape(2 * n, size, size, 3)
    pics = image_grid(pair, ncol=2, scale=scale)
    text_w = 330
    canvas = Image.new("RGB", (text_w + pics.shape[1], pics.shape[0] + 16), (255, 255, 255))
    canvas.paste(Image.fromarray(pics), (text_w, 16))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), "caption", fill=(0, 0, 0))
    draw.text((text_w + 4, 2), f"Stage I ({low.shape[1]} px)", fill=(0, 0, 0))
    draw.text((text_w + pics.shape[1] // 2 + 4, 2), f"Stage II ({size} px)", fill=(0, 0, 0))
    tile = size * scale + 2
    for k in range(n):
        draw.text((4, 16 + 2 + k * tile + tile // 2 - 6), captions[k], fill=(0, 0, 0))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    canvas.save(path)


def evaluate_state(cfg: Config, workdir: str, state2: GANState) -> dict:
    """Text consistency, shapes IS / FID for real, Stage-I, Stage-II and random-caption rows; results.md,
    grid.png."""
    size = _data_size(cfg)
    apply = _classifier(cfg, workdir)
    net = cc.feature_network(apply, size)
    n = min(cfg.num_eval_samples, 512)
    test = data.load("shape_captions", "test", n, image_size=size, max_objects=cfg.max_objects,
                     random_caption_order=False).batch(0)
    ref = data.load("shape_captions", "train", n, image_size=size, max_objects=cfg.max_objects,
                    num_examples=cfg.num_train_examples, shuffle=False).batch(0)["image"]
    low, high = generate(cfg, state2, test["tokens"])
    perm = np.random.default_rng(cfg.seed).permutation(n)
    shuffled = {k: v[perm] for k, v in test.items()}
    up = lambda x: _resize(_resize(x, cfg.image_size), size) if cfg.image_size != size else x  # noqa: E731
    rows = {
        "real": _row(apply, net, ref, test["image"], test),
        f"real_{cfg.image_size}px": _row(apply, net, ref, up(test["image"]), test),
        "stage1": _row(apply, net, ref, _resize(low, size), test),
        "stage2": _row(apply, net, ref, high, test),
        "random_caption_stage2": _row(apply, net, ref, high, shuffled),
        "random_caption_real": _row(apply, net, ref, test["image"], shuffled),
    }
    captions = shape_captions.detokenize(test["tokens"])
    _grid(os.path.join(workdir, "grid.png"), captions, low, high)
    lines = ["| images | captions | layout | colour | shape | size | all attributes | shapes IS | shapes FID |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    writer = MetricsWriter(workdir, tensorboard=cfg.tensorboard)
    out = {}
    for name, r in rows.items():
        lines.append(f"| {name.replace('random_caption_', '')} | {'random' if 'random' in name else 'own'} | "
                     f"{r['layout']:.3f} | {r['color']:.3f} | {r['shape']:.3f} | {r['size']:.3f} | {r['all']:.3f} | "
                     f"{r['is']:.2f} ± {r['is_std']:.2f} | {r['fid']:.2f} |")
        writer.write(int(state2.step), f"eval/{name}", r)
        out.update({f"{name}/{k}": v for k, v in r.items()})
    writer.close()
    with open(os.path.join(workdir, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)
    return out


def train(cfg: Config, workdir: str) -> dict:
    """Train the classifier (if absent), Stage I, then Stage II; evaluate; returns the metrics."""
    t0 = time.time()
    _classifier(cfg, workdir)
    t1 = time.time()
    state1 = _fit(cfg, workdir, 1, make_state(cfg, 1))
    t2 = time.time()
    state2 = _fit(cfg, workdir, 2, make_state(cfg, 2, state1))
    t3 = time.time()
    out = evaluate_state(cfg, workdir, state2)
    log_images(cfg, os.path.join(workdir, "stage2"), int(state2.step), {"eval/grid": os.path.join(workdir, "grid.png")})
    timing = {"classifier_seconds": t1 - t0, "stage1_seconds": t2 - t1, "stage2_seconds": t3 - t2,
              "eval_seconds": time.time() - t3, "train_seconds": time.time() - t0}
    return {**out, **timing}


def evaluate(cfg: Config, workdir: str) -> dict:
    """Re-score the latest Stage-II checkpoint (its Stage-I generator included): results.md, grid.png."""
    return evaluate_state(cfg, workdir, _restore(cfg, workdir, 2, make_state(cfg, 2)))
