"""mode_collapse: the four GAN losses x 5 seeds on the 2-D ring and grid mixtures (VEEGAN / PacGAN protocol).

For every data set ('ring': 8 modes, 'grid': 25 modes, from ``jaxvision.data``'s ``mixture``) and every loss
(minimax, non_saturating, least_squares, hinge), an MLP GAN is trained with ``seeds`` seeds at once (the seeds are
vmapped, the steps scanned, so each (data, loss) pair compiles once). Then 2,500 samples per seed are scored with
``jaxvision.metrics.generative.mode_collapse``: modes captured, % high-quality samples (within 3 sigma of their
nearest mode)
and the reverse KL of the mode assignments; the table reports mean ± std across seeds.

Also the diminished-gradient demonstration: the generator is frozen at its initialization and the discriminator
trained alone until it confidently rejects the fakes; at every D step the norm of the generator's gradient is
measured under the saturating (minimax) and the non-saturating loss.

Writes into the workdir: ``metrics.jsonl`` (train records per chunk, 'result' and 'grad_demo' records),
``results.md`` (the table), ``samples.png`` (seed-0 samples of every run over the modes), ``grad_norm.png``
and one checkpoint directory per (data, loss) run (``<kind>_<loss>/checkpoints``, all seeds in one checkpoint).
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from experiments._run_options import RunOptions
from jaxvision import data
from jaxvision.data import mixture
from jaxvision.metrics.generative.mode_collapse import NUM_SAMPLES, mode_collapse_stats
from jaxvision.models.gan.mlp_gan import MLPDiscriminator, MLPGenerator
from jaxvision.train import CheckpointManager, MetricsWriter
from jaxvision.train.gan import LOSSES, GANState, discriminator_loss, generator_loss, latent_noise, make_gan_step

NAME = "mode_collapse"


@dataclasses.dataclass
class Config(RunOptions):
    EVALS_DURING_TRAINING = False     # no eval metric in fit: keep_best is refused

    kinds: tuple[Literal["ring", "grid"], ...] = ("ring", "grid")
    losses: tuple[Literal[LOSSES], ...] = LOSSES
    seeds: int = 5
    num_steps: int = 5000
    batch_size: int = 256
    latent_dim: int = 2
    g_hidden: tuple[int, ...] = (128, 128, 128)
    d_hidden: tuple[int, ...] = (128, 128)
    learning_rate: float = 1e-3
    b1: float = 0.5
    num_samples: int = NUM_SAMPLES
    chunk: int = 1000                 # steps per compiled scan call (one metrics record and checkpoint each)
    grad_demo_steps: int = 300        # D-only steps of the diminished-gradient demonstration (0: skip)


EVAL_KEYS = ("num_samples",)
TINY = dict(kinds=("ring",), losses=("minimax", "hinge"), seeds=2, num_steps=20, batch_size=32,
            g_hidden=(16, 16), d_hidden=(16,), chunk=10, num_samples=200, grad_demo_steps=10)


class SeedStates(struct.PyTreeNode):
    """All seeds' GANStates (leading axis = seed) with a scalar step, so one checkpoint holds the whole run."""

    step: jax.Array
    states: GANState


def _models(cfg: Config):
    return MLPGenerator(hidden=tuple(cfg.g_hidden)), MLPDiscriminator(hidden=tuple(cfg.d_hidden))


def make_state(cfg: Config, seed) -> GANState:
    g, d = _models(cfg)
    kg, kd, kr = jax.random.split(jax.random.PRNGKey(seed), 3)
    tx = optax.adam(cfg.learning_rate, b1=cfg.b1)
    return GANState.create(
        g_apply_fn=g.apply, g_variables=g.init(kg, jnp.zeros((1, cfg.latent_dim))),
        d_apply_fn=d.apply, d_variables=d.init(kd, jnp.zeros((1, 2))), g_tx=tx, d_tx=tx, rng=kr,
    )


def _seed_states(cfg: Config) -> SeedStates:
    states = jax.vmap(lambda s: make_state(cfg, s))(jnp.arange(cfg.seeds))
    return SeedStates(step=jnp.zeros((), jnp.int32), states=states)


