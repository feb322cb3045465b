"""``coco_json``: one's own COCO-format detection data (an annotation JSON plus an image folder).

Layout of ``data_dir`` for split ``S`` (the first candidate that exists is used; ``annotation_file`` and
``image_dir`` name them explicitly instead):

- annotations: ``annotations/instances_S.json``, ``annotations/S.json`` or ``S.json``;
- images (``file_name`` of each ``images`` record is relative to it): ``S/``, ``images/S/``, ``images/`` or
  ``data_dir`` itself.

This is the layout of COCO itself (``annotations/instances_val2017.json`` + ``val2017/``, with ``split='val2017'``)
and of the usual exports of labelling tools. Classes are the file's ``categories`` sorted by id: class index k is
``info['category_ids'][k]``, named ``info['class_names'][k]``. Every listed image is an example, also those
without annotations (negatives). Batches have the detection format of ``jaxvision.data.tfds`` (``image``,
``boxes`` xyxy px of the resized image, ``labels``, ``mask``, ``crowd``, ``difficult`` (all False), ``area``
(the annotation's area), ``image_id`` (the file's id), ``image_hw`` (original height, width)).
"""
from __future__ import annotations

import io
import json
import os

import numpy as np

from jaxvision.data.base import Dataset
from jaxvision.data.tfds import DetectionConverter, augmentation, detection_info, source_dataset


def _first(candidates: list[str], what: str, isdir: bool) -> str:
    for c in candidates:
        if (os.path.isdir if isdir else os.path.isfile)(c):
            return c
    raise FileNotFoundError(f"data_dir: no {what} found; looked for {', '.join(candidates)}")


def read_image(path: str) -> np.ndarray:
    """An image file -> uint8 [H, W, 3] RGB (grey and RGBA converted). JPEG files are decoded with OpenCV
    (libjpeg-turbo, the same pixels as PIL's decoder at about 2/3 of its CPU time; EXIF orientation ignored, as
    PIL does), other formats with PIL."""
    from PIL import Image

    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file {path!r} does not exist")
    with open(path, "rb") as f:
        data = f.read()
    if data[:3] == b"\xff\xd8\xff":
        import cv2

        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
        if image is not None:
            return image
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


class CocoJsonSource:
    """Random-access TFDS-format examples of a COCO annotation file (``tfds.data_source('coco/2017')`` layout:
    ``image``, ``image/id``, ``image/filename``, ``objects`` {``bbox`` normalized [ymin, xmin, ymax, xmax],
    ``label`` class index, ``is_crowd``, ``area``}). Picklable (worker processes)."""

    def __init__(self, annotation_file: str, image_dir: str):
        with open(annotation_file) as f:
            coco = json.load(f)
        for key in ("images", "annotations", "categories"):
            if not isinstance(coco.get(key), list):
                raise ValueError(f"annotation_file {annotation_file!r}: expected a list under {key!r}")
        cats = sorted(coco["categories"], key=lambda c: int(c["id"]))
        self.category_ids = tuple(int(c["id"]) for c in cats)
        self.class_names = tuple(str(c.get("name", c["id"])) for c in cats)
        label_of = {c: k for k, c in enumerate(self.category_ids)}
        self.image_dir = image_dir
        self.images = [(int(im["id"]), str(im["file_name"]), int(im.get("height", 0)), int(im.get("width", 0)))
                       for im in coco["images"]]
        if len({i for i, *_ in self.images}) != len(self.images):
            raise ValueError(f"annotation_file {annotation_file!r}: image ids are not unique")
        position = {i: k for k, (i, *_) in enumerate(self.images)}
        per_image: list[list] = [[] for _ in self.images]
        for n, a in enumerate(coco["annotations"]):
            if int(a["image_id"]) not in position:
                raise ValueError(f"annotations[{n}]: image_id {a['image_id']} is not among the images")
            if int(a["category_id"]) not in label_of:
                raise ValueError(f"annotations[{n}]: category_id {a['category_id']} is not among the categories")
            x, y, w, h = (float(v) for v in a["bbox"])
            if not (np.isfinite([x, y, w, h]).all() and w >= 0 and h >= 0):
                raise ValueError(f"annotations[{n}]: bbox: expected finite [x, y, w >= 0, h >= 0], got {a['bbox']}")
            per_image[position[int(a["image_id"])]].append(
                (x, y, w, h, label_of[int(a["category_id"])], bool(a.get("iscrowd", 0)), float(a.get("area", w * h))))
        self.objects = [np.array(objs, np.float64).reshape(-1, 7) for objs in per_image]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        image_id, file_name, height, width = self.images[i]
        image = read_image(os.path.join(self.image_dir, file_name))
        h, w = image.shape[:2]
        if (height and height != h) or (width and width != w):
            raise ValueError(f"image {file_name!r}: the annotation file says {height}x{width} (HxW), the image is "
                             f"{h}x{w}")
        o = self.objects[i]
        x, y, bw, bh = o[:, 0], o[:, 1], o[:, 2], o[:, 3]
        bbox = np.stack([y / h, x / w, (y + bh) / h, (x + bw) / w], -1).astype(np.float32)
        return {"image": image, "image/id": image_id, "image/filename": file_name,
                "objects": {"bbox": bbox, "label": o[:, 4].astype(np.int64), "is_crowd": o[:, 5].astype(bool),
                            "area": o[:, 6].astype(np.float32)}}


