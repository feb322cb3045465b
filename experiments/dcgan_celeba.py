"""dcgan_celeba: DCGAN on TFDS CelebA (218x178 faces, centre-cropped to 178x178, resized to 64 px), for accelerators.

The DCGAN paper's face setting.

Needs the TFDS data prepared locally (``jaxvision.data.load('celeb_a', ...)``, extra ``tfds``); nothing is downloaded at
run time. Runs the shared DCGAN code of ``experiments/_dcgan.py`` (fit loop, sample grids every
``sample_every`` steps, one Orbax checkpoint with both optimizers, EMA and RNG) and reports FID against the test
split with the pytorch-fid Inception (weights read locally, see ``jaxvision.metrics.load_fid_inception``).
``data_parallel`` (default on) pmaps the step over all local devices with synchronized BatchNorm.

    jaxvision train dcgan_celeba --workdir runs/dcgan_celeba
"""
from experiments._dcgan import TFDS_EVAL_KEYS, tfds_experiment

NAME = "dcgan_celeba"
EVAL_KEYS = TFDS_EVAL_KEYS
Config, TINY, train, evaluate = tfds_experiment(NAME, dataset="celeb_a", size=64, channels=3, num_steps=20_000)