def _real_chunk(cfg: Config, kind: str, start: int, n: int) -> np.ndarray:
    """Real points float32 [n, seeds, B, 2] for steps start..start+n (seed s reads its own mixture stream)."""
    out = []
    for s in range(cfg.seeds):
        ds = data.load("mixture", "train", cfg.batch_size, seed=s, kind=kind)
        nb = len(ds)
        out.append(np.stack([ds.batch(t % nb, t // nb)["x"] for t in range(start, start + n)]))
    return np.stack(out, 1)


def _samples(cfg: Config, states: GANState, n: int) -> np.ndarray:
    """Generator samples float32 [seeds, n, 2] from the same fixed noise for every seed."""
    z = latent_noise(jax.random.PRNGKey(1234), n, (cfg.latent_dim,))
    return np.asarray(jax.jit(jax.vmap(lambda s: s.generate(z)))(states))


def train_one(cfg: Config, kind: str, loss: str, workdir: str, writer: MetricsWriter,
              profile: bool = False) -> SeedStates:
    """Train all seeds of one (data, loss) run, resuming from its checkpoint; returns the final SeedStates.

    With ``profile`` and ``cfg.profile_steps = (N, M)``, the chunks holding steps N..M are traced with
    ``jax.profiler`` into ``workdir/profile`` (a chunk is one compiled call, so the trace covers whole chunks)."""
    step = jax.vmap(make_gan_step(loss, latent_shape=(cfg.latent_dim,), axis_name=None))

    @jax.jit
    def run_chunk(bundle: SeedStates, reals):
        states, metrics = jax.lax.scan(step, bundle.states, reals)
        return SeedStates(step=bundle.step + reals.shape[0], states=states), metrics

    ckpt = CheckpointManager(os.path.join(workdir, f"{kind}_{loss}"), NAME, cfg, every=cfg.chunk, keep=1,
                             async_save=cfg.async_checkpoint)
    first, last = cfg.profile_steps if profile and cfg.profile_steps is not None else (0, -1)
    tracing = False
    try:
        bundle = ckpt.restore(_seed_states(cfg))
        while int(bundle.step) < cfg.num_steps:
            start = int(bundle.step)
            n = min(cfg.chunk, cfg.num_steps - start)
            reals = jnp.asarray(_real_chunk(cfg, kind, start, n))
            if not tracing and start < last and start + n >= first:
                jax.profiler.start_trace(os.path.join(workdir, "profile"))
                tracing = True
            bundle, metrics = run_chunk(bundle, reals)
            if tracing and start + n >= last:
                jax.block_until_ready(bundle)
                jax.profiler.stop_trace()
                tracing = False
            m = {k: float(np.mean(v)) for k, v in jax.device_get(metrics).items()}
            m["non_finite_steps"] = int(np.sum(np.asarray(metrics["finite"]) == 0))
            m["learning_rate"] = cfg.learning_rate  # constant (Adam without a schedule), for the logs
            writer.write(int(bundle.step), f"train/{kind}/{loss}", m)
            ckpt.save(bundle, force=True)
    finally:
        if tracing:
            jax.profiler.stop_trace()
        ckpt.close()
    return bundle


def _stats(cfg: Config, kind: str, samples: np.ndarray) -> dict:
    per_seed = [mode_collapse_stats(x, mixture.modes(kind), mixture.sigma(kind)) for x in samples]
    out = {}
    for key in ("modes_captured", "high_quality", "reverse_kl"):
        v = np.array([s[key] for s in per_seed], np.float64)
        out[key], out[key + "_std"] = float(v.mean()), float(v.std())
        out[key + "_per_seed"] = v.tolist()
    out["num_modes"] = per_seed[0]["num_modes"]
    return out


def grad_demo(cfg: Config, writer: MetricsWriter | None = None, kind: str = "ring") -> dict:
    """Diminished gradient: ||grad_G|| of the saturating vs non-saturating loss while D learns to reject G(z).

    G is frozen at its initialization (seed 0); D is trained alone (BCE, Adam) for ``grad_demo_steps`` steps on
    ``kind`` data. Returns per-step arrays ``d_fake`` (mean D(G(z))), ``grad_minimax`` and ``grad_non_saturating``.
    """
    state = make_state(cfg, 0)
    ds = data.load("mixture", "train", cfg.batch_size, seed=0, kind=kind)
    reals = jnp.asarray(np.stack([ds.batch(t % len(ds), t // len(ds))["x"] for t in range(cfg.grad_demo_steps)]))
    z = latent_noise(jax.random.PRNGKey(7), cfg.batch_size, (cfg.latent_dim,))

    def g_norm(d_params, loss):
        def f(gp):
            fake = state.g_apply_fn({"params": gp}, z)
            return generator_loss(loss, state.d_apply_fn({"params": d_params}, fake))

        return optax.global_norm(jax.grad(f)(state.g_params))

    @jax.jit
    def run(d_params, d_opt):
        fake = state.g_apply_fn({"params": state.g_params}, z)

        def body(carry, x_real):
            dp, opt = carry
            logits = state.d_apply_fn({"params": dp}, fake)
            rec = (jnp.mean(jax.nn.sigmoid(logits)), g_norm(dp, "minimax"), g_norm(dp, "non_saturating"))
            grads = jax.grad(lambda p: discriminator_loss(
                "minimax", state.d_apply_fn({"params": p}, x_real), state.d_apply_fn({"params": p}, fake)))(dp)
            upd, opt = state.d_tx.update(grads, opt, dp)
            return (optax.apply_updates(dp, upd), opt), rec

        return jax.lax.scan(body, (d_params, d_opt), reals)[1]

    d_fake, g_mm, g_ns = (np.asarray(a) for a in run(state.d_params, state.d_opt_state))
    if writer is not None:
        for t in range(len(d_fake)):
            writer.write(t, "grad_demo", {"d_fake": d_fake[t], "grad_minimax": g_mm[t], "grad_non_saturating": g_ns[t]})
    return {"d_fake": d_fake, "grad_minimax": g_mm, "grad_non_saturating": g_ns}


def _plot_samples(path: str, panels: list[tuple[str, np.ndarray, np.ndarray]], ncol: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3 * ncol, 3 * nrow), squeeze=False)
    for ax, (title, pts, modes) in zip(axes.ravel(), panels):
        pts = pts[np.all(np.isfinite(pts), 1)]
        ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.4)
        ax.scatter(modes[:, 0], modes[:, 1], s=12, c="red", marker="x")
        pad = 0.5 * (np.ptp(modes) / 4 + 0.5)
        ax.set_xlim(modes[:, 0].min() - pad, modes[:, 0].max() + pad)
        ax.set_ylim(modes[:, 1].min() - pad, modes[:, 1].max() + pad)
        ax.set_title(title, fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_grad(path: str, demo: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    t = np.arange(len(demo["d_fake"]))
    ax.semilogy(t, demo["grad_minimax"], label="||grad G||, minimax (saturating)")
    ax.semilogy(t, demo["grad_non_saturating"], label="||grad G||, non-saturating")
    ax.set_xlabel("discriminator steps (G frozen)")
    ax2 = ax.twinx()
    ax2.plot(t, demo["d_fake"], "k--", lw=1, label="mean D(G(z))")
    ax2.set_ylabel("mean D(G(z))")
    ax.legend(loc="lower left", fontsize=7)
    ax2.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _table(results: dict) -> str:
    lines = ["| data | loss | modes captured | high quality (%) | reverse KL |", "|---|---|---:|---:|---:|"]
    for (kind, loss), r in results.items():
        lines.append(f"| {kind} ({r['num_modes']} modes) | {loss} | {r['modes_captured']:.1f} ± "
                     f"{r['modes_captured_std']:.1f} | {100 * r['high_quality']:.1f} ± "
                     f"{100 * r['high_quality_std']:.1f}"
                     f" | {r['reverse_kl']:.3f} ± {r['reverse_kl_std']:.3f} |")
    return "\n".join(lines)


def _report(cfg: Config, workdir: str, bundles: dict, writer: MetricsWriter) -> dict:
    results, panels = {}, []
    for (kind, loss), bundle in bundles.items():
        samples = _samples(cfg, bundle.states, cfg.num_samples)
        results[(kind, loss)] = r = _stats(cfg, kind, samples)
        writer.write(int(bundle.step), f"result/{kind}/{loss}",
                     {k: v for k, v in r.items() if not k.endswith("per_seed")})
        panels.append((f"{kind} / {loss}\nmodes {r['modes_captured']:.1f}, hq {100 * r['high_quality']:.0f}%",
                       samples[0], mixture.modes(kind)))
    table = _table(results)
    with open(os.path.join(workdir, "results.md"), "w") as f:
        f.write(f"{cfg.seeds} seeds, {cfg.num_steps} steps, batch {cfg.batch_size}, {cfg.num_samples} samples\n\n")
        f.write(table + "\n")
    _plot_samples(os.path.join(workdir, "samples.png"), panels, ncol=len(cfg.losses))
    print(table, flush=True)
    return {f"{k}/{l}/{m}": v for (k, l), r in results.items() for m, v in r.items() if not m.endswith("per_seed")}


def _run(cfg: Config, workdir: str, train: bool) -> dict:
    os.makedirs(workdir, exist_ok=True)
    writer = MetricsWriter(workdir, tensorboard=train and cfg.tensorboard)
    t0 = time.time()
    try:
        bundles = {}
        for kind in cfg.kinds:
            for loss in cfg.losses:
                if train:
                    bundles[(kind, loss)] = train_one(cfg, kind, loss, workdir, writer, profile=not bundles)
                else:
                    with CheckpointManager(os.path.join(workdir, f"{kind}_{loss}"), NAME, cfg) as ckpt:
                        if ckpt.latest_step() is None:
                            raise FileNotFoundError(f"no checkpoint for {kind}/{loss} in {workdir}; train first")
                        bundles[(kind, loss)] = ckpt.restore(_seed_states(cfg))
        out = _report(cfg, workdir, bundles, writer)
        writer.write_images(cfg.num_steps, {"samples": os.path.join(workdir, "samples.png")})  # TensorBoard only
        if train and cfg.grad_demo_steps:
            demo = grad_demo(cfg, writer)
            _plot_grad(os.path.join(workdir, "grad_norm.png"), demo)
            for key in ("d_fake", "grad_minimax", "grad_non_saturating"):
                out[f"grad_demo/{key}_first"] = float(demo[key][0])
                out[f"grad_demo/{key}_last"] = float(demo[key][-1])
        out["wall_seconds"] = time.time() - t0
        writer.write(cfg.num_steps, "summary", {"wall_seconds": out["wall_seconds"]})
    finally:
        writer.close()
    return out


def train(cfg: Config, workdir: str) -> dict:
    """Train every (data, loss) run (resuming finished/partial ones), then score, tabulate and plot."""
    return _run(cfg, workdir, train=True)


def evaluate(cfg: Config, workdir: str) -> dict:
    """Re-score the checkpoints of ``workdir``: rewrites results.md and samples.png."""
    return _run(cfg, workdir, train=False)
