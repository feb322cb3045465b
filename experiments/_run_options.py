"""Run options every training experiment accepts (all off by default, so a run computes what it did without them).

``RunOptions`` is a dataclass mixin: each experiment's ``Config`` inherits its fields, so they are config keys
(``--set tensorboard=true``) stored in checkpoints like any other. ``fit_options(cfg)`` turns them into the
keyword arguments of ``jaxvision.train.fit``:

- ``tensorboard``: TensorBoard event files in ``WORKDIR/tensorboard/`` (tensorboardX, no TensorFlow): every
  logged scalar (loss, learning rate, gradient norm, eval metrics, steps/s) and images (GAN sample grids,
  detector / classifier prediction images); metrics.jsonl is written as before;
- ``async_checkpoint``: Orbax writes checkpoints in a background thread;
- ``keep_best`` / ``keep_best_mode``: also keep the checkpoint with the best eval metric (``max`` or ``min``) in
  ``WORKDIR/checkpoints_best/`` (experiments with periodic evals during training: ``eval_every``);
- ``profile_steps``: ``(N, M)``: a ``jax.profiler`` trace of steps N..M in ``WORKDIR/profile/``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

from experiments import ExperimentError

RUN_OPTION_KEYS = ("tensorboard", "async_checkpoint", "keep_best", "keep_best_mode", "profile_steps")


@dataclasses.dataclass
class RunOptions:
    """Config fields of the run options (see the module docstring); checked when the config is built, so a bad
    value is refused before anything is written.

    ``EVALS_DURING_TRAINING`` (a class attribute, not a field): False for the experiments whose ``fit`` call
    has no eval metric (the GANs), which refuse ``keep_best``.
    """

    EVALS_DURING_TRAINING: ClassVar[bool] = True

    tensorboard: bool = False                     # TensorBoard event files in WORKDIR/tensorboard
    async_checkpoint: bool = False                # Orbax writes checkpoints in the background
    keep_best: str | None = None                  # eval metric whose best checkpoint goes to checkpoints_best/
    keep_best_mode: Literal["max", "min"] = "max"
    profile_steps: tuple[int, int] | None = None  # (N, M): jax.profiler trace of steps N..M in WORKDIR/profile

    def __post_init__(self):
        if self.keep_best is not None:
            if not self.keep_best.strip():
                raise ExperimentError("--set keep_best=: expected the name of an eval metric (or none), got ''")
            if not self.EVALS_DURING_TRAINING:
                name = type(self).__module__.rsplit(".", 1)[-1]
                raise ExperimentError(f"--set keep_best={self.keep_best}: experiment {name!r} has no eval metric "
                                      "during training (keep_best works for the experiments with eval_every)")
        if self.profile_steps is not None:
            p = tuple(self.profile_steps)
            if len(p) != 2 or not 1 <= p[0] <= p[1]:
                raise ExperimentError(f"--set profile_steps={p}: expected (N, M) with 1 <= N <= M (trace steps "
                                      "N..M)")


def fit_options(cfg) -> dict[str, Any]:
    """The run options of ``cfg`` (a ``RunOptions`` config) as keyword arguments of ``jaxvision.train.fit``."""
    return dict(tensorboard=cfg.tensorboard, async_checkpoint=cfg.async_checkpoint, keep_best=cfg.keep_best,
                keep_best_mode=cfg.keep_best_mode,
                profile_steps=None if cfg.profile_steps is None else tuple(cfg.profile_steps))


def log_images(cfg, workdir: str, step: int, images: dict[str, Any]) -> None:
    """With ``cfg.tensorboard``: add ``{tag: image array or PNG path}`` to ``workdir``'s TensorBoard event files
    (e.g. the prediction PNG the final evaluation wrote); nothing otherwise."""
    if not getattr(cfg, "tensorboard", False):
        return
    from jaxvision.train import MetricsWriter

    writer = MetricsWriter(workdir, tensorboard=True)
    try:
        writer.write_images(step, images)
    finally:
        writer.close()
