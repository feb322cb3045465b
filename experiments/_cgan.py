"""Shared conditional-GAN wiring (not an experiment), used by pix2pix_shapes, pix2pix_edges2photos and srgan_photos.

Data sets give ``condition`` / ``low_res`` and ``image`` in [0, 1]; the GAN works in [-1, 1]. ``fit_step`` turns a
``make_conditional_gan_step`` step into a ``fit`` step (range conversion, a ``loss`` metric for the non-finite
stop), ``run_phase`` trains one phase with ``jaxvision.train.fit`` (checkpoints with both optimizers and the RNG,
exact resume, metrics.jsonl) in its own workdir, ``restore_phase`` reads it back, ``predict`` runs G in eval mode,
and ``image_metrics`` measures outputs against targets (L1, PSNR, SSIM, Sobel sharpness vs the target's).
"""
from __future__ import annotations

import os

import jax
import numpy as np

from experiments._run_options import fit_options
from jaxvision.metrics import mean_gradient_magnitude, psnr, ssim
from jaxvision.train import CheckpointManager, fit
from jaxvision.train.gan import GANState


def gan_range(x):
    """[0, 1] -> [-1, 1]."""
    return x * 2.0 - 1.0


def unit_range(x):
    """[-1, 1] -> [0, 1], clipped (G's outputs may overshoot)."""
    return np.clip((np.asarray(x) + 1.0) * 0.5, 0.0, 1.0)


def fit_step(cstep, condition_key: str = "condition"):
    """``(state, batch) -> (state, metrics)`` for ``fit`` from a conditional GAN step: ``batch[condition_key]``
    and ``batch['image']`` in [0, 1] are mapped to [-1, 1] and passed as ``condition`` / ``image``."""

    def step(state, batch):
        state, metrics = cstep(state, {"condition": gan_range(batch[condition_key]),
                                       "image": gan_range(batch["image"])})
        metrics["loss"] = metrics["g_loss"] + metrics.get("d_loss", 0.0)  # NaN/inf in either stops the loop
        return state, metrics

    return step


def run_phase(state: GANState, step, ds, cfg, workdir: str, experiment: str, num_steps: int,
              hooks=(), learning_rate=None) -> tuple[GANState, dict]:
    """Train one phase with ``fit`` in ``workdir`` (resumes a checkpoint there) with the config's run options;
    ``learning_rate`` (float or ``{name: float}``) is logged with the train metrics."""
    return fit(state, step, ds, num_steps=num_steps, workdir=workdir, experiment=experiment, config=cfg,
               checkpoint_every=cfg.checkpoint_every, keep=cfg.keep, log_every=cfg.log_every,
               data_parallel=cfg.data_parallel, progress=cfg.progress, hooks=hooks, learning_rate=learning_rate,
               **fit_options(cfg))


def restore_phase(state: GANState, workdir: str, experiment: str, cfg) -> GANState:
    """The latest checkpoint of a phase's workdir (FileNotFoundError naming it if there is none)."""
    with CheckpointManager(workdir, experiment, cfg) as ckpt:
        if ckpt.latest_step() is None:
            raise FileNotFoundError(f"no checkpoint of {experiment} in {os.path.abspath(workdir)}; train first")
        return ckpt.restore(state)


def predict(state: GANState, inputs01: np.ndarray, batch: int = 32) -> np.ndarray:
    """G in eval mode (running BatchNorm statistics, no dropout) on [0, 1] inputs -> [0, 1] outputs."""
    fn = jax.jit(lambda v, x: state.g_apply_fn(v, x, train=False))
    v = state.generator_variables()
    out = [unit_range(fn(v, gan_range(inputs01[i:i + batch]))) for i in range(0, len(inputs01), batch)]
    return np.concatenate(out)


def image_metrics(outputs: np.ndarray, targets: np.ndarray, *, y_channel: bool = False,
                  crop_border: int = 0) -> dict:
    """Means over images of L1, PSNR (dB), SSIM and the Sobel sharpness of outputs, targets and their ratio.

    Args:
      outputs, targets: float [N, H, W, 3] in [0, 1].
      y_channel, crop_border: evaluate PSNR/SSIM on BT.601 luma with a border crop (the SR protocol).
    """
    sharp_out = float(np.mean(mean_gradient_magnitude(outputs)))
    sharp_tgt = float(np.mean(mean_gradient_magnitude(targets)))
    return {
        "l1": float(np.mean(np.abs(outputs - targets))),
        "psnr": float(np.mean(psnr(outputs, targets, y_channel=y_channel, crop_border=crop_border))),
        "ssim": float(np.mean(ssim(outputs, targets, y_channel=y_channel, crop_border=crop_border))),
        "sharpness": sharp_out,
        "sharpness_target": sharp_tgt,
        "sharpness_ratio": sharp_out / max(sharp_tgt, 1e-12),
    }


def as_rgb(x: np.ndarray) -> np.ndarray:
    """[..., 1] -> [..., 3] (grey conditions beside RGB images in PNG grids)."""
    return np.repeat(x, 3, -1) if x.shape[-1] == 1 else x
