"""Fingerprints of what each experiment's default config computes, without training it.

An experiment's ``train`` is run until it calls ``jaxvision.train.fit``; the call is intercepted and we record
the config (field by field), the initial state (per-leaf sum and L2 norm), the first training batch, the loop
settings, and -- for single-device runs -- the metrics and parameters after one step of the very train step the
experiment built. ``tests/experiments/fixtures/make_reference.py`` writes them to ``reference.json``;
``test_reference.py`` recomputes them and compares, so a refactoring that changes what a default run computes
fails a test instead of silently changing a published result.
"""
from __future__ import annotations

import contextlib
import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np

import experiments

# Experiments fingerprinted through their `fit` call. TFDS ones run on a stand-in data set of the right shape
# (no TFDS data in CI); their step is pmapped over all devices, so only their state is recorded.
FIT_EXPERIMENTS = ("digits_classifier", "localization_shapes", "landmarks_shapes", "yolo_shapes", "ssd_shapes",
                   "dcgan_digits", "dcgan_mnist", "dcgan_cifar10", "dcgan_celeba")
TFDS_SHAPES = {"mnist": (28, 28, 1), "cifar10": (32, 32, 3), "celeb_a": (218, 178, 3)}


class _Captured(Exception):
    def __init__(self, args, kwargs):
        super().__init__("fit intercepted")
        self.args, self.kwargs = args, kwargs


def tree_fingerprint(tree) -> dict:
    """``{path: [shape, sum, l2]}`` (float64) of every array leaf."""
    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        a = np.asarray(leaf)
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            a = np.asarray(jax.random.key_data(leaf))
        a = a.astype(np.float64)
        out[jax.tree_util.keystr(path)] = [list(a.shape), float(a.sum()), float(np.sqrt((a * a).sum()))]
    return out


def _batch_fingerprint(batch) -> dict:
    return {k: [list(np.shape(v)), str(np.asarray(v).dtype), float(np.asarray(v, np.float64).sum())]
            for k, v in sorted(batch.items())}


class _FakeTFDS:
    """Stand-in for a TFDS split: zeros of the data set's native shape (grey 0.5)."""

    def __init__(self, name, batch_size, num_devices):
        self.num_devices, shape = num_devices, TFDS_SHAPES[name]
        lead = (num_devices, batch_size // num_devices) if num_devices else (batch_size,)
        self._batch = {"image": np.full(lead + shape, 0.5, np.float32)}

    def __len__(self):
        return 10

    def batch(self, i, epoch=0):
        return self._batch


@contextlib.contextmanager
def _intercept_fit():
    from jaxvision import data
    from jaxvision.train import loop

    real_fit, real_load = loop.fit, data.load

    def fake_fit(*args, **kwargs):
        raise _Captured(args, kwargs)

    def fake_load(name, split, batch_size, seed=0, num_devices=None, **options):
        if name in TFDS_SHAPES:
            return _FakeTFDS(name, batch_size, num_devices)
        return real_load(name, split, batch_size, seed=seed, num_devices=num_devices, **options)

    patched = [(m, "fit") for m in list(sys.modules.values())
               if getattr(m, "__name__", "").startswith(("experiments", "jaxvision.train"))
               and getattr(m, "fit", None) is real_fit]
    for m, attr in patched:
        setattr(m, attr, fake_fit)
    data.load = fake_load
    try:
        yield
    finally:
        for m, attr in patched:
            setattr(m, attr, real_fit)
        data.load = real_load


def _config_dict(cfg) -> dict:
    import json

    return json.loads(json.dumps(dataclasses.asdict(cfg), default=list))


def fit_fingerprint(name: str, tmp_dir: str) -> dict:
    module = experiments.get(name)
    cfg = experiments.make_config(module)
    with _intercept_fit():
        try:
            module.train(cfg, tmp_dir)
        except _Captured as c:
            captured = c
        else:
            raise AssertionError(f"{name}.train never called fit")
    state, train_step, train_data = captured.args[:3]
    kw = captured.kwargs
    out = {
        "config": _config_dict(cfg),
        "fit": {k: kw[k] for k in ("num_steps", "experiment", "checkpoint_every", "keep", "log_every",
                                   "eval_every", "data_parallel") if k in kw},
        "state": tree_fingerprint(state),
        "batch": _batch_fingerprint(train_data.batch(0, 0)),
    }
    if not kw.get("data_parallel"):
        new, metrics = jax.jit(train_step)(state, train_data.batch(0, 0))
        out["step_metrics"] = {k: float(v) for k, v in sorted(jax.device_get(metrics).items())}
        out["state_after_step"] = tree_fingerprint(new)
    return out


def mode_collapse_fingerprint() -> dict:
    """The default mode_collapse config, its seed states and one vmapped step of each loss on the ring data."""
    from jaxvision.train.gan import make_gan_step

    module = experiments.get("mode_collapse")
    cfg = experiments.make_config(module)
    states = module._seed_states(cfg).states
    reals = jnp.asarray(module._real_chunk(cfg, "ring", 0, 1)[0])
    out = {"config": _config_dict(cfg), "state": tree_fingerprint(states), "step_metrics": {}}
    for loss in cfg.losses:
        step = jax.jit(jax.vmap(make_gan_step(loss, latent_shape=(cfg.latent_dim,), axis_name=None)))
        _, metrics = step(states, reals)
        out["step_metrics"][loss] = {k: np.asarray(v, np.float64).tolist()
                                     for k, v in sorted(jax.device_get(metrics).items())}
    return out


def all_fingerprints(tmp_dir: str) -> dict:
    import os

    out = {name: fit_fingerprint(name, os.path.join(tmp_dir, name)) for name in FIT_EXPERIMENTS}
    out["mode_collapse"] = mode_collapse_fingerprint()
    return out
