"""``voc_xml``: one's own PASCAL-VOC-style detection data (one XML file per image plus an image folder).

Layout of ``data_dir`` (VOCdevkit's ``VOC2007/`` is one): ``Annotations/<id>.xml``, ``JPEGImages/<filename>`` and
``ImageSets/Main/<split>.txt`` (one id per line); without the split file, a folder per split works too:
``<split>/Annotations/*.xml`` with ``<split>/JPEGImages/``. The XML is VOC's: ``filename``, ``size``
(``width``, ``height``), and per ``object`` its ``name``, ``difficult`` and ``bndbox`` (``xmin``, ``ymin``,
``xmax``, ``ymax`` in the devkit's 1-based pixels, converted as TFDS's VOC builder does: ``(xmin - 1) / width``).

Classes: the names in ``data_dir/labels.txt`` (one per line, in class-index order) if that file exists, else VOC's
20 classes; an object with another name is an error that says to write ``labels.txt``. Batches have the detection
format of ``jaxvision.data.tfds`` (``difficult`` from the XML, ``image_id`` from the file name's digits,
``image_hw`` the original height and width).
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import numpy as np

from jaxvision.data.base import Dataset
from jaxvision.data.coco_json import read_image
from jaxvision.data.tfds import VOC_CLASSES, DetectionConverter, augmentation, detection_info, source_dataset


def class_names_of(data_dir: str) -> tuple[str, ...]:
    """``labels.txt`` of ``data_dir`` (one class name a line), else VOC's 20 classes."""
    path = os.path.join(data_dir, "labels.txt")
    if not os.path.isfile(path):
        return VOC_CLASSES
    with open(path) as f:
        names = tuple(line.strip() for line in f if line.strip())
    if not names or len(set(names)) != len(names):
        raise ValueError(f"{path}: expected one unique class name per line, got {names}")
    return names


def _text(node, tag: str, path: str) -> str:
    found = node.find(tag)
    if found is None or found.text is None:
        raise ValueError(f"{path}: missing <{tag}>")
    return found.text.strip()


def parse_xml(path: str, class_index: dict[str, int]) -> dict:
    """One VOC XML file -> ``{filename, height, width, boxes [N, 4] devkit xyxy, labels [N], difficult [N]}``."""
    root = ET.parse(path).getroot()
    size = root.find("size")
    if size is None:
        raise ValueError(f"{path}: missing <size>")
    width, height = int(float(_text(size, "width", path))), int(float(_text(size, "height", path)))
    boxes, labels, difficult = [], [], []
    for obj in root.findall("object"):
        name = _text(obj, "name", path)
        if name not in class_index:
            raise ValueError(f"{path}: object class {name!r} is not among the classes {tuple(class_index)[:25]}; "
                             "list your classes, one a line, in data_dir/labels.txt")
        bb = obj.find("bndbox")
        if bb is None:
            raise ValueError(f"{path}: object {name!r} has no <bndbox>")
        box = [float(_text(bb, k, path)) for k in ("xmin", "ymin", "xmax", "ymax")]
        if not (box[0] <= box[2] and box[1] <= box[3]):
            raise ValueError(f"{path}: object {name!r}: bndbox: expected xmin <= xmax and ymin <= ymax, got {box}")
        d = obj.find("difficult")
        boxes.append(box)
        labels.append(class_index[name])
        difficult.append(d is not None and d.text is not None and d.text.strip() not in ("0", ""))
    return {"filename": _text(root, "filename", path), "height": height, "width": width,
            "boxes": np.array(boxes, np.float64).reshape(-1, 4), "labels": np.array(labels, np.int64),
            "difficult": np.array(difficult, bool)}


class VocXmlSource:
    """Random-access TFDS-format examples (``tfds.data_source('voc/2007')`` layout: ``image``,
    ``image/filename``, ``objects`` {``bbox`` normalized [ymin, xmin, ymax, xmax], ``label``, ``is_difficult``})
    of a VOC-style folder. Picklable (worker processes)."""

    def __init__(self, data_dir: str, split: str, class_names=None):
        self.class_names = tuple(class_names) if class_names else class_names_of(data_dir)
        index = {n: k for k, n in enumerate(self.class_names)}
        split_file = os.path.join(data_dir, "ImageSets", "Main", f"{split}.txt")
        if os.path.isfile(split_file):
            with open(split_file) as f:
                ids = [line.split()[0] for line in f if line.strip()]
            ann_dir, self.image_dir = os.path.join(data_dir, "Annotations"), os.path.join(data_dir, "JPEGImages")
            xmls = [os.path.join(ann_dir, f"{i}.xml") for i in ids]
        elif os.path.isdir(os.path.join(data_dir, split, "Annotations")):
            ann_dir = os.path.join(data_dir, split, "Annotations")
            self.image_dir = os.path.join(data_dir, split, "JPEGImages")
            xmls = [os.path.join(ann_dir, n) for n in sorted(os.listdir(ann_dir)) if n.endswith(".xml")]
        else:
            raise FileNotFoundError(f"data_dir: split {split!r} not found: expected {split_file} or "
                                    f"{os.path.join(data_dir, split, 'Annotations')}/")
        for x in xmls:
            if not os.path.isfile(x):
                raise FileNotFoundError(f"annotation file {x!r} (listed in {split_file}) does not exist")
        self.records = [parse_xml(x, index) for x in xmls]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        r = self.records[i]
        image = read_image(os.path.join(self.image_dir, r["filename"]))
        h, w = image.shape[:2]
        if (r["height"], r["width"]) != (h, w):
            raise ValueError(f"image {r['filename']!r}: the XML says {r['height']}x{r['width']} (HxW), the image is "
                             f"{h}x{w}")
        b = r["boxes"]
        bbox = np.stack([(b[:, 1] - 1) / h, (b[:, 0] - 1) / w, (b[:, 3] - 1) / h, (b[:, 2] - 1) / w], -1)
        return {"image": image, "image/filename": r["filename"],
                "objects": {"bbox": bbox.astype(np.float32), "label": r["labels"], "is_difficult": r["difficult"]}}


def load(split: str, batch_size: int, seed: int = 0, num_devices: int | None = None, *, data_dir: str = "",
         image_size: int = 300, max_boxes: int = 42, class_names=None, shuffle: bool | None = None,
         drop_remainder: bool = True, host_id=None, num_hosts=None, augment: str | None = None,
         resize: str = "pil", image_dtype: str = "float32") -> Dataset:
    """A VOC-style folder as a ``Dataset`` (``jaxvision.data.load('voc_xml', split, ..., data_dir=...)``).

    Args:
      data_dir: the folder (layout in the module docstring). image_size: output side S. max_boxes: padded
        objects per image. class_names: the classes in index order (default ``labels.txt`` or VOC's 20).
      augment, resize, image_dtype: as for the TFDS detection sets (``jaxvision.data.tfds.load``).
    """
    if not data_dir:
        raise ValueError("data_dir: expected the folder of a VOC-style data set (--set data_dir=...), got ''")
    source = VocXmlSource(data_dir, split, class_names)
    info = detection_info("voc_xml", split, source, image_size, max_boxes, source.class_names)
    convert = DetectionConverter(image_size, max_boxes, resize, image_dtype)
    return source_dataset(source, convert, split, batch_size, seed, num_devices, info=info, shuffle=shuffle,
                          drop_remainder=drop_remainder, host_id=host_id, num_hosts=num_hosts,
                          augment=augmentation(augment, image_size))
