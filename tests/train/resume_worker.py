"""Subprocess for the kill/resume test: trains a tiny MLP (mode classifier on the 25-mode grid) with ``fit``.

Usage: python resume_worker.py WORKDIR NUM_STEPS KILL_AT OUT.npz
Sends itself SIGKILL right after step KILL_AT (0: never); otherwise saves the final params to OUT.npz.
"""
import os
import signal
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxvision.data import load
from jaxvision.train import TrainState, fit, make_train_step


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
        x = nn.Dense(32)(x.reshape(x.shape[0], -1))
        x = nn.Dropout(0.2, deterministic=not train)(nn.relu(x))  # uses the step rng: resume must replay it
        return nn.Dense(25)(x)


def main(workdir, num_steps, kill_at, out):
    model = MLP()
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))["params"]
    state = TrainState.create(apply_fn=model.apply, params=params, tx=optax.adam(1e-2), rng=jax.random.PRNGKey(1))

    def loss_fn(params, batch_stats, batch, rng):
        logits = model.apply({"params": params}, batch["x"], train=True, rngs={"dropout": rng})
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch["mode"]).mean(), (batch_stats, {})

    def killer(step, state):
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    ds = load("mixture", "train", 64, seed=3, kind="grid", num_examples=320)  # 5 batches/epoch: crosses epochs
    state, _ = fit(state, make_train_step(loss_fn), ds, num_steps=num_steps, workdir=workdir,
                   experiment="resume_test", checkpoint_every=4, keep=2, log_every=2, progress=False,
                   hooks=[killer])
    np.savez(out, *[np.asarray(x) for x in jax.tree.leaves(state.params)], step=np.asarray(state.step))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
