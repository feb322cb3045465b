"""SRResNet pretraining ablations of ``srgan_photos`` (rows of srgan_photos_pretrain_ablations.json from 11-28 15:00).

A pretraining-only loop (no SRGAN phase, no checkpoints) with the experiment's model and test protocol: SRResNet
with ``bicubic_skip``, MSE, Adam with a linear warmup and cosine decay to 1 %, PIL bicubic x4 LR patches cut from
the pool's photos (uniform over (photo, factor) pairs, random horizontal flips and, with ``rot=1``, all 8
orientations). After training it scores the held-out photos whole (Y PSNR, 4-px border crop) minus bicubic's as
``[mean, coffee, rocket]``: for the trained weights (``raw``, what ``srgan_photos`` reports), an EMA of them
(``ema``, decay ``ema``) and, with ``pbn > 0``, both again with BatchNorm statistics recomputed as the mean over
``pbn`` training batches of ``pbs`` patches (``raw_pbn``, ``ema_pbn``).

Run: ``PYTHONPATH=. python docs/results/srresnet_ablation.py [key=value ...]`` with the keys of ``DEFAULTS``, e.g.
``pool=sk steps=1500 warm=150``; prints one ``RESULT {json}`` line (wall / CPU seconds of the training loop and
the load average). Pools (``POOLS``): ``plusc`` (the five ``photos`` training photos + stereo_motorcycle), ``sk``
(+ scikit-learn's china and flower: today's ``sr_photos.TRAIN_PHOTOS``), ``sk2`` (+ stereo_motorcycle's right
view), ``nat`` / ``noret`` (subsets), ``gray`` (+ seven greyscale skimage photos as RGB); ``files=a.jpg,b.png`` adds
image files to the pool. Knobs of the 2026-11-28 18:00 rows: ``scales`` may hold non-integer factors (PIL box
filter); ``whole=1`` cuts aligned crops of each photo and of its whole-image bicubic LR (no LR pixels at a crop
border, offsets on the x4 grid) instead of downscaling each HR crop; ``chan=1`` permutes the colour channels of each
patch at random; ``inten=c`` scales each patch's contrast by a random s in [1 - c, 1] about a random level;
``inv=1`` turns half the patches into their negatives; ``yw`` adds ``yw`` x the MSE of the error's BT.601 Y to the
loss; ``bn=0`` drops BatchNorm (EDSR). Knobs of the 2026-11-28 (session 7, H200 sweep) rows: ``l1=1`` puts L1 in
place of both squared errors (EDSR's loss), ``b2`` is Adam's second-moment decay, ``end`` the cosine decay's final
fraction of the peak learning rate. The model's last conv computes its gradients with ``lax.conv_general_dilated``
(as SRResNet did before ``ops.thin_output_conv``, so every row reproduces bit for bit on the CPU); ``blocked=1``
uses the library model's 4x4-block gradients (3.75x faster for that layer, equal up to float32 rounding).
"""
from __future__ import annotations

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from jaxvision.data import photos, sr_photos
from jaxvision.metrics import BT601_LUMA, psnr
from jaxvision.models.gan import srgan

DEFAULTS = dict(steps=1000, bs=4, patch=24, blocks=16, nf=32, lr=2e-3, warm=100, pool="plusc", scales="2,3,4",
                rot=1, whole=0, chan=0, yw=0.0, bn=1, files="", inten=0.0, inv=0, seed=0, clip=0.0, ema=0.999,
                bnm=0.9, pbn=200, pbs=16, l1=0, b2=0.999, end=0.01, blocked=0, tag="")
GRAY = ("camera", "coins", "moon", "clock", "page", "text", "brick")
PLUSC = photos.TRAIN_IMAGES + ("stereo_motorcycle",)
POOLS = {"plusc": PLUSC, "gray": PLUSC + GRAY, "sk": PLUSC + photos.SKLEARN_PHOTOS,
         "sk2": PLUSC + photos.SKLEARN_PHOTOS + ("stereo_right",),
         "nat": ("astronaut", "chelsea", "stereo_motorcycle"),
         "noret": ("astronaut", "chelsea", "hubble_deep_field", "immunohistochemistry", "stereo_motorcycle")}


