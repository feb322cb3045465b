"""GANState: everything a GAN run needs in one pytree (and so in one Orbax checkpoint).

Two players, each with its own parameters, BatchNorm statistics, optax optimizer and optimizer state (so G and D
can have different learning rates and schedules), an optional exponential moving average (EMA) of the
generator's parameters, the step counter and the RNG key. The apply functions and optimizers are static fields:
they are code, not data, and are not checkpointed.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxvision._checks import check_positive
from jaxvision.train.state import check_key


class GANState(struct.PyTreeNode):
    """Generator + discriminator training state.

    Attributes:
      step: int32 scalar, number of generator updates done.
      g_params, g_batch_stats: generator parameters and BatchNorm running statistics (``{}`` if none).
      d_params, d_batch_stats: discriminator parameters and BatchNorm running statistics (``{}`` if none).
      g_opt_state, d_opt_state: the two optax states.
      g_ema: EMA of ``g_params`` (same tree), or ``None`` when ``ema_decay`` is None.
      rng: PRNG key (typed ``jax.random.key`` or raw uint32 [2]) consumed one split per step.
      g_apply_fn, d_apply_fn: ``flax.linen.Module.apply``-style functions
        ``apply_fn(variables, x, train=bool, mutable=[...])``; static.
      g_tx, d_tx: the optax transformations of G and D; static.
      ema_decay: float in [0, 1) or None; static.
    """

    step: jax.Array
    g_params: Any
    g_batch_stats: Any
    d_params: Any
    d_batch_stats: Any
    g_opt_state: Any
    d_opt_state: Any
    g_ema: Any
    rng: jax.Array
    g_apply_fn: Callable = struct.field(pytree_node=False)
    d_apply_fn: Callable = struct.field(pytree_node=False)
    g_tx: optax.GradientTransformation = struct.field(pytree_node=False)
    d_tx: optax.GradientTransformation = struct.field(pytree_node=False)
    ema_decay: float | None = struct.field(pytree_node=False, default=None)

    @classmethod
    def create(
        cls,
        *,
        g_apply_fn: Callable,
        g_variables: dict,
        d_apply_fn: Callable,
        d_variables: dict,
        g_tx: optax.GradientTransformation,
        d_tx: optax.GradientTransformation,
        rng: jax.Array,
        ema_decay: float | None = None,
    ) -> GANState:
        """Build a fresh state.

        Args:
          g_apply_fn, d_apply_fn: ``Module.apply`` of generator and discriminator.
          g_variables, d_variables: their ``Module.init`` results: ``{'params': ..., 'batch_stats': ...}``
            ('batch_stats' optional).
          g_tx, d_tx: optax optimizers for G and D (e.g. ``optax.adam(2e-4, b1=0.5)`` each).
          rng: PRNG key for the noise of all future steps.
          ema_decay: keep an EMA of G's parameters with this decay (e.g. 0.999), or None for no EMA.

        Raises:
          ValueError: ``ema_decay`` outside [0, 1), or variables without 'params'.
        """
        for name, v in (("g_variables", g_variables), ("d_variables", d_variables)):
            if "params" not in v:
                raise ValueError(f"{name}: expected a dict with 'params', got keys {sorted(v)}")
        if ema_decay is not None:
            check_positive("ema_decay", ema_decay, allow_zero=True)
            if ema_decay >= 1.0:
                raise ValueError(f"ema_decay: expected a value in [0, 1), got {ema_decay!r}")
        g_params, d_params = g_variables["params"], d_variables["params"]
        return cls(
            step=jnp.zeros((), jnp.int32),
            g_params=g_params,
            g_batch_stats=g_variables.get("batch_stats", {}),
            d_params=d_params,
            d_batch_stats=d_variables.get("batch_stats", {}),
            g_opt_state=g_tx.init(g_params),
            d_opt_state=d_tx.init(d_params),
            g_ema=None if ema_decay is None else jax.tree_util.tree_map(jnp.array, g_params),
            rng=check_key("rng", rng),
            g_apply_fn=g_apply_fn,
            d_apply_fn=d_apply_fn,
            g_tx=g_tx,
            d_tx=d_tx,
            ema_decay=ema_decay,
        )

    def generator_variables(self, ema: bool = False) -> dict:
        """Variables for ``g_apply_fn`` (the EMA weights if ``ema`` and an EMA is kept)."""
        params = self.g_ema if (ema and self.g_ema is not None) else self.g_params
        return {"params": params, "batch_stats": self.g_batch_stats}

    def discriminator_variables(self) -> dict:
        """Variables for ``d_apply_fn``."""
        return {"params": self.d_params, "batch_stats": self.d_batch_stats}

    def generate(self, *inputs, ema: bool = False):
        """Generator output in eval mode (BatchNorm running statistics) for its inputs: noise ``z`` [B, ...latent]
        (unconditional), or ``condition`` (and ``z``) for a conditional generator."""
        return self.g_apply_fn(self.generator_variables(ema), *inputs, train=False)
