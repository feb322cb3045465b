"""dcgan_mnist: DCGAN on TFDS MNIST (28 px grey digits, resized to 32 px), for accelerators.

Needs the TFDS data prepared locally (``jaxvision.data.load('mnist', ...)``, extra ``tfds``); nothing is downloaded at
run time. Runs the shared DCGAN code of ``experiments/_dcgan.py`` (fit loop, sample grids every
``sample_every`` steps, one Orbax checkpoint with both optimizers, EMA and RNG) and reports FID against the test
split with the pytorch-fid Inception (weights read locally, see ``jaxvision.metrics.load_fid_inception``).
``data_parallel`` (default on) pmaps the step over all local devices with synchronized BatchNorm.

    jaxvision train dcgan_mnist --workdir runs/dcgan_mnist
"""
from experiments._dcgan import TFDS_EVAL_KEYS, tfds_experiment

NAME = "dcgan_mnist"
EVAL_KEYS = TFDS_EVAL_KEYS
Config, TINY, train, evaluate = tfds_experiment(NAME, dataset="mnist", size=32, channels=1, num_steps=10_000)
