"""``fit``: the generic training loop (progress bar, periodic eval, metrics.jsonl, checkpoints, exact resume).

The loop never imports a model: it receives a state, a pure step function and a data set. Step ``s`` always reads
batch ``s % len(data)`` of epoch ``s // len(data)`` and the step's PRNG key is derived from ``(state.rng, step)``,
so a run that is killed and resumed from its last checkpoint computes exactly what an uninterrupted run computes.

Non-finite losses are detected at every log and checkpoint boundary (the per-step losses stay on device in between,
so the loop does not block every step); the run then stops with ``NonFiniteLossError`` naming the first bad step,
and no checkpoint is written after it, so the last good checkpoint remains the latest.

Run options (all off by default): ``tensorboard`` (event files with every logged scalar and the images hooks
return), ``async_checkpoint`` (Orbax writes in the background; every save is finished before the next one and
before ``fit`` returns or raises), ``keep_best`` (the best checkpoint by an eval metric in ``checkpoints_best/``,
besides the latest ones; resuming still uses the latest) and ``profile_steps`` (a ``jax.profiler`` trace of a
range of steps in ``WORKDIR/profile``).
"""
from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jaxvision.train import parallel
from jaxvision.train.checkpoint import BEST_DIR, BEST_MODES, CheckpointError, CheckpointManager
from jaxvision.train.log_writer import MetricsWriter


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; ``step`` is the first step (1-based update count) affected."""

    def __init__(self, step: int, value: float, last_checkpoint: int | None):
        self.step, self.value, self.last_checkpoint = step, value, last_checkpoint
        kept = f"the last good checkpoint (step {last_checkpoint}) is kept" if last_checkpoint is not None else \
            "no checkpoint had been written yet"
        super().__init__(f"non-finite loss {value} at step {step}; training stopped, {kept}. Lower the learning "
                         "rate or check the data, then rerun to resume.")


PROFILE_DIR = "profile"


class RunOptionError(ValueError):
    """A bad run option of ``fit`` (learning_rate, keep_best, keep_best_mode, profile_steps), or a ``keep_best``
    metric the evals do not report."""

LearningRate = float | Callable[[int], Any]


def _check_options(learning_rate, keep_best, keep_best_mode, eval_fn, profile_steps):
    """Validate the run options before anything is written; returns ``({name: schedule}, profile range)``."""
    if learning_rate is None:
        rates = {}
    elif isinstance(learning_rate, Mapping):
        rates = dict(learning_rate)
    else:
        rates = {"learning_rate": learning_rate}
    for name, lr in rates.items():
        if not (callable(lr) or isinstance(lr, (int, float))) or isinstance(lr, bool):
            raise RunOptionError(f"learning_rate[{name!r}]: expected a float or a schedule step -> float, got {lr!r}")
    if keep_best is not None:
        if not isinstance(keep_best, str) or not keep_best:
            raise RunOptionError(f"keep_best: expected the name of an eval metric, got {keep_best!r}")
        if eval_fn is None:
            raise RunOptionError(f"keep_best={keep_best!r}: needs an eval_fn (the metric comes from the evals)")
    if keep_best_mode not in BEST_MODES:
        raise RunOptionError(f"keep_best_mode: expected one of {BEST_MODES}, got {keep_best_mode!r}")
    if profile_steps is not None:
        ok = (isinstance(profile_steps, (tuple, list)) and len(profile_steps) == 2
              and all(isinstance(v, int) and not isinstance(v, bool) for v in profile_steps))
        if not ok or not 1 <= profile_steps[0] <= profile_steps[1]:
            raise RunOptionError(f"profile_steps: expected (N, M) with 1 <= N <= M (trace steps N..M), got "
                             f"{profile_steps!r}")
        profile_steps = (int(profile_steps[0]), int(profile_steps[1]))
    return rates, profile_steps


def _rates_at(rates: dict, count: int) -> dict[str, float]:
    return {name: float(lr(count)) if callable(lr) else float(lr) for name, lr in rates.items()}


def _mean_metrics(buffer: list[dict]) -> dict[str, float]:
    host = jax.device_get(buffer)
    return {k: float(np.mean([np.mean(m[k]) for m in host])) for k in host[0]}


def fit(state, train_step: Callable, train_data, *, num_steps: int, workdir: str, experiment: str,
        config: Any = None, eval_fn: Callable[[Any], dict] | None = None, eval_every: int = 0,
        checkpoint_every: int = 500, keep: int = 3, log_every: int = 50, resume: bool = True,
        data_parallel: bool = False, progress: bool = True, tensorboard: bool = False,
        hooks: Sequence[Callable[[int, Any], Any]] = (), device_prefetch: int = 2,
        learning_rate: LearningRate | Mapping[str, LearningRate] | None = None, async_checkpoint: bool = False,
        keep_best: str | None = None, keep_best_mode: str = "max",
        profile_steps: tuple[int, int] | None = None) -> tuple[Any, dict]:
    """Train ``state`` for ``num_steps`` steps (counting steps done before a resume).

    Args:
      state: the initial state (a pytree with an int ``step``, e.g. ``TrainState``); replaced by the latest
        checkpoint in ``workdir`` if ``resume``.
      train_step: pure ``(state, batch) -> (state, metrics)`` with a ``'loss'`` metric; jitted here, or pmapped
        (build it with ``make_train_step(loss_fn, axis_name='batch')``) if ``data_parallel``.
      train_data: a ``jaxvision.data.Dataset`` (anything with ``len()`` and ``batch(i, epoch)``; its
        ``steps(start, stop)``, if it has one, yields the same batches built ahead, e.g. by grain workers). With
        ``data_parallel`` its batches are sharded to the local devices unless it already has ``num_devices``.
      num_steps: total optimizer steps of the run.
      workdir: run directory: checkpoints/, metrics.jsonl.
      experiment, config: stored in every checkpoint; a workdir of another experiment is refused.
      eval_fn: ``(state) -> dict of floats``, called with the unreplicated state every ``eval_every`` steps (0:
        only at the end) and at the end; results are logged with split 'eval'.
      checkpoint_every, keep: checkpoint cadence and retention (a checkpoint is always written at the end).
      log_every: steps between 'train' records (mean metrics over the interval, steps_per_sec, and the learning
        rate(s) of the interval's last update if ``learning_rate`` is given).
      resume: restore the latest checkpoint of ``workdir`` first (default); with False a workdir that already
        holds checkpoints is refused (CheckpointError) instead of being overwritten.
      data_parallel: replicate the state on all local devices and pmap the step.
      progress: show a tqdm progress bar (stderr).
      tensorboard: also write every logged scalar, and the images hooks return, as TensorBoard event files in
        ``workdir/tensorboard`` (process 0; needs tensorboardX, not TensorFlow).
      hooks: callables ``hook(step, state)`` run after every step, its logging and checkpointing (e.g. to save
        sample images); ``state`` is replicated if ``data_parallel``. A hook may return ``{tag: image}`` (uint8
        [H, W, C], float in [0, 1], or a PNG path), which goes to TensorBoard as images at that step.
      device_prefetch: batches transferred to the device(s) ahead of the step that reads them (0: none).
      learning_rate: the optimizer's learning rate, logged with every 'train' record: a float, a schedule
        ``count -> lr`` (the optax schedule the optimizer uses; evaluated on the host at the last update's
        count), or ``{metric name: float or schedule}`` for several optimizers (e.g. a GAN's G and D).
      async_checkpoint: Orbax writes checkpoints in a background thread; each save is finished before the next
        one starts and before ``fit`` returns or raises (NaN stop, KeyboardInterrupt).
      keep_best, keep_best_mode: also keep the checkpoint with the best (``'max'`` or ``'min'``) value of this
        eval metric in ``workdir/checkpoints_best`` (one step; its metadata holds the eval metrics). Resuming
        still restores the latest checkpoint of ``workdir/checkpoints``. Needs ``eval_fn``.
      profile_steps: ``(N, M)``: a ``jax.profiler`` trace of steps N..M (1-based update counts) into
        ``workdir/profile`` (view with TensorBoard's profile plugin or Perfetto); the state is blocked on before
        the trace starts and before it stops, so the trace holds exactly those steps' device work.

    Returns:
      ``(state, summary)``: the final (unreplicated) state and a dict with the last train metrics and, if
      ``eval_fn`` is given, the final eval metrics.

    Raises:
      NonFiniteLossError: a loss became NaN/inf (nothing is saved after the last good checkpoint).
      CheckpointError: the workdir's checkpoint is corrupt or belongs to another experiment.
      RunOptionError: a bad run option (a ValueError, raised before anything is written), or an eval without the
        ``keep_best`` metric (checkpoints already written stay).
    """
    from tqdm.auto import tqdm

    rates, profile_steps = _check_options(learning_rate, keep_best, keep_best_mode, eval_fn, profile_steps)
    ckpt = CheckpointManager(workdir, experiment, config, every=checkpoint_every, keep=keep,
                             async_save=async_checkpoint)
    if resume:
        try:
            state = ckpt.restore(state)
        except BaseException:
            ckpt.close()  # Orbax's threads must not outlive the error (no "Event loop is closed" at exit)
            raise
        changes = ckpt.config_changes()
        if changes:
            warnings.warn(f"resuming {experiment} in {workdir} with a changed config: " + ", ".join(
                f"{k}: {a!r} -> {b!r}" for k, a, b in ((k, *v) for k, v in changes.items())), stacklevel=2)
    elif ckpt.latest_step() is not None:
        latest = ckpt.latest_step()
        ckpt.close()
        raise CheckpointError(f"workdir {workdir} already holds checkpoints (latest step {latest}) and "
                              "resume=False would overwrite them; choose another workdir")
    start = int(jax.device_get(state.step))
    best = None
    if keep_best is not None:
        try:
            best = CheckpointManager(workdir, experiment, config, keep=1, async_save=async_checkpoint,
                                     directory=BEST_DIR, best_metric=keep_best, best_mode=keep_best_mode)
        except BaseException:
            ckpt.close()
            raise
    try:
        writer = MetricsWriter(workdir, resume_step=start, tensorboard=tensorboard)
    except BaseException:
        ckpt.close()
        if best is not None:
            best.close()
        raise
    n_batches = len(train_data)
    shard = data_parallel and not getattr(train_data, "num_devices", None)
    if data_parallel:
        step_fn = parallel.pmap_step(train_step, donate_state=jax.default_backend() != "cpu")
        dstate = parallel.replicate(state)
        host_state = lambda s: parallel.unreplicate(s)  # noqa: E731
    else:
        step_fn = jax.jit(train_step, donate_argnums=(0,) if jax.default_backend() != "cpu" else ())
        dstate = state
        host_state = lambda s: s  # noqa: E731

    summary: dict = {}
    pending: list[tuple[int, Any]] = []  # (step, device loss) not yet checked for finiteness
    buffer: list[dict] = []
    last_ckpt = ckpt.latest_step()
    bar = tqdm(total=num_steps, initial=start, disable=not progress, desc=experiment, dynamic_ncols=True,
               mininterval=0.5)
    t0, s0 = time.time(), start

    def check_finite():
        if not pending:
            return
        losses = jax.device_get([loss for _, loss in pending])
        for (s, _), loss in zip(pending, losses):
            value = float(np.mean(loss))
            if not math.isfinite(value):
                writer.write(s, "non_finite", {"loss": value})
                raise NonFiniteLossError(s, value, last_ckpt)
        pending.clear()

    def run_eval(step):
        state_now = host_state(dstate)
        metrics = {k: float(v) for k, v in eval_fn(state_now).items()}
        writer.write(step, "eval", metrics)
        if best is not None:
            if keep_best not in metrics:
                raise RunOptionError(f"keep_best={keep_best!r}: not an eval metric of {experiment}; its eval metrics: "
                                 f"{', '.join(sorted(metrics))}")
            if best.is_better(metrics[keep_best]):
                best.save(state_now, force=True, metrics=metrics)
        summary.update({f"eval_{k}": v for k, v in metrics.items()})
        bar.write(f"[{experiment}] step {step} eval " + " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))

    if hasattr(train_data, "steps"):
        host_batches = train_data.steps(start, num_steps)
    else:
        host_batches = (train_data.batch(k % n_batches, k // n_batches) for k in range(start, num_steps))
    batches = parallel.prefetch_to_device(host_batches, device_prefetch, parallel.shard if shard else None)
    profile_dir = os.path.join(workdir, PROFILE_DIR)
    tracing = False
    try:
        for step, batch in zip(range(start, num_steps), batches):
            if profile_steps is not None and not tracing and profile_steps[0] <= step + 1 <= profile_steps[1]:
                jax.block_until_ready(dstate)
                jax.profiler.start_trace(profile_dir)
                tracing = True
            dstate, metrics = step_fn(dstate, batch)
            done = step + 1
            if tracing and done >= profile_steps[1]:
                jax.block_until_ready(dstate)
                jax.profiler.stop_trace()
                tracing = False
            pending.append((done, metrics["loss"]))
            buffer.append(metrics)
            bar.update(1)
            if done % log_every == 0 or done == num_steps:
                check_finite()
                mean = _mean_metrics(buffer)
                now = time.time()
                mean["steps_per_sec"] = (done - s0) / max(now - t0, 1e-9)
                mean.update(_rates_at(rates, done - 1))  # the optimizer's count at the last update was done - 1
                t0, s0 = now, done
                writer.write(done, "train", mean)
                summary.update(mean)
                buffer.clear()
                bar.set_postfix(loss=f"{mean['loss']:.4g}")
            if eval_fn is not None and eval_every and done % eval_every == 0 and done != num_steps:
                run_eval(done)
            if ckpt.should_save(done) or done == num_steps:
                check_finite()
                if ckpt.save(host_state(dstate), force=True):
                    last_ckpt = done
            for hook in hooks:
                images = hook(done, dstate)
                if images:
                    writer.write_images(done, images)
        check_finite()
        if start >= num_steps:  # nothing to train: make sure the final state is on disk
            ckpt.save(host_state(dstate), force=True)
        if eval_fn is not None:
            run_eval(max(start, num_steps))
    finally:
        if tracing:  # stopped early (error, interrupt, or the run ended before step M)
            jax.profiler.stop_trace()
        batches.close()
        bar.close()
        writer.close()
        ckpt.close()  # waits for an asynchronous save in flight
        if best is not None:
            best.close()
    return host_state(dstate), summary
