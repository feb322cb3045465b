"""pix2pix_shapes: Pix2Pix (Isola et al. 2017) from semantic label maps to rendered shapes images, vs L1 only.

The embedded ``pairs`` data (``kind='shapes'``): the condition is a label map (one colour per shape class), the
target the rendered image, whose shape colours are not in the label map (the one-to-many part the GAN term should
handle). Trains Pix2Pix and the L1-only U-Net baseline (``experiments/_pix2pix.py``) and reports L1, PSNR, SSIM and
Sobel sharpness on 128 held-out pairs, with ``triplets.png`` (input | L1 | Pix2Pix | target). Default: 64 px, U-Net
ngf 16, PatchGAN ndf 16 with 2 stride-2 layers (34-px patches), batch 8, 3000 steps of Adam 2e-4 (0.5, 0.999),
constant for the first half and linearly to 0 over the second (the paper's schedule, both models); evaluated by the
paper's test protocol (``inference='batch_stats'``, see ``experiments/_pix2pix.py``). ``--set preset=paper`` is the
paper's 256-px setting on a pix2pix A|B folder (``data_root``, e.g. facades with ``direction=BtoA``).
"""
from __future__ import annotations

import dataclasses
from typing import Literal

from experiments import _pix2pix
from experiments._pix2pix import Pix2PixConfig

NAME = "pix2pix_shapes"


@dataclasses.dataclass
class Config(Pix2PixConfig):
    kind: Literal["shapes", "edges"] = "shapes"


EVAL_KEYS = _pix2pix.EVAL_KEYS
TINY = dict(_pix2pix.TINY)
PRESETS = {"paper": dict(_pix2pix.PAPER)}


def train(cfg: Config, workdir: str) -> dict:
    """Train Pix2Pix and the L1 baseline; return the held-out metrics."""
    return _pix2pix.train(cfg, workdir, NAME)


def evaluate(cfg: Config, workdir: str) -> dict:
    """Held-out L1 / PSNR / SSIM / sharpness of Pix2Pix and the L1 baseline; rewrites triplets.png."""
    return _pix2pix.evaluate(cfg, workdir, NAME)