def load_photo(name: str, downscale: float) -> np.ndarray:
    """float32 [H, W, 3] in [0, 1], area-downscaled (a non-integer factor: PIL's box filter, the area average over
    fractional pixels); ``name`` a ``photos.photo`` name, one of ``GRAY`` (repeated to RGB), ``stereo_right`` or an
    image file path."""
    import skimage.data
    from PIL import Image

    if downscale != int(downscale):
        img = load_photo(name, 1)
        h, w = (int(s / downscale) for s in img.shape[:2])
        return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c]), mode="F").resize(
            (w, h), Image.BOX)) for c in range(3)], -1).astype(np.float32)
    if "/" in name or "." in name:
        img = np.asarray(Image.open(name).convert("RGB"), np.float32) / 255.0
    elif name in GRAY:
        img = np.repeat(getattr(skimage.data, name)()[..., None], 3, -1).astype(np.float32) / 255.0
    elif name == "stereo_right":
        img = skimage.data.stereo_motorcycle()[1].astype(np.float32) / 255.0
    else:
        return np.asarray(photos.photo(name, int(downscale)))
    return photos.area_downscale(img, int(downscale))


def orient(z: np.ndarray, hflip: bool, vflip: bool, transpose: bool, channels: np.ndarray) -> np.ndarray:
    """One of the 8 flips / 90-degree rotations of an [H, W, 3] patch, with its colour channels reordered."""
    z = z[:, ::-1] if hflip else z
    z = z[::-1] if vflip else z
    return (z.transpose(1, 0, 2) if transpose else z)[..., channels]


def batch_norm_with(momentum: float):
    return lambda train, axis: srgan.nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=1e-5)


def main(argv: list[str]) -> dict:
    original, last_conv = srgan._bn, srgan.thin_output_conv
    try:
        return ablation_run(argv)
    finally:  # the library's BatchNorm factory and last-conv convolution back, for callers in the same process
        srgan._bn, srgan.thin_output_conv = original, last_conv


