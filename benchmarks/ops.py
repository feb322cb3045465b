"""Issue 2's ops benchmark: jaxvision.ops against torchvision.ops (and flax.linen.ConvTranspose), one process.

    PYTHONPATH=. python -m benchmarks.ops [--device cpu|gpu] [--repeats N]

Workloads and targets (ratio = peer time / ours, after warm-up; compile time reported separately):
box_iou 2000x2000 (>= 1x), nms at 1,000 and 5,000 boxes (>= 3x), batched_nms 8 images x 2,000 boxes x 20 classes
(>= 3x, ours vmapped, torchvision looping per image), roi_align 1,000 RoIs on 2x64x64x256, 7x7, sampling 2, aligned
(>= 1x), conv_transpose gradient vs flax.linen.ConvTranspose (>= 10x). The rows live in ``ops_boxes`` and
``ops_roi``; this script runs both and prints one table.
"""
from __future__ import annotations

import argparse

from benchmarks import ops_boxes, ops_roi
from benchmarks.harness import add_device_argument, print_table, select_device


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description="jaxvision.ops against torchvision.ops and flax, one table")
    add_device_argument(parser)
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per row (default: 21 box ops, 5 roi, 3 conv_transpose)")
    args = parser.parse_args(argv)
    device = select_device(args.device, parser)
    import torch

    box_rows = ops_boxes.rows(device=device, **({} if args.repeats is None else {"repeats": args.repeats}))
    rows = box_rows + ops_roi.rows(device, args.repeats)
    return print_table(f"jaxvision.ops vs peers on {device.describe()} (torch threads: {torch.get_num_threads()})",
                       rows, "peer", device=device)


if __name__ == "__main__":
    main()
