"""Seeded synthetic COCO data sets for parity tests (ground-truth dict + results list)."""
from __future__ import annotations

import numpy as np


def make_coco(seed: int, num_images: int = 30, num_cats: int = 5, max_gt: int = 12, max_dets: int = 40,
              crowd_frac: float = 0.1, integer: bool = False, tie_frac: float = 0.0, empty_cat: bool = True,
              image_size: float = 200.0):
    """Random but COCO-like data: detections are jittered copies of GT plus false positives.

    Args:
      seed: RNG seed. num_images / num_cats: counts (ids are shuffled non-contiguous ints).
      max_gt / max_dets: per-image maxima (uniform counts from 0).
      crowd_frac: fraction of GT marked iscrowd. integer: round all coordinates (exact-IoU ties).
      tie_frac: fraction of detection scores drawn from a tiny set (score ties).
      empty_cat: add one category without any GT (detections may still use it).
    """
    rng = np.random.default_rng(seed)
    img_ids = rng.choice(10 * num_images + 10, num_images, replace=False) + 1
    cat_ids = rng.choice(100, num_cats + int(empty_cat), replace=False) + 1
    gt_cats = cat_ids[:num_cats]
    images = [{"id": int(i), "width": 640, "height": 480} for i in img_ids]
    cats = [{"id": int(c), "name": f"c{c}"} for c in cat_ids]
    anns, dets = [], []

    def box():
        w, h = rng.uniform(2, image_size / 2, 2) * rng.choice([0.2, 1.0, 2.5], p=[0.3, 0.5, 0.2])
        x, y = rng.uniform(0, image_size, 2)
        b = [x, y, w, h]
        return [float(np.round(v)) for v in b] if integer else [float(v) for v in b]

    for i in img_ids:
        n_gt = int(rng.integers(0, max_gt + 1))
        img_cats = rng.choice(gt_cats, size=min(3, num_cats), replace=False)
        gts = []
        for _ in range(n_gt):
            b = box()
            crowd = int(rng.random() < crowd_frac)
            area = b[2] * b[3] * (rng.uniform(0.5, 1.0) if rng.random() < 0.3 else 1.0)
            g = {"id": len(anns) + 1, "image_id": int(i), "category_id": int(rng.choice(img_cats)), "bbox": b,
                 "area": float(area), "iscrowd": crowd}
            anns.append(g)
            gts.append(g)
        n_dt = int(rng.integers(0, max_dets + 1))
        for _ in range(n_dt):
            if gts and rng.random() < 0.6:
                g = gts[int(rng.integers(len(gts)))]
                x, y, w, h = g["bbox"]
                s = rng.normal(0, 0.1, 4) * [w, h, w, h]
                b = [x + s[0], y + s[1], max(w + s[2], 0.5), max(h + s[3], 0.5)]
                b = [float(np.round(v)) for v in b] if integer else [float(v) for v in b]
                c = g["category_id"] if rng.random() < 0.9 else int(rng.choice(cat_ids))
            else:
                b = box()
                c = int(rng.choice(cat_ids))
            score = float(rng.choice([0.25, 0.5, 0.75])) if rng.random() < tie_frac else float(rng.random())
            dets.append({"image_id": int(i), "category_id": c, "bbox": b, "score": score})
    return {"images": images, "annotations": anns, "categories": cats}, dets