def ablation_run(argv: list[str]) -> dict:
    a = dict(DEFAULTS)
    for kv in argv:
        k, v = kv.split("=")
        a[k] = type(a[k])(v)
    srgan._bn = batch_norm_with(a["bnm"])  # the model's BatchNorm factory (momentum as an ablation knob)
    if not a["blocked"]:  # the last conv's gradients as lax's own, as when the rows before session 7 were made
        srgan.thin_output_conv = lax.conv_general_dilated
    if not a["bn"]:  # no BatchNorm at all (EDSR's change to SRResNet)
        srgan._bn = lambda train, axis: (lambda x: x)
    hr_size = a["patch"] * 4
    names = POOLS[a["pool"]] + tuple(f for f in a["files"].split(",") if f)
    pool = [load_photo(n, float(s)) for n in names for s in a["scales"].split(",")]
    pool = [p for p in pool if min(p.shape[:2]) >= hr_size]
    if a["whole"]:  # whole photos on the x4 grid
        pool = [np.ascontiguousarray(p[:p.shape[0] // 4 * 4, :p.shape[1] // 4 * 4]) for p in pool]
    lows = [sr_photos.bicubic_downscale(p, 4) for p in pool] if a["whole"] else None
    rng = np.random.default_rng(a["seed"])

    def batch(size=None):
        hr = np.empty((size or a["bs"], hr_size, hr_size, 3), np.float32)
        lr = np.empty((len(hr), a["patch"], a["patch"], 3), np.float32)
        for j in range(len(hr)):
            k = rng.integers(len(pool))
            im, p = pool[k], a["patch"]
            if a["whole"]:  # aligned crops of the photo and of its whole-image LR
                y, x = rng.integers(0, im.shape[0] // 4 - p + 1), rng.integers(0, im.shape[1] // 4 - p + 1)
                hr_crop, lr_crop = im[4 * y:4 * y + hr_size, 4 * x:4 * x + hr_size], lows[k][y:y + p, x:x + p]
            else:
                y, x = rng.integers(0, im.shape[0] - hr_size + 1), rng.integers(0, im.shape[1] - hr_size + 1)
                hr_crop, lr_crop = im[y:y + hr_size, x:x + hr_size], None
            flips = (rng.random() < 0.5, a["rot"] and rng.random() < 0.5, a["rot"] and rng.random() < 0.5)
            channels = rng.permutation(3) if a["chan"] else np.arange(3)
            gain, level = (rng.uniform(1 - a["inten"], 1), rng.uniform()) if a["inten"] else (1.0, 0.0)
            negative = a["inv"] and rng.random() < 0.5

            def intensity(z):  # contrast gain about a random level, then maybe the negative (pointwise, affine)
                z = z * gain + level * (1 - gain)
                return 1 - z if negative else z

            hr[j] = intensity(orient(hr_crop, *flips, channels))
            lr[j] = (intensity(orient(lr_crop, *flips, channels)) if a["whole"]
                     else sr_photos.bicubic_downscale(np.ascontiguousarray(hr[j]), 4))
        return jnp.asarray(lr * 2 - 1), jnp.asarray(hr * 2 - 1)

    g = srgan.SRResNet(scale=4, num_blocks=a["blocks"], nf=a["nf"], bicubic_skip=True)
    v = g.init(jax.random.PRNGKey(a["seed"]), jnp.zeros((1, 24, 24, 3)), train=False)
    tx = optax.adam(optax.warmup_cosine_decay_schedule(0.0, a["lr"], a["warm"], a["steps"], a["lr"] * a["end"]),
                    b2=a["b2"])
    if a["clip"]:
        tx = optax.chain(optax.clip_by_global_norm(a["clip"]), tx)
    params, stats = v["params"], v.get("batch_stats", {})
    opt, ema, ema_stats = tx.init(params), params, stats

    @jax.jit
    def step(params, stats, opt, ema, ema_stats, lr, hr):
        def loss(p):
            out, upd = g.apply({"params": p, "batch_stats": stats}, lr, train=True, mutable=["batch_stats"])
            err = out - hr
            y_err = err @ jnp.asarray(BT601_LUMA)  # BT.601 Y of the error (the test measure)
            dist = jnp.abs if a["l1"] else (lambda z: z ** 2)  # l1=1: EDSR's L1 loss in place of the MSE
            return jnp.mean(dist(err)) + a["yw"] * jnp.mean(dist(y_err)), upd["batch_stats"]

        (value, stats), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt = tx.update(grads, opt, params)
        params = optax.apply_updates(params, updates)
        mix = lambda e, p: a["ema"] * e + (1 - a["ema"]) * p  # noqa: E731
        return params, stats, opt, jax.tree.map(mix, ema, params), jax.tree.map(mix, ema_stats, stats), value

    t0, c0 = time.time(), time.process_time()
    for i in range(a["steps"]):
        params, stats, opt, ema, ema_stats, value = step(params, stats, opt, ema, ema_stats, *batch())
        if i % 250 == 0:
            print(i, float(value), flush=True)
    jax.block_until_ready(params)
    wall, cpu = time.time() - t0, time.process_time() - c0

    def precise_stats(p):
        srgan._bn = batch_norm_with(0.0)  # momentum 0: each call returns its batch's statistics
        f = jax.jit(lambda p, s, x: g.apply({"params": p, "batch_stats": s}, x, train=True,
                                            mutable=["batch_stats"])[1]["batch_stats"])
        total = None
        for _ in range(a["pbn"]):
            s = f(p, stats, batch(a["pbs"])[0])
            total = s if total is None else jax.tree.map(jnp.add, total, s)
        srgan._bn = batch_norm_with(a["bnm"])
        return jax.tree.map(lambda x: x / a["pbn"], total)

    variants = {"raw": (params, stats), "ema": (ema, ema_stats)}
    if a["pbn"] and a["bn"]:
        variants.update({"raw_pbn": (params, precise_stats(params)), "ema_pbn": (ema, precise_stats(ema))})
    tests = sr_photos.whole_images("test", 4, 2)

    def y_psnr(sr, hr):
        return float(psnr(sr[None], hr[None], y_channel=True, crop_border=4)[0])

    bicubic = [y_psnr(sr_photos.bicubic_upscale(lr, 4), hr) for lr, hr in tests]
    out = {}
    for key, (p, s) in variants.items():
        gains = []
        for (lr, hr), b in zip(tests, bicubic):
            o = np.asarray(g.apply({"params": p, "batch_stats": s}, jnp.asarray(lr * 2 - 1)[None], train=False))[0]
            gains.append(y_psnr(np.clip((o + 1) / 2, 0, 1), hr) - b)
        out[key] = [round(float(np.mean(gains)), 3)] + [round(x, 3) for x in gains]
    result = dict(args=argv, **out, wall=round(wall), cpu=round(cpu), load=open("/proc/loadavg").read().split()[:3])
    print("RESULT", json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