def open_split(data_dir: str, split: str, annotation_file: str | None = None,
               image_dir: str | None = None) -> CocoJsonSource:
    """The ``CocoJsonSource`` of ``split`` in ``data_dir`` (see the module docstring for the layout)."""
    if not data_dir and not annotation_file:
        raise ValueError("data_dir: expected the folder of a COCO-format data set (--set data_dir=...), got ''")
    ann = annotation_file or _first([os.path.join(data_dir, "annotations", f"instances_{split}.json"),
                                     os.path.join(data_dir, "annotations", f"{split}.json"),
                                     os.path.join(data_dir, f"{split}.json")], f"annotation file of split {split!r}",
                                    isdir=False)
    root = data_dir or os.path.dirname(os.path.abspath(ann))
    images = image_dir or _first([os.path.join(root, split), os.path.join(root, "images", split),
                                  os.path.join(root, "images"), root], "image folder", isdir=True)
    return CocoJsonSource(ann, images)


def load(split: str, batch_size: int, seed: int = 0, num_devices: int | None = None, *, data_dir: str = "",
         image_size: int = 320, max_boxes: int = 100, annotation_file: str | None = None,
         image_dir: str | None = None, shuffle: bool | None = None, drop_remainder: bool = True, host_id=None,
         num_hosts=None, augment: str | None = None, resize: str = "pil",
         image_dtype: str = "float32") -> Dataset:
    """A COCO-format folder as a ``Dataset`` (``jaxvision.data.load('coco_json', split, ..., data_dir=...)``).

    Args:
      data_dir: the data set's folder (layout in the module docstring). image_size: output side S (the image is
        resized to S x S). max_boxes: padded objects per image (extra ones are dropped).
      annotation_file, image_dir: explicit paths instead of the layout's candidates.
      augment, resize, image_dtype: as for the TFDS detection sets (``jaxvision.data.tfds.load``).
    """
    source = open_split(data_dir, split, annotation_file, image_dir)
    info = detection_info("coco_json", split, source, image_size, max_boxes, source.class_names)
    info["category_ids"] = source.category_ids
    convert = DetectionConverter(image_size, max_boxes, resize, image_dtype)
    return source_dataset(source, convert, split, batch_size, seed, num_devices, info=info, shuffle=shuffle,
                          drop_remainder=drop_remainder, host_id=host_id, num_hosts=num_hosts,
                          augment=augmentation(augment, image_size))

