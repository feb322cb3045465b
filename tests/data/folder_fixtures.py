"""Tiny on-disk detection data sets in COCO-JSON and VOC-XML layouts, written by the tests (PNG and JPEG images)."""
from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

# (height, width, file name, image id, [(x, y, w, h) px, category id, iscrowd])
COCO_TRAIN = [(40, 60, "a.png", 17, [((6, 4, 24, 16), 3, 0), ((30, 20, 20, 12), 7, 0)]),
              (48, 32, "b.jpg", 5, [((0, 0, 32, 48), 7, 1)]),
              (30, 30, "c.png", 1001, [])]


def _image(h: int, w: int, k: int) -> np.ndarray:
    rng = np.random.default_rng(k)
    img = np.full((h, w, 3), 40 + 25 * (k % 8), np.uint8)
    img[h // 4: h // 2, w // 4: w // 2] = rng.integers(0, 255, 3, dtype=np.uint8)
    return img


def write_coco(root: str, split: str = "train", records=None, copies: int = 1) -> str:
    """``root/annotations/instances_<split>.json`` + ``root/<split>/<files>``; ``copies`` repeats the records with
    new ids and file names (for a train split of at least a batch)."""
    records = COCO_TRAIN if records is None else records
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    os.makedirs(os.path.join(root, split), exist_ok=True)
    images, anns = [], []
    for c in range(copies):
        for k, (h, w, name, image_id, objs) in enumerate(records):
            name = name if c == 0 else f"{c}_{name}"
            image_id = image_id + 100000 * c
            Image.fromarray(_image(h, w, k + c)).save(os.path.join(root, split, name))
            images.append({"id": image_id, "file_name": name, "height": h, "width": w})
            for box, cat, crowd in objs:
                anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat, "bbox": list(box),
                             "area": float(box[2] * box[3]) * 0.75, "iscrowd": crowd})
    cats = [{"id": 7, "name": "cup"}, {"id": 3, "name": "ball"}]  # unsorted on purpose: classes sort by id
    with open(os.path.join(root, "annotations", f"instances_{split}.json"), "w") as f:
        json.dump({"images": images, "annotations": anns, "categories": cats}, f)
    return root


# (file stem, height, width, [(name, difficult, (xmin, ymin, xmax, ymax) devkit 1-based px)])
VOC = [("000007", 40, 50, [("ball", 0, (11, 5, 31, 25)), ("cup", 1, (1, 1, 50, 40))]),
       ("2008_000123", 36, 24, [("cup", 0, (3, 7, 20, 30))])]


def write_voc(root: str, split: str = "train", labels=("ball", "cup")) -> str:
    """VOCdevkit layout: Annotations/, JPEGImages/, ImageSets/Main/<split>.txt, labels.txt."""
    for d in ("Annotations", "JPEGImages", os.path.join("ImageSets", "Main")):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for k, (stem, h, w, objs) in enumerate(VOC):
        Image.fromarray(_image(h, w, k)).save(os.path.join(root, "JPEGImages", f"{stem}.png"))
        xml_objs = "".join(
            f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
            f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for n, d, b in objs)
        with open(os.path.join(root, "Annotations", f"{stem}.xml"), "w") as f:
            f.write(f"<annotation><filename>{stem}.png</filename><size><width>{w}</width><height>{h}</height>"
                    f"<depth>3</depth></size>{xml_objs}</annotation>")
    with open(os.path.join(root, "ImageSets", "Main", f"{split}.txt"), "w") as f:
        f.write("\n".join(stem for stem, *_ in VOC) + "\n")
    if labels:
        with open(os.path.join(root, "labels.txt"), "w") as f:
            f.write("\n".join(labels) + "\n")
    return root
