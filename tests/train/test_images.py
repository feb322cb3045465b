"""save_image_grid: a readable PNG of the tiled size, written atomically (no temporary file left behind)."""
import numpy as np
from PIL import Image

from jaxvision.train.images import save_image_grid


def test_save_image_grid_writes_png_atomically(tmp_path):
    images = np.random.default_rng(0).uniform(-1, 1, (10, 8, 8, 1)).astype(np.float32)
    path = save_image_grid(str(tmp_path / "out" / "grid.png"), images, ncol=4, scale=2, value_range=(-1, 1),
                           captions=[str(i) for i in range(10)])
    with Image.open(path) as img:
        assert img.size == (4 * (16 + 2) + 2, 3 * (16 + 2) + 2)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["grid.png"]
