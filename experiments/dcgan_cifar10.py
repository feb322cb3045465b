"""dcgan_cifar10: DCGAN on TFDS CIFAR-10 (32 px colour), for accelerators.

Needs the TFDS data prepared locally (``jaxvision.data.load('cifar10', ...)``, extra ``tfds``); nothing is downloaded at
run time. Runs the shared DCGAN code of ``experiments/_dcgan.py`` (fit loop, sample grids every
``sample_every`` steps, one Orbax checkpoint with both optimizers, EMA and RNG) and reports FID against the test
split with the pytorch-fid Inception (weights read locally, see ``jaxvision.metrics.load_fid_inception``).
``data_parallel`` (default on) pmaps the step over all local devices with synchronized BatchNorm.

    jaxvision train dcgan_cifar10 --workdir runs/dcgan_cifar10
"""
from experiments._dcgan import TFDS_EVAL_KEYS, tfds_experiment

NAME = "dcgan_cifar10"
EVAL_KEYS = TFDS_EVAL_KEYS
Config, TINY, train, evaluate = tfds_experiment(NAME, dataset="cifar10", size=32, channels=3, num_steps=30_000)
