"""CPU seconds (``time.process_time``) of selective search per image and of a train step of the R-CNN and Fast
R-CNN default configs: on a machine shared with other jobs, process time estimates the unloaded cost.

    PYTHONPATH=. python docs/results/cpu_seconds.py     (writes docs/results/cpu_seconds.json)

Uses the default configs' proposal cache (computed first if absent).
"""
from __future__ import annotations

import json
import os
import pathlib
import time

import jax
import jax.numpy as jnp

import experiments
from benchmarks.harness import cpu_model
from experiments import _detection as D
from experiments import _proposals as PR
from jaxvision.data import shapes
from jaxvision.proposals import selective_search
from jaxvision.train import make_train_step


def search_cpu(n: int = 24) -> float:
    """CPU s per image of the default configs' selective search on ``n`` training images."""
    cfg = experiments.make_config(experiments.get("fast_rcnn_shapes"))
    images = shapes.generate("train", 0, n, 64, 8, 4, False, False)["image"]
    c = time.process_time()
    for im in images:
        selective_search(im, max_proposals=cfg.max_proposals, **PR.proposal_options(cfg))
    return (time.process_time() - c) / n


def step_cpu(name: str, loss_fn, steps: int) -> dict:
    """CPU and wall s per warm train step (``steps`` steps after one compiling step) of ``name``'s default config."""
    module = experiments.get(name)
    cfg = experiments.make_config(module)
    model, _, spec = module._parts(cfg)
    state = D.make_state(model, cfg, (cfg.image_size, cfg.image_size, 3))
    data, _ = PR.train_data(cfg, spec)
    loss = D.with_augmentation(D.make_loss_fn(model, loss_fn, targets=True), D.hflip if cfg.flip else None)
    step = jax.jit(make_train_step(loss))
    batches = [jax.tree_util.tree_map(jnp.asarray, data.batch(i)) for i in range(steps + 1)]
    state, _ = step(state, batches[0])
    jax.block_until_ready(state)
    c, w = time.process_time(), time.perf_counter()
    for b in batches[1:]:
        state, _ = step(state, b)
    jax.block_until_ready(state)
    cpu, wall = (time.process_time() - c) / steps, (time.perf_counter() - w) / steps
    return {"cpu_s_per_step": cpu, "wall_s_per_step": wall, "num_steps": cfg.num_steps,
            "cpu_s_all_steps": cpu * cfg.num_steps}


def main() -> dict:
    from jaxvision.models.detection import fast_rcnn, rcnn

    out = {"machine": f"{cpu_model()}, load average {os.getloadavg()[0]:.1f}",
           "selective_search_cpu_s_per_image": search_cpu(),
           "rcnn_shapes": step_cpu("rcnn_shapes", rcnn.loss_fn, 100),
           "fast_rcnn_shapes": step_cpu("fast_rcnn_shapes", fast_rcnn.loss_fn, 200)}
    path = pathlib.Path(__file__).with_name("cpu_seconds.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
