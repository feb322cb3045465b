"""srgan_photos: SRResNet and SRGAN (Ledig et al. 2017), x4 super-resolution trained on the bundled photos.

G is SRResNet with, by default, a global bicubic skip (``bicubic_skip``: G learns the residual over bicubic
upsampling, starting from exactly bicubic; the paper's G has none, ``--set bicubic_skip=False``: on this small
data it does not beat bicubic in the CPU budget). Phase 1 (``<workdir>/srresnet``): SRResNet pretraining with the
MSE content loss (``generator_only``; Adam with a linear warmup and cosine decay, ``pretrain_schedule``), by
default plus 4 x the MSE of the BT.601 luma, the channel the test measures (``y_weight``; 0: the paper's RGB MSE
alone). Phase 2 (``<workdir>``): SRGAN fine-tuning from the pretrained G with content loss + 1e-3 x adversarial
loss (the paper's discriminator on HR images); the content loss is phase 1's, or VGG54 (``content='vgg54'``, needs
``vgg_weights``: a local torchvision ``vgg19`` state_dict, read with torch).

Training data: random HR patches (``patch_size`` x 4 px) of the training photos and their bicubic x4 downscales
(``jaxvision.data.sr_photos``; ``train_photos``: the five training photos of ``photos``, the left view of
``stereo_motorcycle`` and scikit-learn's two sample photos ``china`` and ``flower``), cut from the photos
area-downscaled by each factor of ``train_downscales`` (2, 3 and 4: more, and more varied, content at the test
photos' HR resolution) in all 8 flips / 90-degree rotations (``dihedral``), with each patch's colour channels in
a random order (``channel_shuffle``) and its contrast lowered by up to half (``contrast``). Test: the held-out
photos (coffee, rocket) whole, PSNR / SSIM on the BT.601 Y channel with a 4-px border crop (the paper's protocol),
for bicubic upsampling, SRResNet (also with the x8 self-ensemble) and SRGAN, plus the Sobel sharpness of each vs
the HR image's. ``sr_comparison.png``: bicubic | SRResNet | SRGAN | HR crops.
``--set preset=div2k``: the paper's sizes on TFDS ``div2k/bicubic_x4`` (96-px HR patches, 16 blocks, 64 features).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import ExperimentError, _cgan
from experiments._run_options import RunOptions, log_images
from jaxvision import data
from jaxvision.data import photos, sr_photos
from jaxvision.metrics import BT601_LUMA
from jaxvision.models.gan.srgan import SRGANDiscriminator, SRResNet, vgg54_features, vgg54_variables
from jaxvision.train import MetricsWriter, parallel
from jaxvision.train.gan import GANState, feature_term, make_conditional_gan_step, mse_term
from jaxvision.train.images import save_image_grid

NAME = "srgan_photos"
PRETRAIN_DIR = "srresnet"


@dataclasses.dataclass
class Config(RunOptions):
    EVALS_DURING_TRAINING = False     # no eval metric in fit: keep_best is refused

    data: Literal["sr_photos", "div2k/bicubic_x4"] = "sr_photos"
    scale: int = 4
    patch_size: int = 24              # LR patch side (HR patches are scale x: 96 px as in the paper)
    downscale: int = 2                # sr_photos: area downscale of the photos (HR resolution)
    train_photos: tuple[str, ...] = sr_photos.TRAIN_PHOTOS  # sr_photos: training photos (+ 3 more photos)
    train_downscales: tuple[int, ...] = (2, 3, 4)  # sr_photos: factors the training patches are cut at
    dihedral: bool = True             # sr_photos: 8 flips / 90-degree rotations of the training patches
    channel_shuffle: bool = True      # sr_photos: the training patches' colour channels in a random order
    contrast: float = 0.5             # sr_photos: training patches' contrast x U[1 - contrast, 1] about a random level
    num_blocks: int = 16              # the paper's B (at LR size: ~1.3x the step time of 4 blocks)
    nf: int = 32
    bicubic_skip: bool = True         # G adds the bicubic upsampling of its input (False: the paper's SRResNet)
    ndf: int = 16
    content: Literal["mse", "vgg54"] = "mse"
    y_weight: float = 4.0             # + y_weight x MSE of the luma (BT.601 Y, the test measure) in the MSE loss
    vgg_weights: str = ""             # torchvision vgg19 state_dict file (content='vgg54')
    vgg_weight: float = 0.006         # VGG54 term weight (features already scaled by 1/12.75)
    adversarial_weight: float = 1e-3
    batch_size: int = 4               # (16 in the paper: 4 x 96 px costs what 16 x 48 px did)
    pretrain_steps: int = 3000        # ~0.12 s a step on 2 cores (G's last conv: gradients over 4x4 pixel blocks)
    pretrain_learning_rate: float = 2e-3  # peak of a linear warmup + cosine decay (to 1 %) over pretrain_steps
    warmup_steps: int = 300
    gan_steps: int = 200
    gan_learning_rate: float = 1e-4
    b1: float = 0.9
    seed: int = 0
    data_parallel: bool = False
    eval_crop: int = 96               # side of the HR crops in sr_comparison.png
    log_every: int = 50
    checkpoint_every: int = 500
    keep: int = 2
    progress: bool = True

    def __post_init__(self):
        super().__post_init__()
        if not self.y_weight >= 0:
            raise ExperimentError(f"--set y_weight={self.y_weight}: expected a loss weight >= 0")


EVAL_KEYS = ("progress", "eval_crop")
TINY = dict(patch_size=8, downscale=4, train_downscales=(4,), num_blocks=1, nf=8, ndf=4, batch_size=4,
            pretrain_steps=2, gan_steps=2, log_every=1, checkpoint_every=2, progress=False, eval_crop=32)
PRESETS = {"div2k": dict(data="div2k/bicubic_x4", patch_size=24, batch_size=16, warmup_steps=0, num_blocks=16, nf=64,
                         ndf=64, bicubic_skip=False,
                         pretrain_steps=1_000_000, pretrain_learning_rate=1e-4, gan_steps=200_000,
                         data_parallel=True, log_every=500, checkpoint_every=10_000)}


def models(cfg: Config):
    axis = parallel.AXIS if cfg.data_parallel else None
    return (SRResNet(scale=cfg.scale, num_blocks=cfg.num_blocks, nf=cfg.nf, bicubic_skip=cfg.bicubic_skip,
                     bn_axis_name=axis),
            SRGANDiscriminator(ndf=cfg.ndf, bn_axis_name=axis))


def make_state(cfg: Config, learning_rate) -> GANState:
    """A fresh GANState (G, D, Adam on both with ``learning_rate``: a float or an optax schedule)."""
    g, d = models(cfg)
    kg, kd, kr = jax.random.split(jax.random.PRNGKey(cfg.seed), 3)
    p = cfg.patch_size
    return GANState.create(
        g_apply_fn=g.apply, g_variables=g.init(kg, jnp.zeros((1, p, p, 3)), train=False),
        d_apply_fn=d.apply, d_variables=d.init(kd, jnp.zeros((1, p * cfg.scale, p * cfg.scale, 3)), train=False),
        g_tx=optax.adam(learning_rate, b1=cfg.b1), d_tx=optax.adam(learning_rate, b1=cfg.b1), rng=kr)


def pretrain_schedule(cfg: Config):
    """SRResNet pretraining learning rate: linear warmup over ``warmup_steps`` to ``pretrain_learning_rate``, then
    cosine decay to 1 % of it at ``pretrain_steps`` (the warmup keeps Adam's first, sign-sized steps from
    throwing G far off bicubic; the decay gives the last steps' PSNR)."""
    warm = min(cfg.warmup_steps, max(cfg.pretrain_steps - 1, 0))
    return optax.warmup_cosine_decay_schedule(0.0, cfg.pretrain_learning_rate, warm, max(cfg.pretrain_steps, warm + 1),
                                              cfg.pretrain_learning_rate * 0.01)


def pixel_terms(cfg: Config):
    """SRResNet's loss: MSE on RGB, plus ``y_weight`` x the MSE of the BT.601 luma (0: the paper's MSE alone)."""
    return [mse_term(1.0)] + ([mse_term(cfg.y_weight, channel_weights=BT601_LUMA, name="y_mse")] if cfg.y_weight
                              else [])


def content_terms(cfg: Config):
    if cfg.content == "mse":
        return pixel_terms(cfg)
    if not cfg.vgg_weights:
        raise ValueError("vgg_weights: content='vgg54' needs a local torchvision vgg19 state_dict file, got ''")
    return [feature_term(vgg54_features(vgg54_variables(cfg.vgg_weights)), cfg.vgg_weight, name="vgg54")]


def load_data(cfg: Config, split: str, num_devices=None):
    if cfg.data == "sr_photos":
        return data.load("sr_photos", split, cfg.batch_size, seed=cfg.seed, num_devices=num_devices,
                         patch_size=cfg.patch_size, scale=cfg.scale, downscale=cfg.downscale,
                         train_photos=cfg.train_photos, train_downscales=cfg.train_downscales,
                         dihedral=cfg.dihedral, channel_shuffle=cfg.channel_shuffle,
                         contrast=cfg.contrast)
    return data.load(cfg.data, split, cfg.batch_size, seed=cfg.seed, num_devices=num_devices,
                     patch_size=cfg.patch_size)


def train(cfg: Config, workdir: str) -> dict:
    """SRResNet pretraining (MSE), then SRGAN fine-tuning; returns the held-out metrics."""
    if cfg.data == "div2k/bicubic_x4" and cfg.scale != 4:
        raise ValueError(f"scale: div2k/bicubic_x4 is x4, got scale={cfg.scale}")
    axis = parallel.AXIS if cfg.data_parallel else None
    ds = load_data(cfg, "train", parallel.local_device_count() if cfg.data_parallel else None)
    terms = content_terms(cfg)
    pre_step = _cgan.fit_step(make_conditional_gan_step(terms=pixel_terms(cfg), generator_only=True,
                                                        axis_name=axis), condition_key="low_res")
    pre_dir = os.path.join(workdir, PRETRAIN_DIR)
    pre, _ = _cgan.run_phase(make_state(cfg, pretrain_schedule(cfg)), pre_step, ds, cfg, pre_dir,
                             f"{NAME}/{PRETRAIN_DIR}", cfg.pretrain_steps, learning_rate=pretrain_schedule(cfg))
    gan_step = _cgan.fit_step(make_conditional_gan_step(
        "non_saturating", terms=terms, adversarial_weight=cfg.adversarial_weight, condition_in_discriminator=False,
        axis_name=axis), condition_key="low_res")
    state = make_state(cfg, cfg.gan_learning_rate).replace(g_params=pre.g_params, g_batch_stats=pre.g_batch_stats)
    state = state.replace(g_opt_state=state.g_tx.init(state.g_params))
    _, summary = _cgan.run_phase(state, gan_step, ds, cfg, workdir, NAME, cfg.gan_steps,
                                 learning_rate=cfg.gan_learning_rate)
    result = {**{f"train_{k}": v for k, v in summary.items() if isinstance(v, float)}, **evaluate(cfg, workdir)}
    log_images(cfg, workdir, cfg.gan_steps, {"eval/sr_comparison": os.path.join(workdir, "sr_comparison.png")})
    return result


def super_resolver(state: GANState):
    """``lr [h, w, 3] -> sr [scale h, scale w, 3]`` in [0, 1] by G in eval mode (one jitted function per state)."""
    fn = jax.jit(lambda v, x: state.g_apply_fn(v, x, train=False))
    variables = state.generator_variables()
    return lambda lr01: np.asarray(_cgan.unit_range(fn(variables, _cgan.gan_range(jnp.asarray(lr01)[None]))))[0]


def self_ensemble(resolve, lr01: np.ndarray) -> np.ndarray:
    """The mean of ``resolve`` over the 8 flips / 90-degree rotations of the input, each output turned back (the
    geometric self-ensemble of Lim et al. 2017, EDSR+): a test-time method, reported beside the single pass."""
    outs = []
    for k in range(4):
        for flip in (False, True):
            x = np.rot90(lr01, k)
            x = x[:, ::-1] if flip else x
            y = resolve(np.ascontiguousarray(x))
            outs.append(np.rot90(y[:, ::-1] if flip else y, -k))
    return np.mean(outs, 0)


def evaluate(cfg: Config, workdir: str) -> dict:
    """Whole held-out photos: Y-channel PSNR / SSIM (4-px border crop) and sharpness of bicubic, SRResNet, SRResNet
    with the x8 self-ensemble (``srresnet_x8``, a test-time method: not the SRResNet number) and SRGAN (means over
    the photos; PSNR also per photo, ``<method>_psnr_y_<photo>``; ``srresnet[_x8]_gain_db[_<photo>]``: PSNR over
    bicubic's). Writes sr_comparison.png (bicubic | SRResNet | SRGAN | HR)."""
    if cfg.data != "sr_photos":
        raise ValueError(f"data: whole-image evaluation is on the embedded photos, got data={cfg.data!r} "
                         "(evaluate div2k runs with --set data=sr_photos)")
    pre = _cgan.restore_phase(make_state(cfg, pretrain_schedule(cfg)), os.path.join(workdir, PRETRAIN_DIR),
                              f"{NAME}/{PRETRAIN_DIR}", cfg)
    gan = _cgan.restore_phase(make_state(cfg, cfg.gan_learning_rate), workdir, NAME, cfg)
    srresnet = super_resolver(pre)
    methods = {"bicubic": lambda lr: sr_photos.bicubic_upscale(lr, cfg.scale), "srresnet": srresnet,
               "srresnet_x8": lambda lr: self_ensemble(srresnet, lr), "srgan": super_resolver(gan)}
    per = {k: [] for k in methods}
    crops = []
    for lr, hr in sr_photos.whole_images("test", cfg.scale, cfg.downscale):
        row = {}
        for key, fn in methods.items():
            row[key] = fn(lr)
            per[key].append(_cgan.image_metrics(row[key][None], hr[None], y_channel=True, crop_border=cfg.scale))
        c = min(cfg.eval_crop, *hr.shape[:2])
        y, x = (hr.shape[0] - c) // 2, (hr.shape[1] - c) // 2
        crops += [im[y:y + c, x:x + c] for im in (row["bicubic"], row["srresnet"], row["srgan"], hr)]
    out = {"num_test_images": len(per["bicubic"])}
    for key, rows in per.items():
        for m in ("psnr", "ssim", "sharpness", "sharpness_ratio"):
            out[f"{key}_{m}_y" if m in ("psnr", "ssim") else f"{key}_{m}"] = float(np.mean([r[m] for r in rows]))
    out["hr_sharpness"] = float(np.mean([r["sharpness_target"] for r in per["bicubic"]]))
    for i, name in enumerate(photos.TEST_IMAGES):  # per photo: where the gain comes from
        for key, rows in per.items():
            out[f"{key}_psnr_y_{name}"] = float(rows[i]["psnr"])
    for key in ("srresnet", "srresnet_x8"):
        for suffix in [""] + [f"_{name}" for name in photos.TEST_IMAGES]:
            out[f"{key}_gain_db{suffix}"] = out[f"{key}_psnr_y{suffix}"] - out[f"bicubic_psnr_y{suffix}"]
    save_image_grid(os.path.join(workdir, "sr_comparison.png"), np.stack(crops), ncol=4,
                    scale=max(1, 128 // cfg.eval_crop))
    writer = MetricsWriter(workdir, tensorboard=cfg.tensorboard)
    writer.write(int(gan.step), "eval", out)
    writer.close()
    return out
