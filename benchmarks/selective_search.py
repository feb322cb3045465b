"""Selective search: jaxvision.proposals vs OpenCV's ``cv2.ximgproc.segmentation`` on the same ``shapes`` images.

Both run their 'fast' mode (ours: HSV + Lab, k in {50, 100}, C+T+S+F and T+S+F; OpenCV's
``switchToSelectiveSearchFast``: HSV + Lab, k in {150, 300}) on the same images, upscaled by each ``--scales``
factor before segmenting (bilinear; boxes mapped back to the 64 px image). Reported per method and scale: seconds
per image (single thread: ``cv2.setNumThreads(1)``; ours is single-threaded numpy), mean proposals per image, and
recall at IoU 0.5 / 0.7 of the top-n proposals for several n. OpenCV ranks by a random-perturbed hierarchy level
(``ranking='level'`` here); ours is run with the paper's position ranking and with the level ranking.

Run: ``PYTHONPATH=. python benchmarks/selective_search.py [--images 48] [--scales 1,2] [--json out.json]
[--png docs/detection/selective_search.png]`` (needs ``opencv-contrib-python-headless``, in the bench extra).
``--png`` also draws our top proposals on a bundled test photo (scikit-image's ``coffee``).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from benchmarks.harness import cpu_model
from jaxvision.data import shapes
from jaxvision.proposals import proposal_recall, selective_search

COUNTS = (10, 30, 50, 100, 200, 1000)


def opencv_fast(image: np.ndarray, scale: float) -> np.ndarray:
    """OpenCV's fast selective search of an RGB float image [H, W, 3] upscaled by ``scale``: xyxy [N, 4] input px."""
    import cv2

    bgr = np.ascontiguousarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8)[..., ::-1])
    if scale != 1:
        bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    ss.setBaseImage(bgr)
    ss.switchToSelectiveSearchFast()
    r = ss.process().astype(np.float64).reshape(-1, 4) / scale
    return np.concatenate([r[:, :2], r[:, :2] + r[:, 2:]], 1)


def evaluate(name: str, fn, images, gts) -> dict:
    t0 = time.perf_counter()
    props = [fn(im) for im in images]
    sec = (time.perf_counter() - t0) / len(images)
    rec = proposal_recall(props, gts, COUNTS, (0.5, 0.7))
    return {"method": name, "s_per_image": sec, "proposals": float(np.mean([len(p) for p in props])),
            "recall@0.5": dict(zip(map(str, COUNTS), rec[:, 0].round(4).tolist())),
            "recall@0.7": dict(zip(map(str, COUNTS), rec[:, 1].round(4).tolist()))}


def proposals_png(path: str, top: int = 30) -> str:
    """Our top-``top`` fast-mode proposals on scikit-image's ``coffee`` photo (downscaled 2x), as a PNG."""
    from PIL import Image, ImageDraw

    from jaxvision.data import photos

    img = photos.photo("coffee", 2)
    boxes = selective_search(img, "fast", max_proposals=top)
    canvas = Image.fromarray((img * 255).round().astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    rng = np.random.default_rng(0)
    for b in boxes:
        draw.rectangle([float(b[0]), float(b[1]), float(b[2]) - 1, float(b[3]) - 1],
                       outline=tuple(int(c) for c in rng.integers(64, 256, 3)), width=2)
    canvas.save(path)
    return path


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=48, help="shapes test images (64 px)")
    p.add_argument("--scales", default="1,2", help="comma-separated upscaling factors")
    p.add_argument("--json", help="write the rows to this file")
    p.add_argument("--png", help="draw our top proposals on a bundled photo into this PNG")
    args = p.parse_args(argv)
    import cv2

    cv2.setNumThreads(1)
    data = shapes.generate("test", 0, args.images, 64, 8, 4, False, False)
    images = data["image"].astype(np.float32) / 255.0
    gts = [data["boxes"][i][data["mask"][i]] for i in range(args.images)]
    rows = []
    for scale in (float(s) for s in args.scales.split(",")):
        for name, fn in (("opencv fast", lambda im: opencv_fast(im, scale)),
                         ("ours fast (paper ranking)", lambda im: selective_search(im, "fast", scale=scale)),
                         ("ours fast (level ranking)",
                          lambda im: selective_search(im, "fast", scale=scale, ranking="level"))):
            rows.append({"scale": scale, **evaluate(name, fn, images, gts)})
    head = "| scale | method | s/image | proposals | " + " | ".join(f"R@0.5 top{n}" for n in COUNTS) + \
        " | " + " | ".join(f"R@0.7 top{n}" for n in COUNTS) + " |"
    print(f"selective search on {args.images} shapes test images (64 px), {cpu_model()}, 1 thread")
    print(head)
    print("|" + "---|" * (4 + 2 * len(COUNTS)))
    for r in rows:
        print(f"| {r['scale']:g} | {r['method']} | {r['s_per_image']:.3f} | {r['proposals']:.0f} | "
              + " | ".join(f"{v:.3f}" for v in r["recall@0.5"].values()) + " | "
              + " | ".join(f"{v:.3f}" for v in r["recall@0.7"].values()) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"images": args.images, "machine": cpu_model(), "rows": rows}, f, indent=1)
    if args.png:
        print("proposals PNG:", proposals_png(args.png))
    return rows


if __name__ == "__main__":
    main()
