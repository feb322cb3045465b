"""dcgan_cifar10: DCGAN on TFDS CIFAR-10 (32 px colour), for accelerators.

Needs the TFDS data prepared locally (``jaxvision.data.load('cifar10', ...)``, extra ``tfds``); nothing is downloaded at
run time. Uses the shared DCGAN code of ``experiments/_dcgan.py`` (fit loop, sample grids every
``sample_every`` steps, one Orbax checkpoint with both optimizers, EMA and RNG) and reports FID against the test
split with the pytorch-fid Inception (weights read locally, see ``jaxvision.metrics.load_fid_inception``).
``data_parallel`` (default on) pmaps the step over all local devices with synchronized BatchNorm.

    jaxvision train dcgan_cifar10 --workdir runs/dcgan_cifar10
"""
from __future__ import annotations

import dataclasses

from experiments._dcgan import TFDS_EVAL_KEYS, TFDS_TINY, ImageSize, TFDSConfig, TFDSDataset, evaluate_tfds, train_tfds

NAME = "dcgan_cifar10"


@dataclasses.dataclass
class Config(TFDSConfig):
    dataset: TFDSDataset = "cifar10"
    size: ImageSize = 32
    channels: int = 3
    num_steps: int = 30_000


EVAL_KEYS = TFDS_EVAL_KEYS
TINY = {**TFDS_TINY, "channels": 3}


def train(cfg: Config, workdir: str) -> dict:
    """Train on cifar10 and report FID of EMA samples vs the test split."""
    return train_tfds(cfg, workdir, NAME)


def evaluate(cfg: Config, workdir: str) -> dict:
    """FID of the latest checkpoint; rewrites samples_final.png."""
    return evaluate_tfds(cfg, workdir, NAME)
