"""PNG image grids with optional captions (Pillow only, so runs need no plotting library)."""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np


def image_grid(images: np.ndarray, ncol: int = 8, scale: int = 1, pad: int = 2,
               value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Tile images into one uint8 [rows*(h*scale+pad)+pad, ncol*(w*scale+pad)+pad, 3] array.

    Args:
      images: float [N, H, W, C] with C in (1, 3), values in ``value_range`` (e.g. (-1, 1) for GAN images).
      ncol: images per row.
      scale: integer nearest-neighbour upscaling factor.
      pad: pixels of (white) border between tiles.
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images: expected [N, H, W, 1|3], got {images.shape}")
    lo, hi = value_range
    x = np.clip((images - lo) / (hi - lo), 0, 1)
    x = np.repeat(np.repeat(x, scale, 1), scale, 2)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, -1)
    n, h, w, _ = x.shape
    nrow = -(-n // ncol)
    grid = np.ones((nrow * (h + pad) + pad, min(n, ncol) * (w + pad) + pad, 3), np.float32)
    for k in range(n):
        r, c = divmod(k, ncol)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = x[k]
    return (grid * 255).round().astype(np.uint8)


def save_image_grid(path: str, images: np.ndarray, captions: Sequence[str] | None = None,
                    colors: Sequence[tuple[int, int, int]] | None = None, ncol: int = 8, scale: int = 1,
                    value_range: tuple[float, float] = (0.0, 1.0)) -> str:
    """Write ``images`` (see ``image_grid``) as a PNG, each tile optionally captioned (top-left) in ``colors``."""
    from PIL import Image, ImageDraw

    pad = 2
    grid = image_grid(images, ncol, scale, pad, value_range)
    img = Image.fromarray(grid)
    if captions is not None:
        draw = ImageDraw.Draw(img)
        h, w = images.shape[1] * scale, images.shape[2] * scale
        for k, text in enumerate(captions):
            r, c = divmod(k, ncol)
            xy = (pad + c * (w + pad) + 2, pad + r * (h + pad) + 1)
            color = tuple(colors[k]) if colors is not None else (255, 255, 0)
            draw.text(xy, str(text), fill=color)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"  # atomic: a reader (or another process writing the same grid) never sees half
    img.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path
