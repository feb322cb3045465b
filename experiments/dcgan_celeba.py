"""dcgan_celeba: DCGAN on TFDS CelebA (218x178 faces, centre-cropped to 178x178, resized to 64 px), for accelerators.

The DCGAN paper's face setting.

Needs the TFDS data prepared locally (``jaxvision.data.load('celeb_a', ...)``, extra ``tfds``); nothing is downloaded at
run time. Uses the shared DCGAN code of ``experiments/_dcgan.py`` (fit loop, sample grids every
``sample_every`` steps, one Orbax checkpoint with both optimizers, EMA and RNG) and reports FID against the test
split with the pytorch-fid Inception (weights read locally, see ``jaxvision.metrics.load_fid_inception``).
``data_parallel`` (default on) pmaps the step over all local devices with synchronized BatchNorm.

    jaxvision train dcgan_celeba --workdir runs/dcgan_celeba
"""
from __future__ import annotations

import dataclasses

from experiments._dcgan import TFDS_EVAL_KEYS, TFDS_TINY, ImageSize, TFDSConfig, TFDSDataset, evaluate_tfds, train_tfds

NAME = "dcgan_celeba"


@dataclasses.dataclass
class Config(TFDSConfig):
    dataset: TFDSDataset = "celeb_a"
    size: ImageSize = 64
    channels: int = 3
    num_steps: int = 20_000


EVAL_KEYS = TFDS_EVAL_KEYS
TINY = {**TFDS_TINY, "channels": 3}


def train(cfg: Config, workdir: str) -> dict:
    """Train on celeb_a and report FID of EMA samples vs the test split."""
    return train_tfds(cfg, workdir, NAME)


def evaluate(cfg: Config, workdir: str) -> dict:
    """FID of the latest checkpoint; rewrites samples_final.png."""
    return evaluate_tfds(cfg, workdir, NAME)
