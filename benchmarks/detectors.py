"""Detector inference: jaxvision vs torchvision (SSD300-VGG16, Faster R-CNN ResNet-50) on this CPU or GPU.

Random weights, the same random batch for both. Rows:
  - network forward (VGG16 trunk + extras + heads -> class logits and box deltas for the 8732 default boxes):
    ours ``jax.jit(model.apply)`` vs torchvision ``model.head(model.backbone(x))``;
  - the full predict path (forward + softmax + decode + clip + per-class top-400 + per-class NMS 0.45 + 200
    detections): ours ``ssd.predict_fn(model)`` vs torchvision ``model(images)`` in eval mode (its transform's
    300 -> 300 resize and normalization included, as a user would call it);
  - Faster R-CNN predict, ResNet-50 C5 backbone (stride 32, 2048 channels), one-level RPN with the paper's
    anchors (128, 256, 512 x 0.5, 1, 2), pre/post-NMS top 1000, NMS 0.7, RoI Align 7 x 7 (sampling ratio 2),
    TwoMLPHead 1024, 21 classes, score 0.05, per-class NMS 0.5, 100 detections, ``--frcnn-size`` px square images:
    ours ``faster_rcnn.predict_fn(FasterRCNNResNet50(20))`` vs torchvision ``FasterRCNN`` built from the same parts
    (its documented custom-backbone recipe: ``resnet50`` up to ``layer4``, ``AnchorGenerator``,
    ``MultiScaleRoIAlign(['0'], 7, 2)``, ``min_size = max_size = size``) called on the images in eval mode.
    (``fasterrcnn_resnet50_fpn`` adds an FPN, which jaxvision does not have.) ``--only ssd|faster_rcnn`` picks one.

Run: ``PYTHONPATH=. python benchmarks/detectors.py [--device cpu|gpu] [--batch 4] [--repeats 5] [--frcnn-batch 1]
[--frcnn-size 320]`` (needs torch + torchvision). On the GPU torchvision runs on CUDA (cudnn.benchmark on,
synchronised before every clock read).
Images/s = batch / median seconds. Ratio = torchvision time / ours (> 1: we are faster); target >= 1x.
"""
from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.harness import Row, add_device_argument, compile_time, median_time, print_table, select_device
from jaxvision.models.detection import faster_rcnn, ssd


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


def torchvision_faster_rcnn(size: int, torch_device: str = "cpu"):
    """torchvision's ``FasterRCNN`` built from the same parts as ``FasterRCNNResNet50`` (module docstring), seeded,
    in eval mode on ``torch_device``."""
    import torch
    import torchvision
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    torch.manual_seed(0)
    trunk = torch.nn.Sequential(*list(torchvision.models.resnet50(weights=None).children())[:-2])
    trunk.out_channels = 2048
    tv = FasterRCNN(trunk, num_classes=21, min_size=size, max_size=size,
                    rpn_anchor_generator=AnchorGenerator(((128, 256, 512),), ((0.5, 1.0, 2.0),)),
                    box_roi_pool=MultiScaleRoIAlign(["0"], 7, 2))
    return tv.eval().to(torch_device)


def faster_rcnn_images(batch: int, size: int) -> np.ndarray:
    """The benchmark's random batch: float32 ``[batch, size, size, 3]`` in [0, 1] (seeded)."""
    return np.random.RandomState(0).rand(batch, size, size, 3).astype(np.float32)


def faster_rcnn_workload(batch: int, size: int, torch_device: str = "cpu"):
    """``(ours_predict, torchvision_predict)`` zero-argument callables on one random batch of ``batch`` images of
    ``size`` x ``size`` px (seeded); the two models are built from the same parts (module docstring)."""
    import torch

    images = faster_rcnn_images(batch, size)
    model = faster_rcnn.FasterRCNNResNet50(num_classes=20)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.asarray(images[:1]))
    x = jnp.asarray(images)
    predict = faster_rcnn.predict_fn(model)
    tv = torchvision_faster_rcnn(size, torch_device)
    xt_list = list(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(torch_device))

    def tv_predict():
        with torch.inference_mode():
            return tv(xt_list)

    return (lambda: predict(variables, x)), tv_predict


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_argument(parser)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    parser.add_argument("--frcnn-batch", type=int, default=1)
    parser.add_argument("--frcnn-size", type=int, default=320)
    parser.add_argument("--only", choices=("ssd", "faster_rcnn"), default=None)
    args = parser.parse_args(argv)
    device = select_device(args.device, parser)
    dev, sync = device.torch, device.sync

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rows, speeds = [], []
    if args.only in (None, "ssd"):
        ours_forward, ours_predict, tv_forward, tv_predict = ssd_workload(args.batch, dev)
        c = compile_time(ours_forward) - median_time(ours_forward, 1, 0)
        ours = median_time(ours_forward, args.repeats)
        peer = median_time(tv_forward, args.repeats, sync=sync)
        rows.append(Row(f"SSD300-VGG16 forward, batch {args.batch}", ours, peer, c, target=1.0))
        c = compile_time(ours_predict) - median_time(ours_predict, 1, 0)
        ours = median_time(ours_predict, args.repeats)
        peer = median_time(tv_predict, args.repeats, sync=sync)
        rows.append(Row(f"SSD300-VGG16 predict (decode + NMS), batch {args.batch}", ours, peer, c, target=1.0))
        speeds += [(r, args.batch) for r in rows[-2:]]
    if args.only in (None, "faster_rcnn"):
        ours_predict, tv_predict = faster_rcnn_workload(args.frcnn_batch, args.frcnn_size, dev)
        c = compile_time(ours_predict) - median_time(ours_predict, 1, 0)
        ours = median_time(ours_predict, args.repeats)
        peer = median_time(tv_predict, args.repeats, sync=sync)
        rows.append(Row(f"Faster R-CNN R50-C5 predict ({args.frcnn_size} px), batch {args.frcnn_batch}", ours, peer,
                        c, target=1.0))
        speeds.append((rows[-1], args.frcnn_batch))
    print_table(f"Detector inference on {device.describe()} (random weights)", rows, "torchvision", device=device)
    for r, b in speeds:
        print(f"{r.name}: ours {b / r.ours_s:.2f} img/s, torchvision {b / r.peer_s:.2f} img/s")


if __name__ == "__main__":
    main()
