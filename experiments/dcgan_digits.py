"""dcgan_digits: DCGAN (Radford et al.) at 32 px on the bundled handwritten digits, in minutes on a CPU.

Trains with the shared DCGAN wiring of ``experiments/_dcgan.py`` (the generic loop ``jaxvision.train.fit`` and the
GAN step of ``jaxvision.train.gan``). Every ``sample_every`` steps it writes ``samples/step_XXXXXX.png`` from a
fixed noise batch, and ``samples_final.png`` at the end.

Quality is measured with the ``digits_classifier`` network (``experiments/_digits_classifier.py``) as the feature
extractor (a "Fréchet Digits Distance" and a digits Inception Score, through ``jaxvision.metrics.fid`` /
``inception_score``) plus the
classifier's label distribution over the samples. Three rows are reported: real vs real (train split vs test
split), the generator at its random initialization, and the trained generator (raw and EMA weights). The
classifier is read from ``classifier_workdir``; if that holds no checkpoint, it is trained there first
(default: ``<workdir>/classifier``).
"""
from __future__ import annotations

import dataclasses
import os
import time

import jax
import numpy as np

from experiments import _dcgan
from experiments import _digits_classifier as dc
from experiments._dcgan import DCGANConfig, generate, make_state
from jaxvision import data
from jaxvision.train import MetricsWriter, parallel
from jaxvision.train.checkpoint import CHECKPOINT_DIR
from jaxvision.train.gan import GANState, latent_noise

NAME = "dcgan_digits"


@dataclasses.dataclass
class Config(DCGANConfig):
    classifier_workdir: str = ""      # digits_classifier run used as feature network ('' -> <workdir>/classifier)
    classifier_steps: int = 0         # if it must be trained: steps (0 -> digits_classifier's default)
    classifier_tiny: bool = False     # if it must be trained: digits_classifier's TINY model (smoke tests only)


EVAL_KEYS = ("num_eval_samples", "classifier_workdir", "progress")
TINY = dict(size=16, nz=8, ngf=4, ndf=4, batch_size=16, num_steps=4, sample_every=2, log_every=2,
            checkpoint_every=2, num_eval_samples=64, classifier_steps=4, classifier_tiny=True, progress=False,
            ema_decay=0.9)


# -- digits quality: Fréchet Digits Distance, digits IS, label histogram --------------------------------------------

def _classifier(cfg: Config, workdir: str):
    cdir = cfg.classifier_workdir or os.path.join(workdir, "classifier")
    if not os.path.isdir(os.path.join(cdir, CHECKPOINT_DIR)):
        ccfg = dc.Config(**{**(dc.TINY if cfg.classifier_tiny else {}), "progress": False})
        if cfg.classifier_steps:
            ccfg = dataclasses.replace(ccfg, num_steps=cfg.classifier_steps)
        dc.train(ccfg, cdir)
    apply, ccfg = dc.load_classifier(cdir)
    return apply, ccfg


def _network(apply, ccfg):
    from jaxvision.metrics import FeatureNetwork

    def fn(images):  # [N, S, S, 1] in [0, 1] -> features/logits of the classifier (resized to its size)
        if images.shape[1] != ccfg.size:
            images = jax.image.resize(images, (images.shape[0], ccfg.size, ccfg.size, 1), "linear", antialias=True)
        f, logits = apply(images)
        return {"features": f, "logits": logits}

    return FeatureNetwork(fn, f"digits_classifier ({ccfg.size} px, {ccfg.features}-d features)", "trained-in-run",
                          f"bilinear to {ccfg.size}x{ccfg.size}", 1)


def quality(net, real_ref: np.ndarray, images01: np.ndarray) -> dict:
    """FID (vs ``real_ref``), IS and label histogram of ``images01`` (float [N, S, S, 1] in [0, 1])."""
    from jaxvision.metrics import fid, inception_score

    logits = np.concatenate([np.asarray(net(images01[i:i + 500])["logits"]) for i in range(0, len(images01), 500)])
    hist = np.bincount(np.argmax(logits, -1), minlength=10) / len(logits)
    is_mean, is_std = inception_score(logits, splits=10 if len(logits) >= 100 else 1)
    nz = hist[hist > 0]
    # quantize=False: the published digits FID is of the float samples (fid() now rounds arrays to 8 bits by default)
    return {"fid": fid(real_ref, images01, network=net, quantize=False).value, "is": float(is_mean),
            "is_std": float(is_std),
            "label_entropy": float(-(nz * np.log(nz)).sum()) + 0.0, "label_hist": hist.round(4).tolist()}


def _quality_rows(cfg: Config, workdir: str, state: GANState) -> dict:
    from jaxvision.data import digits

    apply, ccfg = _classifier(cfg, workdir)
    net = _network(apply, ccfg)
    train_imgs = np.asarray(digits.arrays("train", cfg.size)[0])
    test_imgs = np.asarray(digits.arrays("test", cfg.size)[0])
    z = latent_noise(jax.random.PRNGKey(cfg.seed + 20_000), cfg.num_eval_samples, (cfg.nz,))
    to01 = lambda x: np.clip((x + 1.0) / 2.0, 0.0, 1.0)  # noqa: E731
    rows = {
        "real_test_vs_train": quality(net, train_imgs, test_imgs),
        "random_init_generator": quality(net, train_imgs, to01(generate(make_state(cfg), z))),
        "trained_generator": quality(net, train_imgs, to01(generate(state, z))),
    }
    if state.g_ema is not None:
        rows["trained_generator_ema"] = quality(net, train_imgs, to01(generate(state, z, ema=True)))
    return rows


def _write_quality(workdir: str, step: int, rows: dict, tensorboard: bool = False) -> dict:
    lines = ["| samples | digits FID (lower better) | digits IS (higher better) | label entropy (max 2.303) |",
             "|---|---:|---:|---:|"]
    writer = MetricsWriter(workdir, tensorboard=tensorboard)
    out = {}
    for name, r in rows.items():
        lines.append(f"| {name} | {r['fid']:.2f} | {r['is']:.2f} ± {r['is_std']:.2f} | {r['label_entropy']:.3f} |")
        writer.write(step, f"quality/{name}", r)
        out.update({f"{name}/{k}": v for k, v in r.items() if k != "label_hist"})
    writer.close()
    with open(os.path.join(workdir, "quality.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)
    return out


def train(cfg: Config, workdir: str) -> dict:
    """Train on digits (all 1,797 images; size px), then measure quality; returns the final metrics."""
    t0 = time.time()
    ndev = parallel.local_device_count() if cfg.data_parallel else None
    ds = data.load("digits", "all", cfg.batch_size, seed=cfg.seed, num_devices=ndev, size=cfg.size)
    state, summary = _dcgan.run(cfg, workdir, NAME, ds)
    train_seconds = time.time() - t0
    quality = _write_quality(workdir, int(state.step), _quality_rows(cfg, workdir, state), cfg.tensorboard)
    return {**summary, "train_seconds": train_seconds, **quality}


def evaluate(cfg: Config, workdir: str) -> dict:
    """Quality of the latest checkpoint: quality.md, samples_final.png, metrics."""
    state = _dcgan.restore(cfg, workdir, NAME)
    _dcgan.save_final_samples(cfg, workdir, state)
    return _write_quality(workdir, int(state.step), _quality_rows(cfg, workdir, state), cfg.tensorboard)


