"""dcgan_mnist: DCGAN on TFDS MNIST (28 px grey digits, resized to 32 px), for accelerators.

Needs the TFDS data prepared locally (``jaxvision.data.load('mnist', ...)``, extra ``tfds``); nothing is downloaded at
run time. Uses the shared DCGAN code of ``experiments/_dcgan.py`` (fit loop, sample grids every
``sample_every`` steps, one Orbax checkpoint with both optimizers, EMA and RNG) and reports FID against the test
split with the pytorch-fid Inception (weights read locally, see ``jaxvision.metrics.load_fid_inception``).
``data_parallel`` (default on) pmaps the step over all local devices with synchronized BatchNorm.

    jaxvision train dcgan_mnist --workdir runs/dcgan_mnist
"""
from __future__ import annotations

import dataclasses

from experiments._dcgan import TFDS_EVAL_KEYS, TFDS_TINY, ImageSize, TFDSConfig, TFDSDataset, evaluate_tfds, train_tfds

NAME = "dcgan_mnist"


@dataclasses.dataclass
class Config(TFDSConfig):
    dataset: TFDSDataset = "mnist"
    size: ImageSize = 32
    channels: int = 1
    num_steps: int = 10_000


EVAL_KEYS = TFDS_EVAL_KEYS
TINY = {**TFDS_TINY, "channels": 1}


def train(cfg: Config, workdir: str) -> dict:
    """Train on mnist and report FID of EMA samples vs the test split."""
    return train_tfds(cfg, workdir, NAME)


def evaluate(cfg: Config, workdir: str) -> dict:
    """FID of the latest checkpoint; rewrites samples_final.png."""
    return evaluate_tfds(cfg, workdir, NAME)
