"""Shared DCGAN wiring (not an experiment: leading underscore), used by dcgan_digits, dcgan_mnist, dcgan_cifar10
and dcgan_celeba.

``DCGANConfig`` holds the fields every DCGAN experiment has; ``make_state`` / ``make_step`` build the GANState and
the ``fit`` step (images in [0, 1] from ``jaxvision.data`` -> GAN range [-1, 1]); ``run`` trains with
``jaxvision.train.fit`` (checkpoints holding both optimizers, the EMA and the RNG, exact resume, metrics.jsonl,
non-finite stop) and writes a sample grid every ``sample_every`` steps and ``samples_final.png``; ``restore``
reads the latest checkpoint. ``TFDSConfig`` / ``train_tfds`` / ``evaluate_tfds`` are the TFDS data sets' run and
FID evaluation (pytorch-fid Inception vs the test split).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from experiments._run_options import RunOptions, fit_options, log_images
from jaxvision import data
from jaxvision.models.gan.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_optimizer
from jaxvision.train import CheckpointManager, MetricsWriter, fit, parallel
from jaxvision.train.gan import LOSSES, GANState, latent_noise, make_gan_step, validate_real
from jaxvision.train.images import save_image_grid

ImageSize = Literal[16, 32, 64]
TFDSDataset = Literal["mnist", "cifar10", "celeb_a"]   # TFDS image data sets known to jaxvision.data


@dataclasses.dataclass
class DCGANConfig(RunOptions):
    """Fields shared by every DCGAN experiment (digits and the TFDS configurations)."""

    EVALS_DURING_TRAINING = False     # no eval metric in fit: keep_best is refused

    size: ImageSize = 32              # px
    channels: int = 1
    nz: int = 64
    ngf: int = 32
    ndf: int = 32
    upsampling: Literal["transposed", "nearest", "bed_of_nails"] = "transposed"
    loss: Literal[LOSSES] = "non_saturating"
    n_critic: int = 1
    batch_size: int = 64
    num_steps: int = 1500
    g_learning_rate: float = 2e-4
    d_learning_rate: float = 2e-4
    b1: float = 0.5
    ema_decay: float | None = 0.99
    seed: int = 0
    data_parallel: bool = False       # pmap over all local devices (batch_size divisible by their number)
    sample_every: int = 250
    log_every: int = 50
    checkpoint_every: int = 500
    keep: int = 2
    num_eval_samples: int = 2000
    progress: bool = True


def models(cfg) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    axis = parallel.AXIS if cfg.data_parallel else None
    g = DCGANGenerator(size=cfg.size, nz=cfg.nz, ngf=cfg.ngf, channels=cfg.channels, upsampling=cfg.upsampling,
                       bn_axis_name=axis)
    d = DCGANDiscriminator(size=cfg.size, ndf=cfg.ndf, channels=cfg.channels, bn_axis_name=axis)
    return g, d


def make_state(cfg) -> GANState:
    """Fresh GANState: DCGAN G and D, Adam(lr, b1) each, optional EMA of G."""
    g, d = models(cfg)
    kg, kd, kr = jax.random.split(jax.random.PRNGKey(cfg.seed), 3)
    return GANState.create(
        g_apply_fn=g.apply, g_variables=g.init(kg, jnp.zeros((1, cfg.nz)), train=False),
        d_apply_fn=d.apply, d_variables=d.init(kd, jnp.zeros((1, cfg.size, cfg.size, cfg.channels)), train=False),
        g_tx=dcgan_optimizer(cfg.g_learning_rate, cfg.b1), d_tx=dcgan_optimizer(cfg.d_learning_rate, cfg.b1),
        rng=kr, ema_decay=cfg.ema_decay,
    )


def to_gan_range(images, size: int):
    """[B, H, W, C] float in [0, 1] -> [B, size, size, C] in [-1, 1] (centre square crop + bilinear resize)."""
    b, h, w, c = images.shape
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    x = images[:, top:top + s, left:left + s]
    if s != size:
        x = jax.image.resize(x, (b, size, size, c), "linear", antialias=True)
    return jnp.clip(x, 0.0, 1.0) * 2.0 - 1.0


def make_step(cfg):
    """``(state, batch) -> (state, metrics)`` for ``fit``: batch['image'] in [0, 1] -> GAN step on [-1, 1]."""
    gan_step = make_gan_step(cfg.loss, latent_shape=(cfg.nz,), n_critic=cfg.n_critic,
                             axis_name=parallel.AXIS if cfg.data_parallel else None)

    def step(state, batch):
        state, metrics = gan_step(state, to_gan_range(batch["image"], cfg.size))
        metrics["loss"] = metrics["d_loss"] + metrics["g_loss"]  # NaN/inf in either stops the loop
        return state, metrics

    return step


def check_data(cfg, ds) -> None:
    """Validate the first batch before training: ValueError on a wrong shape or range."""
    batch = ds.batch(0, 0)
    img = np.asarray(batch["image"])
    img = img.reshape((-1,) + img.shape[-3:])
    if img.shape[-1] != cfg.channels:
        raise ValueError(f"batch['image']: expected {cfg.channels} channel(s), got shape {img.shape}")
    if img.size and (img.min() < 0.0 or img.max() > 1.0):
        raise ValueError(f"batch['image']: expected values in [0, 1], got [{img.min():.4g}, {img.max():.4g}]")
    validate_real(to_gan_range(jnp.asarray(img[:2]), cfg.size), shape=(cfg.size, cfg.size, cfg.channels),
                  name="real images")


def fixed_noise(cfg, n: int = 64):
    return latent_noise(jax.random.PRNGKey(cfg.seed + 10_000), n, (cfg.nz,))


def generate(state: GANState, z, ema: bool = False, batch: int = 500) -> np.ndarray:
    """Eval-mode samples float32 [N, S, S, C] in [-1, 1] for noise z [N, nz]."""
    fn = jax.jit(lambda v, z: state.g_apply_fn(v, z, train=False))
    v = state.generator_variables(ema)
    return np.concatenate([np.asarray(fn(v, z[i:i + batch])) for i in range(0, len(z), batch)])


def sample_hook(cfg, workdir: str):
    z = fixed_noise(cfg)
    scale = max(1, 64 // cfg.size)

    def hook(step, state):
        if step % cfg.sample_every == 0:
            s = parallel.unreplicate(state) if cfg.data_parallel else state
            path = os.path.join(workdir, "samples", f"step_{step:06d}.png")
            save_image_grid(path, generate(s, z, ema=cfg.ema_decay is not None), ncol=8, scale=scale,
                            value_range=(-1, 1))
            return {"samples": path}  # fit adds it to TensorBoard (tensorboard=True)
        return None

    return hook


def save_final_samples(cfg, workdir: str, state: GANState) -> None:
    """``samples_final.png``: 64 samples of the fixed noise (EMA weights if kept)."""
    save_image_grid(os.path.join(workdir, "samples_final.png"), generate(state, fixed_noise(cfg),
                    ema=cfg.ema_decay is not None), ncol=8, scale=max(1, 64 // cfg.size), value_range=(-1, 1))


def run(cfg, workdir: str, name: str, ds, eval_fn=None) -> tuple[GANState, dict]:
    """Train a DCGAN on ``ds`` with ``fit``; writes samples every ``sample_every`` steps and samples_final.png."""
    check_data(cfg, ds)
    state, summary = fit(make_state(cfg), make_step(cfg), ds, num_steps=cfg.num_steps, workdir=workdir,
                         experiment=name, config=cfg, checkpoint_every=cfg.checkpoint_every, keep=cfg.keep,
                         log_every=cfg.log_every, data_parallel=cfg.data_parallel, progress=cfg.progress,
                         hooks=[sample_hook(cfg, workdir)], **fit_options(cfg),
                         learning_rate={"g_learning_rate": cfg.g_learning_rate, "d_learning_rate": cfg.d_learning_rate})
    save_final_samples(cfg, workdir, state)
    log_images(cfg, workdir, int(state.step), {"samples_final": os.path.join(workdir, "samples_final.png")})
    return state, summary


def restore(cfg, workdir: str, name: str) -> GANState:
    with CheckpointManager(workdir, name, cfg) as ckpt:
        if ckpt.latest_step() is None:
            raise FileNotFoundError(f"no checkpoint of {name} in {os.path.abspath(workdir)}; train first")
        return ckpt.restore(make_state(cfg))


# -- the TFDS data sets (dcgan_mnist, dcgan_cifar10, dcgan_celeba) ------------------------------------------------

@dataclasses.dataclass
class TFDSConfig(DCGANConfig):
    """The paper's accelerator setting shared by dcgan_mnist / dcgan_cifar10 / dcgan_celeba (each sets dataset,
    size, channels and num_steps)."""
    dataset: TFDSDataset = "mnist"
    eval_split: str = "test"
    fid_real_samples: int = 10000     # real images of eval_split for the FID reference
    inception_weights: str = ""       # pytorch-fid Inception weights file ('' -> jaxvision's default lookup)
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    batch_size: int = 128
    ema_decay: float | None = 0.999
    data_parallel: bool = True
    sample_every: int = 1000
    checkpoint_every: int = 2000
    num_eval_samples: int = 10000


TFDS_EVAL_KEYS = ("num_eval_samples", "fid_real_samples", "eval_split", "inception_weights", "progress")
TFDS_TINY = dict(size=16, nz=8, ngf=4, ndf=4, batch_size=8, num_steps=2, sample_every=1, log_every=1,
                 checkpoint_every=1, num_eval_samples=16, fid_real_samples=16, data_parallel=False, progress=False)


def train_tfds(cfg: TFDSConfig, workdir: str, name: str) -> dict:
    """Train a DCGAN on a TFDS data set (images centre-cropped and resized to ``size``); see ``run``."""
    ndev = parallel.local_device_count() if cfg.data_parallel else None
    ds = data.load(cfg.dataset, "train", cfg.batch_size, seed=cfg.seed, num_devices=ndev)
    state, summary = run(cfg, workdir, name, ds)
    return {**summary, **evaluate_state_tfds(cfg, workdir, state)}


def evaluate_state_tfds(cfg: TFDSConfig, workdir: str, state: GANState) -> dict:
    """FID (pytorch-fid Inception; grey images repeated to 3 channels) of ``num_eval_samples`` EMA samples vs
    ``fid_real_samples`` real images of ``eval_split``; also rewrites samples_final.png.

    In a multi-process run every process generates the same samples and reads the same real images (not a host
    slice); ``fid`` splits each batch over the processes and devices and gathers the features, so every process
    gets the FID of the whole sets. Process 0 writes the files (samples, cached real statistics, metrics)."""
    from jaxvision.metrics import fid

    writer_process = jax.process_index() == 0
    if writer_process:
        save_final_samples(cfg, workdir, state)
    rgb = lambda x: np.clip(np.repeat(x, 3, -1) if x.shape[-1] == 1 else x, 0, 1)  # noqa: E731
    # The real side's statistics are computed once per (data set, split, count, size, seed) and cached in the
    # workdir; later evaluations read them (fid() warns if they were made with other Inception weights).
    cache = os.path.join(workdir, "fid_real_{}_{}_{}_{}px_seed{}.npz".format(
        cfg.dataset.replace("/", "-"), cfg.eval_split, cfg.fid_real_samples, cfg.size, cfg.seed))
    if os.path.isfile(cache):
        real_side = cache
    else:
        ds = data.load(cfg.dataset, cfg.eval_split, 100, seed=cfg.seed, host_id=0, num_hosts=1)  # every image
        real = []
        for i in range(min(len(ds), -(-cfg.fid_real_samples // 100))):
            real.append((np.asarray(to_gan_range(jnp.asarray(ds.batch(i)["image"]), cfg.size)) + 1) / 2)
        real_side = rgb(np.concatenate(real)[:cfg.fid_real_samples])  # whole batches of 100 were read
    z = latent_noise(jax.random.PRNGKey(cfg.seed + 20_000), cfg.num_eval_samples, (cfg.nz,))
    fake = (generate(state, z, ema=cfg.ema_decay is not None) + 1) / 2
    result = fid(real_side, rgb(fake), weights=cfg.inception_weights or None,
                 save_stats_a=None if isinstance(real_side, str) or not writer_process else cache)
    out = {"fid": result.value, "fid_num_real": result.num_samples[0], "fid_num_fake": result.num_samples[1]}
    writer = MetricsWriter(workdir)
    writer.write(int(state.step), "eval", out)
    writer.close()
    return out


def evaluate_tfds(cfg: TFDSConfig, workdir: str, name: str) -> dict:
    return evaluate_state_tfds(cfg, workdir, restore(cfg, workdir, name))


def tfds_experiment(name: str, *, dataset: str, size: int, channels: int, num_steps: int):
    """``(Config, TINY, train, evaluate)`` of the experiment ``name`` on a TFDS data set: ``TFDSConfig`` with the
    data set's defaults, and train / evaluate that pass the experiment's name to ``train_tfds`` /
    ``evaluate_tfds``. The dcgan_mnist / dcgan_cifar10 / dcgan_celeba modules are this call plus a docstring."""
    fields = [("dataset", TFDSDataset, dataclasses.field(default=dataset)),
              ("size", ImageSize, dataclasses.field(default=size)),
              ("channels", int, dataclasses.field(default=channels)),
              ("num_steps", int, dataclasses.field(default=num_steps))]
    config = dataclasses.make_dataclass("Config", fields, bases=(TFDSConfig,))
    config.__module__ = f"experiments.{name}"

    def train(cfg: TFDSConfig, workdir: str) -> dict:
        return train_tfds(cfg, workdir, name)

    def evaluate(cfg: TFDSConfig, workdir: str) -> dict:
        return evaluate_tfds(cfg, workdir, name)

    train.__doc__ = f"Train on {dataset} and report FID of EMA samples vs the test split."
    evaluate.__doc__ = "FID of the latest checkpoint; rewrites samples_final.png."
    return config, {**TFDS_TINY, "channels": channels}, train, evaluate
