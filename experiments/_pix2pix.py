"""Shared Pix2Pix wiring (not an experiment), used by pix2pix_shapes and pix2pix_edges2photos.

``train`` runs two phases on the same paired data: Pix2Pix (U-Net G + PatchGAN D, loss = GAN + lambda_L1 L1,
``make_conditional_gan_step``) in ``workdir``, then, with ``baseline``, the paper's L1-only ablation (the same U-Net,
``generator_only=True``, same steps and optimizer) in ``workdir/l1_baseline``. Both use the paper's schedule
(``lr_schedule``): Adam at ``learning_rate`` for the first ``1 - lr_decay`` of the steps, then linearly to 0.
``evaluate`` measures both on the held-out pairs (``eval_split``): L1, PSNR, SSIM and the Sobel sharpness vs the
target's, and writes ``triplets.png`` (rows of input | L1 baseline | Pix2Pix | target).

Inference (``inference``): ``'batch_stats'`` (default) is the paper's test protocol (Isola et al. 2017, sec. 3.3):
G runs exactly as in training, BatchNorm with the statistics of the test batch (batches of ``batch_size``) and
dropout on (a fixed key from ``seed``, so an evaluation is repeatable). ``'running_stats'`` is the usual protocol
(BatchNorm running averages, no dropout); the running averages lag a G that D keeps moving, and a GAN-trained G
can score far worse with them than with batch statistics.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import ExperimentError, _cgan
from experiments._run_options import RunOptions, log_images
from jaxvision import data
from jaxvision.models.gan.pix2pix import PatchGANDiscriminator, UNetGenerator, pix2pix_optimizer
from jaxvision.train import MetricsWriter, parallel
from jaxvision.train.gan import LOSSES, GANState, l1_term, make_conditional_gan_step
from jaxvision.train.images import save_image_grid

BASELINE_DIR = "l1_baseline"


@dataclasses.dataclass
class Pix2PixConfig(RunOptions):
    """Fields shared by the Pix2Pix experiments (defaults: a CPU-sized run; ``PRESETS['paper']``: the paper's)."""

    EVALS_DURING_TRAINING = False     # no eval metric in fit: keep_best is refused

    data: Literal["pairs", "paired_folder"] = "pairs"
    kind: Literal["shapes", "edges"] = "shapes"   # embedded pairs
    data_root: str = ""                            # paired_folder: the unpacked pix2pix data set
    direction: Literal["AtoB", "BtoA"] = "AtoB"    # paired_folder
    eval_split: str = "test"
    image_size: int = 64
    condition_channels: int = 3
    ngf: int = 16
    ndf: int = 16
    n_layers: int = 2                # PatchGAN stride-2 layers: 1 -> 16 px, 2 -> 34 px, 3 -> 70 px patches
    dropout: float = 0.5
    loss: Literal[LOSSES] = "non_saturating"
    l1_weight: float = 100.0
    learning_rate: float = 2e-4
    lr_decay: float = 0.5            # fraction of num_steps over which the rate decays linearly to 0 (the paper: 1/2)
    b1: float = 0.5
    b2: float = 0.999
    batch_size: int = 8
    num_steps: int = 3000
    baseline: bool = True            # also train the L1-only U-Net (the paper's ablation) for the comparison
    seed: int = 0
    data_parallel: bool = False
    num_eval: int = 128
    inference: Literal["batch_stats", "running_stats"] = "batch_stats"   # see the module docstring
    log_every: int = 50
    checkpoint_every: int = 500
    keep: int = 2
    progress: bool = True

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.lr_decay <= 1.0:
            raise ExperimentError(f"--set lr_decay={self.lr_decay}: expected a fraction of num_steps in [0, 1]")


EVAL_KEYS = ("eval_split", "num_eval", "inference", "progress")
TINY = dict(image_size=32, ngf=4, ndf=4, n_layers=1, batch_size=4, num_steps=2, num_eval=4, log_every=1,
            checkpoint_every=2, progress=False)
PAPER = dict(data="paired_folder", image_size=256, ngf=64, ndf=64, n_layers=3, batch_size=1, num_steps=80_000,
             condition_channels=3, log_every=500, checkpoint_every=5000, num_eval=500, eval_split="val")


def load_data(cfg, split: str, batch_size: int, num_devices=None):
    if cfg.data == "paired_folder":
        return data.load("paired_folder", split, batch_size, seed=cfg.seed, num_devices=num_devices,
                         root=cfg.data_root, direction=cfg.direction, image_size=cfg.image_size)
    return data.load("pairs", split, batch_size, seed=cfg.seed, num_devices=num_devices, kind=cfg.kind,
                     image_size=cfg.image_size, **({} if split == "train" else {"num_examples": cfg.num_eval}))


def models(cfg):
    axis = parallel.AXIS if cfg.data_parallel else None
    g = UNetGenerator(size=cfg.image_size, ngf=cfg.ngf, dropout=cfg.dropout, bn_axis_name=axis)
    d = PatchGANDiscriminator(n_layers=cfg.n_layers, ndf=cfg.ndf, bn_axis_name=axis)
    return g, d


def lr_schedule(cfg):
    """The paper's schedule (an optax schedule, update count -> rate): ``learning_rate`` for the first
    ``num_steps - round(lr_decay * num_steps)`` updates, then linearly down to 0 at ``num_steps``."""
    decay = int(round(cfg.lr_decay * cfg.num_steps))
    if decay == 0:
        return optax.constant_schedule(cfg.learning_rate)
    return optax.join_schedules([optax.constant_schedule(cfg.learning_rate),
                                 optax.linear_schedule(cfg.learning_rate, 0.0, decay)], [cfg.num_steps - decay])


def make_state(cfg) -> GANState:
    """Fresh GANState: U-Net G, PatchGAN D, Adam(``lr_schedule``, 0.5, 0.999) each."""
    g, d = models(cfg)
    kg, kd, kr = jax.random.split(jax.random.PRNGKey(cfg.seed), 3)
    s = cfg.image_size
    cond, img = jnp.zeros((1, s, s, cfg.condition_channels)), jnp.zeros((1, s, s, 3))
    tx = lambda: pix2pix_optimizer(lr_schedule(cfg), cfg.b1, cfg.b2)  # noqa: E731
    return GANState.create(g_apply_fn=g.apply, g_variables=g.init(kg, cond, train=False), d_apply_fn=d.apply,
                           d_variables=d.init(kd, img, cond, train=False), g_tx=tx(), d_tx=tx(), rng=kr)


def make_step(cfg, generator_only: bool = False):
    axis = parallel.AXIS if cfg.data_parallel else None
    return _cgan.fit_step(make_conditional_gan_step(cfg.loss, terms=[l1_term(cfg.l1_weight)], axis_name=axis,
                                                    generator_only=generator_only))


def check_data(cfg, ds) -> None:
    b = ds.batch(0, 0)
    c, x = np.asarray(b["condition"]), np.asarray(b["image"])
    want = (cfg.image_size, cfg.image_size)
    if c.shape[-3:-1] != want or c.shape[-1] != cfg.condition_channels:
        raise ValueError(f"batch['condition']: expected [B, {want[0]}, {want[1]}, {cfg.condition_channels}] "
                         f"(condition_channels), got {c.shape}")
    if x.shape[-3:] != want + (3,):
        raise ValueError(f"batch['image']: expected [B, {want[0]}, {want[1]}, 3], got {x.shape}")


def train(cfg, workdir: str, name: str) -> dict:
    ndev = parallel.local_device_count() if cfg.data_parallel else None
    ds = load_data(cfg, "train", cfg.batch_size, ndev)
    check_data(cfg, ds)
    _, summary = _cgan.run_phase(make_state(cfg), make_step(cfg), ds, cfg, workdir, name, cfg.num_steps,
                                 learning_rate=lr_schedule(cfg))
    if cfg.baseline:
        _cgan.run_phase(make_state(cfg), make_step(cfg, generator_only=True), ds, cfg,
                        os.path.join(workdir, BASELINE_DIR), f"{name}/{BASELINE_DIR}", cfg.num_steps,
                        learning_rate=lr_schedule(cfg))
    result = {**{f"train_{k}": v for k, v in summary.items() if isinstance(v, float)}, **evaluate(cfg, workdir, name)}
    log_images(cfg, workdir, cfg.num_steps, {"eval/triplets": os.path.join(workdir, "triplets.png")})
    return result


def predict(cfg, state: GANState, inputs01: np.ndarray) -> np.ndarray:
    """G's outputs [N, S, S, 3] in [0, 1] for conditions [N, S, S, Cc] in [0, 1], by ``cfg.inference`` (see the
    module docstring); 'batch_stats' runs batches of ``cfg.batch_size`` (the last one may be smaller)."""
    if cfg.inference == "running_stats":
        return _cgan.predict(state, inputs01)
    fn = jax.jit(lambda v, x, key: state.g_apply_fn(v, x, train=True, mutable=["batch_stats"],
                                                     rngs={"dropout": key})[0])
    v, key, b = state.generator_variables(), jax.random.PRNGKey(cfg.seed), cfg.batch_size
    out = [_cgan.unit_range(fn(v, _cgan.gan_range(inputs01[i:i + b]), jax.random.fold_in(key, i)))
           for i in range(0, len(inputs01), b)]
    return np.concatenate(out)


def evaluate(cfg, workdir: str, name: str) -> dict:
    """Held-out metrics of Pix2Pix (``pix2pix_*``) and, if trained, the L1-only baseline (``l1_*``)."""
    ds = load_data(cfg, cfg.eval_split, cfg.num_eval)
    b = ds.batch(0)
    cond, target = np.asarray(b["condition"])[:cfg.num_eval], np.asarray(b["image"])[:cfg.num_eval]
    state = _cgan.restore_phase(make_state(cfg), workdir, name, cfg)
    outputs = {"pix2pix": predict(cfg, state, cond)}
    base_dir = os.path.join(workdir, BASELINE_DIR)
    if os.path.isdir(base_dir):
        outputs["l1"] = predict(cfg, _cgan.restore_phase(make_state(cfg), base_dir, f"{name}/{BASELINE_DIR}", cfg),
                                cond)
    out = {"num_eval": len(cond)}
    for key, y in outputs.items():
        out.update({f"{key}_{k}": v for k, v in _cgan.image_metrics(y, target).items()})
    n = min(8, len(cond))
    cols = [_cgan.as_rgb(cond[:n])] + [outputs[k][:n] for k in ("l1", "pix2pix") if k in outputs] + [target[:n]]
    grid = np.stack(cols, 1).reshape((-1,) + target.shape[1:])
    save_image_grid(os.path.join(workdir, "triplets.png"), grid, ncol=len(cols),
                    scale=max(1, 128 // cfg.image_size))
    writer = MetricsWriter(workdir, tensorboard=cfg.tensorboard)
    writer.write(int(state.step), "eval", out)
    writer.close()
    return out
