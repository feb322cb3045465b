"""Checkpoints: a thin wrapper over Orbax's ``CheckpointManager`` that knows which experiment owns a workdir.

Layout of a workdir::

    WORKDIR/
      checkpoints/
        <step>/                 one directory per saved step (the last ``keep`` are kept)
          state/                the train state's arrays (Orbax StandardSave: params, batch_stats, opt_state,
                                step, rng; any pytree state works, e.g. a GANState)
          meta/metadata         JSON: {"experiment": name, "config": {...}, "step": step, "jaxvision": version}
          _CHECKPOINT_METADATA  Orbax's own bookkeeping
      checkpoints_best/<step>/  with ``fit(keep_best=METRIC)``: the one checkpoint with the best eval METRIC so far
                                (same layout; its meta also holds the eval "metrics")
      metrics.jsonl             one JSON object per log/eval event (written by the loop)

Atomicity: Orbax writes a step into ``<step>.orbax-checkpoint-tmp-*`` and renames it to ``<step>`` only when
every file is complete, so a process killed in the middle of a save leaves at most a tmp directory, which is never
read (and is deleted when the manager next opens the directory). The latest finished step is always intact.

Safety: opening a workdir whose newest readable checkpoint belongs to another experiment raises ``CheckpointError``
before anything is written; so does a workdir none of whose checkpoints can be read. Orbax refuses to save over an
existing step.

Corruption: every checkpoint's ``meta/metadata`` holds ``state_sha256``, a digest of the state's arrays (dtype,
shape, bytes), checked on restore, so a mangled array file is an error, never a silently different state.
``restore()`` of the latest step falls back to the newest step that restores and verifies: each newer step that
does not (while an older one of the same experiment does, so it is corrupt, not a different model) is moved aside
to ``checkpoints/corrupt-<step>`` (never deleted) with a one-line warning on stderr naming it. ``restore(step=N)``
restores exactly that step or raises.

Asynchronous saving (``async_save=True``): Orbax writes the arrays in a background thread after ``save`` has
copied them to host memory, so training continues during the write. A save always finishes before the next one
starts (``save`` waits first), before any restore or inspection, and before ``close``; the step directory only
gets its final name when the write is complete, so an unfinished asynchronous save is never read as a checkpoint.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import json
import os
import sys
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"
BEST_DIR = "checkpoints_best"  # fit(keep_best=...): the best checkpoint by an eval metric
BEST_MODES = ("max", "min")


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used: unreadable, corrupt, or written by another experiment."""


CORRUPT_PREFIX = "corrupt-"  # a corrupt step directory is renamed to checkpoints/corrupt-<step>[-<n>]


_PINNED_STEP: contextvars.ContextVar[int | None] = contextvars.ContextVar("jaxvision_pinned_step", default=None)


@contextlib.contextmanager
def pinned_step(step: int | None):
    """Within the block, ``CheckpointManager.restore()`` and ``metadata()`` without a step use exactly ``step``
    (no fallback) instead of the newest readable one: ``jaxvision eval --step N``. ``None`` changes nothing."""
    token = _PINNED_STEP.set(None if step is None else int(step))
    try:
        yield
    finally:
        _PINNED_STEP.reset(token)


