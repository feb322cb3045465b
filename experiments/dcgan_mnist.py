"""dcgan_mnist: DCGAN on TFDS MNIST (28 px grey digits, resized to 32 px), for accelerators.

Needs the TFDS data prepared locally (``jaxvision.data.load('mnist', ...)``, extra ``tfds``); nothing is downloaded at
run time. Uses the shared DCGAN code of ``experiments.dcgan_digits`` (fit loop, sample grids every
``sample_every`` steps, one Orbax checkpoint with both optimizers, EMA and RNG) and reports FID against the test
split with the pytorch-fid Inception (weights read locally, see ``jaxvision.metrics.load_fid_inception``).
``data_parallel`` (default on) pmaps the step over all local devices with synchronized BatchNorm.

    jaxvision train dcgan_mnist --workdir runs/dcgan_mnist
"""
from __future__ import annotations

import dataclasses

from experiments.dcgan_digits import TFDSConfig, evaluate_tfds, train_tfds

NAME = "dcgan_mnist"


@dataclasses.dataclass
class Config(TFDSConfig):
    dataset: str = "mnist"
    size: int = 32
    channels: int = 1
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    batch_size: int = 128
    num_steps: int = 10_000
    ema_decay: float | None = 0.999
    data_parallel: bool = True
    sample_every: int = 1000
    checkpoint_every: int = 2000
    num_eval_samples: int = 10000


TINY = dict(size=16, channels=1, nz=8, ngf=4, ndf=4, batch_size=8, num_steps=2, sample_every=1, log_every=1,
            checkpoint_every=1, num_eval_samples=16, fid_real_samples=16, data_parallel=False, progress=False)


def train(cfg: Config, workdir: str) -> dict:
    """Train on mnist and report FID of EMA samples vs the test split."""
    return train_tfds(cfg, workdir, NAME)


def evaluate(cfg: Config, workdir: str) -> dict:
    """FID of the latest checkpoint; rewrites samples_final.png."""
    return evaluate_tfds(cfg, workdir, NAME)
