"""TrainState and pure train/eval steps built from a loss function.

The state is a pytree of arrays (params, batch_stats, opt_state, step, rng) with the model's ``apply_fn`` and the
optax ``tx`` as static fields, so ``jit``/``pmap`` see only arrays and a checkpoint is exactly the array fields.

A loss function has the signature::

    loss_fn(params, batch_stats, batch, rng) -> (loss scalar, (new_batch_stats, metrics dict of scalars))

``make_train_step(loss_fn)`` turns it into ``train_step(state, batch) -> (state, metrics)``. With ``axis_name``
(what ``jaxvision.train.parallel`` passes), gradients, metrics and batch statistics are averaged over that axis, so
a step on D devices with B/D examples each equals a step on one device with all B examples (for losses that are
means over the batch).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


def is_typed_key(x) -> bool:
    """True for a typed PRNG key array (``jax.random.key``), False for raw uint32 keys and other arrays."""
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def check_key(name: str, key) -> jax.Array:
    """``key`` as a PRNG key: a typed key is kept, a raw one becomes uint32 [..., 2]; ValueError otherwise."""
    if is_typed_key(key):
        return key
    arr = jnp.asarray(key)
    if arr.shape[-1:] != (2,) or not (jnp.issubdtype(arr.dtype, jnp.integer)):
        raise ValueError(f"{name}: expected a PRNG key (jax.random.key(seed) or jax.random.PRNGKey(seed)), got "
                         f"{arr.dtype} {arr.shape}")
    return arr.astype(jnp.uint32)


LossFn = Callable[[Any, Any, dict, jax.Array], tuple[jax.Array, tuple[Any, dict]]]


class TrainState(flax.struct.PyTreeNode):
    """Everything a training step reads and writes.

    Attributes:
      step: int32 scalar, number of optimizer updates applied so far.
      params: the model parameters (pytree).
      batch_stats: BatchNorm running statistics (pytree, ``{}`` when the model has none).
      opt_state: the optax optimizer state.
      rng: PRNG key, a typed key (``jax.random.key``) or a raw uint32 [2] one (``jax.random.PRNGKey``); the key
        of step ``s`` is ``fold_in(rng, s)``, so steps are reproducible and resumable without storing per-step keys.
      apply_fn: the model's apply function (static).
      tx: the optax gradient transformation (static).
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array
    apply_fn: Callable = flax.struct.field(pytree_node=False)
    tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    @classmethod
    def create(cls, *, apply_fn: Callable, params, tx: optax.GradientTransformation, rng: jax.Array,
               batch_stats=None) -> TrainState:
        """A fresh state at step 0; ``rng`` is a typed key (``jax.random.key``) or a raw uint32 [2] one
        (``jax.random.PRNGKey``), kept as given."""
        return cls(step=jnp.zeros((), jnp.int32), params=params, batch_stats={} if batch_stats is None else batch_stats,
                   opt_state=tx.init(params), rng=check_key("rng", rng), apply_fn=apply_fn, tx=tx)

    def apply_gradients(self, grads, batch_stats=None) -> TrainState:
        """One optimizer update; ``batch_stats`` replaces the running statistics if given."""
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        return self.replace(step=self.step + 1, params=optax.apply_updates(self.params, updates), opt_state=opt_state,
                            batch_stats=self.batch_stats if batch_stats is None else batch_stats)

    def step_rng(self) -> jax.Array:
        """The PRNG key of the current step (same on every device; fold in the device index for per-device noise)."""
        return jax.random.fold_in(self.rng, self.step)


# Compiler options for one-off functions such as parameter initialization: on CPU the default LLVM optimization of
# the PRNG (threefry) kernels costs ~0.5 s per initializer, which level 0 removes; the code runs once, so speed of
# the compiled code does not matter.
ONE_OFF_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}


def jit_once(fn: Callable, **jit_kwargs) -> Callable:
    """``jax.jit`` for code that runs once (e.g. ``model.init``): compiles fast, runs unoptimized."""
    return jax.jit(fn, compiler_options=ONE_OFF_COMPILER_OPTIONS, **jit_kwargs)


def make_train_step(loss_fn: LossFn, axis_name: str | None = None) -> Callable:
    """A pure ``train_step(state, batch) -> (new_state, metrics)`` from ``loss_fn`` (see module docstring).

    Args:
      loss_fn: ``(params, batch_stats, batch, rng) -> (loss, (new_batch_stats, metrics))``; it must be a mean over
        the examples of ``batch`` for the multi-device step to equal the single-device one.
      axis_name: if set, the step runs under ``pmap(axis_name=...)``: gradients, metrics and batch statistics are
        ``lax.pmean``-ed over it, and the step key gets the device index folded in.

    Returns:
      The step; ``metrics`` always contains ``'loss'`` (float32 scalar) and ``'grad_norm'`` (the global L2 norm of
      the gradients, after averaging over ``axis_name``, before any clipping the optimizer does) plus whatever
      ``loss_fn`` reported.
    """
    def train_step(state: TrainState, batch: dict):
        rng = state.step_rng()
        if axis_name is not None:
            rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
        (loss, (batch_stats, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.batch_stats, batch, rng)
        metrics = {**metrics, "loss": loss}
        if axis_name is not None:
            grads, metrics, batch_stats = jax.lax.pmean((grads, metrics, batch_stats), axis_name)
        metrics["grad_norm"] = optax.global_norm(grads)
        return state.apply_gradients(grads, batch_stats), metrics

    return train_step


def make_eval_step(metrics_fn: Callable, axis_name: str | None = None) -> Callable:
    """``eval_step(state, batch) -> metrics`` from ``metrics_fn(params, batch_stats, batch) -> dict of sums``.

    ``metrics_fn`` should return *sums* (e.g. number correct, number of examples) so that batches and devices
    can be added up; under ``axis_name`` they are ``lax.psum``-ed.
    """
    def eval_step(state: TrainState, batch: dict):
        out = metrics_fn(state.params, state.batch_stats, batch)
        return jax.lax.psum(out, axis_name) if axis_name is not None else out

    return eval_step