def state_digest(state) -> str:
    """sha256 (hex) over the state's leaves in tree order: dtype, shape and bytes of each (typed PRNG keys by their
    key data). Stored with every checkpoint and compared on restore."""
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(state):
        if hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        a = np.ascontiguousarray(np.asarray(jax.device_get(leaf)))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _jsonable(config: Any) -> Any:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    return json.loads(json.dumps(config, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


class CheckpointManager:
    """Save every ``every`` steps, keep the last ``keep``, restore the latest.

    Args:
      workdir: the run's directory; checkpoints go to ``workdir/checkpoints``.
      experiment: name of the experiment owning the workdir (stored in every checkpoint, checked on open).
      config: the experiment's config (dataclass or dict), stored as JSON next to the arrays.
      every: save when ``step % every == 0`` (``save(..., force=True)`` saves regardless, e.g. at the end).
      keep: how many of the latest checkpoints to keep (older ones are deleted after a successful save); with
        ``best_metric``: how many of the best ones.
      async_save: write in a background thread (see the module docstring); ``save`` returns once the arrays are
        copied to host memory.
      directory: the subdirectory of ``workdir`` holding the steps (``BEST_DIR`` for the keep-best checkpoint).
      best_metric, best_mode: keep the ``keep`` checkpoints with the highest (``'max'``) or lowest (``'min'``)
        value of this metric, passed to ``save(..., metrics=...)`` (Orbax's ``best_fn`` / ``best_mode``).

    Raises:
      CheckpointError: if the latest checkpoint in ``workdir`` belongs to another experiment or is unreadable.
      ValueError: ``every`` or ``keep`` < 1, ``best_mode`` not 'max' or 'min'.
    """

    def __init__(self, workdir: str, experiment: str, config: Any = None, every: int = 1000, keep: int = 3,
                 async_save: bool = False, directory: str = CHECKPOINT_DIR, best_metric: str | None = None,
                 best_mode: str = "max"):
        if every <= 0 or keep <= 0:
            raise ValueError(f"every, keep: expected > 0, got every={every}, keep={keep}")
        if best_mode not in BEST_MODES:
            raise ValueError(f"best_mode: expected one of {BEST_MODES}, got {best_mode!r}")
        self.workdir = os.path.abspath(workdir)
        self.directory = os.path.join(self.workdir, directory)
        self.experiment = experiment
        self.config = _jsonable(config)
        self.every = int(every)
        self.best_metric, self.best_mode, self.async_save = best_metric, best_mode, bool(async_save)
        best = {} if best_metric is None else dict(best_fn=lambda m: float(m[best_metric]), best_mode=best_mode,
                                                     keep_checkpoints_without_metrics=False)
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, cleanup_tmp_directories=True,
                                               enable_async_checkpointing=bool(async_save), **best)
        self._check_existing()
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

    # -- inspection -------------------------------------------------------------------------------------------

    def _step_dirs(self) -> list[int]:
        if not os.path.isdir(self.directory):
            return []
        return sorted(int(n) for n in os.listdir(self.directory)
                      if n.isdigit() and os.path.isdir(os.path.join(self.directory, n)))

    def _read_meta(self, step: int) -> dict:
        path = os.path.join(self.directory, str(step), "meta", "metadata")
        try:
            with open(path) as f:
                meta = json.load(f)
            if not isinstance(meta, dict) or "experiment" not in meta:
                raise ValueError("no 'experiment' entry")
            return meta
        except (OSError, ValueError) as e:
            raise CheckpointError(
                f"checkpoint {os.path.join(self.directory, str(step))} is unreadable or corrupt ({e}); move it "
                "away or choose another --workdir (nothing was overwritten)") from None

    def _newest_readable_meta(self, steps: list[int]) -> dict:
        """The metadata of the newest step in ``steps`` whose metadata reads; the newest step's error if none."""
        first = None
        for step in reversed(steps):
            try:
                return self._read_meta(step)
            except CheckpointError as e:
                first = first or e
        raise first

    def _check_existing(self) -> None:
        steps = self._step_dirs()
        if not steps:
            return
        meta = self._newest_readable_meta(steps)
        if meta["experiment"] != self.experiment:
            raise CheckpointError(
                f"workdir {self.workdir} holds checkpoints of experiment {meta['experiment']!r}, not "
                f"{self.experiment!r}; choose another --workdir (nothing was overwritten)")

    def latest_step(self) -> int | None:
        """The newest finished step, or None (waits for an asynchronous save in flight)."""
        self._manager.wait_until_finished()
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        """All finished steps, oldest first (waits for an asynchronous save in flight)."""
        self._manager.wait_until_finished()
        return sorted(self._manager.all_steps())

    def best_value(self) -> float | None:
        """With ``best_metric``: the best value of it among the saved steps (from their metadata), else None."""
        values = []
        for step in self.all_steps():
            try:
                v = self._read_meta(step).get("metrics", {}).get(self.best_metric)
            except CheckpointError:
                continue
            if isinstance(v, (int, float)) and np.isfinite(v):
                values.append(float(v))
        if self.best_metric is None or not values:
            return None
        return max(values) if self.best_mode == "max" else min(values)

    def is_better(self, value: float) -> bool:
        """True if ``value`` (finite) beats ``best_value()`` in ``best_mode`` (or nothing is saved yet)."""
        if not np.isfinite(value):
            return False
        best = self.best_value()
        return best is None or (value > best if self.best_mode == "max" else value < best)

    def metadata(self, step: int | None = None) -> dict:
        """The JSON stored with a step (default: the newest step whose metadata reads): experiment, config, step,
        jaxvision version, state_sha256."""
        step = _PINNED_STEP.get() if step is None else step
        if step is not None:
            self._require_step(step)
            return self._read_meta(step)
        if self.latest_step() is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        return self._newest_readable_meta(self.all_steps())

    def config_changes(self, step: int | None = None) -> dict[str, tuple]:
        """Config keys whose stored value (at ``step``, default latest) differs from this run's: {key: (old, new)}."""
        if (self.latest_step() if step is None else step) is None or not isinstance(self.config, dict):
            return {}
        old = self.metadata(step).get("config") or {}
        keys = set(old) | set(self.config)
        return {k: (old.get(k), self.config.get(k)) for k in sorted(keys) if old.get(k) != self.config.get(k)}

    # -- save / restore ---------------------------------------------------------------------------------------

    def should_save(self, step: int) -> bool:
        return step % self.every == 0

    def save(self, state, force: bool = False, metrics: dict[str, float] | None = None) -> bool:
        """Save ``state`` (any pytree with a scalar ``step`` field; not replicated) at its step.

        Args:
          state: the state.
          force: save even if ``step % every != 0``.
          metrics: eval metrics of this state, stored in the metadata; required (with ``best_metric`` among
            them) by a manager with ``best_metric``.

        Returns:
          True if a checkpoint was written (``step % every == 0``, or ``force``; never twice for one step). With
          ``async_save`` the write may still be in flight (it is finished before the next save, any read, and
          ``close``).
        """
        step = int(jax.device_get(state.step))
        if (not force and not self.should_save(step)) or step in self.all_steps():
            return False
        from jaxvision import __version__

        if jax.process_count() > 1:  # per-process (pmap/unreplicated) arrays: save host copies, written by process 0
            state = jax.device_get(state)
        if self.best_metric is not None and self.best_metric not in (metrics or {}):
            raise ValueError(f"metrics: expected a value of best_metric {self.best_metric!r}, got "
                             f"{sorted(metrics or {})}")
        meta = {"experiment": self.experiment, "config": self.config, "step": step, "jaxvision": __version__,
                "state_sha256": state_digest(state)}
        if metrics is not None:
            meta["metrics"] = {k: float(v) for k, v in metrics.items()}
        self._manager.wait_until_finished()  # one save at a time (Orbax also waits; explicit for async_save)
        self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                         meta=ocp.args.JsonSave(meta)), force=True,
                           metrics=meta.get("metrics") if self.best_metric is not None else None)
        if not self.async_save:
            self._manager.wait_until_finished()
        return True

    def restore(self, target, step: int | None = None):
        """Restore a step (default: the newest readable one) into the structure, shapes and dtypes of ``target``.

        Args:
          target: a state of the same structure (e.g. the freshly initialized one); its static fields (apply_fn,
            tx) are kept, its arrays replaced.
          step: which step, exactly (an error if it cannot be restored); None means the step of an enclosing
            ``pinned_step`` block, else the latest, falling back to the newest step that restores: newer corrupt
            ones are moved to ``checkpoints/corrupt-<step>`` with a one-line warning on stderr.

        Returns:
          The restored state, or ``target`` unchanged if there is no checkpoint yet.

        Raises:
          CheckpointError: unreadable/corrupt files (of every step, with ``step=None``), another experiment's
            checkpoint, or arrays whose structure or shapes differ from ``target`` (e.g. a changed model size).
        """
        step = _PINNED_STEP.get() if step is None else step
        self._manager.wait_until_finished()
        if step is not None:
            return self._restore_step(target, step)
        return self._restore_newest_readable(target)

    def _restore_newest_readable(self, target):
        """Try the steps newest first; the first that restores wins and the newer ones are quarantined. If none
        restores, nothing is moved (the model may simply differ) and the newest step's error is raised."""
        steps = self.all_steps()
        if not steps:
            return target
        failed: list[tuple[int, CheckpointError]] = []
        for step in reversed(steps):
            try:
                state = self._restore_step(target, step)
            except CheckpointError as e:
                failed.append((step, e))
                continue
            for bad, err in failed:
                moved = self.quarantine(bad)
                reason = " ".join(str(err).split())[:200]
                print(f"jaxvision: warning: checkpoint step {bad} is corrupt, moved to {moved}; using step {step} "
                      f"({reason})", file=sys.stderr, flush=True)
            return state
        raise failed[0][1]

    def quarantine(self, step: int) -> str:
        """Move step ``step``'s directory to ``checkpoints/corrupt-<step>`` (``-<n>`` appended if taken), never
        deleting it; returns the new path. Orbax ignores such directories."""
        src = os.path.join(self.directory, str(step))
        dst = os.path.join(self.directory, f"{CORRUPT_PREFIX}{step}")
        n = 1
        while os.path.exists(dst):
            dst, n = os.path.join(self.directory, f"{CORRUPT_PREFIX}{step}-{n}"), n + 1
        os.rename(src, dst)
        self._manager.reload()
        return dst

    def _require_step(self, step: int) -> None:
        if step not in self.all_steps():
            raise CheckpointError(f"no checkpoint step {step} in {self.directory}; steps: {self.all_steps()}")

    def _restore_step(self, target, step: int):
        """Restore exactly ``step`` and verify it against the digest stored with it."""
        self._require_step(step)
        meta = self._read_meta(step)
        if meta["experiment"] != self.experiment:
            raise CheckpointError(f"checkpoint step {step} belongs to experiment {meta['experiment']!r}, "
                                  f"not {self.experiment!r}")
        if jax.process_count() > 1:  # restore host copies on every process (see save)
            abstract = jax.device_get(target)
        else:
            abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        try:
            restored = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
            state = restored["state"]
        except Exception as e:  # orbax/tensorstore raise many types for truncated or mangled files
            raise CheckpointError(
                f"checkpoint {os.path.join(self.directory, str(step))} is unreadable, corrupt or does not match "
                f"this model ({type(e).__name__}: {str(e)[:300]}); move it away or choose another --workdir "
                "(nothing was overwritten)") from None
        leaves_t, leaves_r = jax.tree.leaves(target), jax.tree.leaves(state)
        bad = [(np.shape(a), np.shape(b)) for a, b in zip(leaves_t, leaves_r) if np.shape(a) != np.shape(b)]
        if len(leaves_t) != len(leaves_r) or bad:
            raise CheckpointError(f"checkpoint step {step} does not match this model's state (shapes {bad[:3]})")
        if "state_sha256" in meta and state_digest(state) != meta["state_sha256"]:
            raise CheckpointError(f"checkpoint {os.path.join(self.directory, str(step))} is corrupt: its arrays "
                                  "do not match the digest saved with them")
        return state

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
