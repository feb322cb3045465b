"""SSD300-VGG16 inference: jaxvision vs torchvision ``ssd300_vgg16`` on this CPU or GPU (random weights, same batch).

Rows:
  - network forward (VGG16 trunk + extras + heads -> class logits and box deltas for the 8732 default boxes):
    ours ``jax.jit(model.apply)`` vs torchvision ``model.head(model.backbone(x))``;
  - the full predict path (forward + softmax + decode + clip + per-class top-400 + per-class NMS 0.45 + 200
    detections): ours ``ssd.predict_fn(model)`` vs torchvision ``model(images)`` in eval mode (its transform's
    300 -> 300 resize and normalization included, as a user would call it).

Run: ``PYTHONPATH=. python benchmarks/detectors.py [--device cpu|gpu] [--batch 4] [--repeats 5]`` (needs torch +
torchvision). On the GPU torchvision runs on CUDA (cudnn.benchmark on, synchronised before every clock read).
Images/s = batch / median seconds. Ratio = torchvision time / ours (> 1: we are faster); target >= 1x.
"""
from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.harness import Row, add_device_argument, compile_time, median_time, print_table, select_device
from jaxvision.models.detection import ssd


def ssd_workload(batch: int, torch_device: str = "cpu"):
    """The compared calls on one random batch of ``batch`` 300 x 300 images (seeded): ``(ours_forward,
    ours_predict, torchvision_forward, torchvision_predict)``, zero-argument callables; torchvision's model and
    tensors on ``torch_device`` ('cpu' or 'cuda'), ours on JAX's default device."""
    import torch
    import torchvision

    images = np.random.RandomState(0).rand(batch, 300, 300, 3).astype(np.float32)
    model = ssd.SSD300(num_classes=20)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.asarray(images[:1]))
    x = jnp.asarray(images)
    forward = jax.jit(lambda v, im: model.apply(v, im))
    predict = ssd.predict_fn(model)
    torch.manual_seed(0)
    tv = torchvision.models.detection.ssd300_vgg16(weights=None, weights_backbone=None, num_classes=21)
    tv = tv.eval().to(torch_device)
    xt = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(torch_device)
    xt_norm = (xt - torch.tensor([0.48235, 0.45882, 0.40784], device=torch_device).view(1, 3, 1, 1)) * 255.0
    xt_list = list(xt)

    def tv_forward():
        with torch.inference_mode():
            return tv.head(list(tv.backbone(xt_norm).values()))

    def tv_predict():
        with torch.inference_mode():
            return tv(xt_list)

    return (lambda: forward(variables, x)), (lambda: predict(variables, x)), tv_forward, tv_predict


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_argument(parser)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    args = parser.parse_args(argv)
    device = select_device(args.device, parser)
    dev, sync = device.torch, device.sync

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    ours_forward, ours_predict, tv_forward, tv_predict = ssd_workload(args.batch, dev)

    rows = []
    c = compile_time(ours_forward) - median_time(ours_forward, 1, 0)
    ours = median_time(ours_forward, args.repeats)
    peer = median_time(tv_forward, args.repeats, sync=sync)
    rows.append(Row(f"SSD300-VGG16 forward, batch {args.batch}", ours, peer, c, target=1.0))
    c = compile_time(ours_predict) - median_time(ours_predict, 1, 0)
    ours = median_time(ours_predict, args.repeats)
    peer = median_time(tv_predict, args.repeats, sync=sync)
    rows.append(Row(f"SSD300-VGG16 predict (decode + NMS), batch {args.batch}", ours, peer, c, target=1.0))
    print_table(f"SSD300-VGG16 inference on {device.describe()} (random weights)", rows, "torchvision", device=device)
    for r in rows:
        print(f"{r.name}: ours {args.batch / r.ours_s:.2f} img/s, torchvision {args.batch / r.peer_s:.2f} img/s")


if __name__ == "__main__":
    main()
