"""Issue 2's ops benchmark: jaxvision.ops against torchvision.ops (and flax.linen.ConvTranspose), one process.

    PYTHONPATH=. python -m benchmarks.ops

Workloads and targets (ratio = peer time / ours, after warm-up; compile time reported separately):
box_iou 2000x2000 (>= 1x), nms at 1,000 and 5,000 boxes (>= 3x), batched_nms 8 images x 2,000 boxes x 20 classes
(>= 3x, ours vmapped, torchvision looping per image), roi_align 1,000 RoIs on 2x64x64x256, 7x7, sampling 2, aligned
(>= 1x), conv_transpose gradient vs flax.linen.ConvTranspose (>= 10x). The rows live in ``ops_boxes`` and
``ops_roi``; this script runs both and prints one table.
"""
from __future__ import annotations

from benchmarks import ops_boxes, ops_roi
from benchmarks.harness import print_table


def main() -> str:
    import torch

    rows = ops_boxes.rows() + ops_roi.rows()
    return print_table(f"jaxvision.ops vs peers (torch threads: {torch.get_num_threads()})", rows, "peer")


if __name__ == "__main__":
    main()
