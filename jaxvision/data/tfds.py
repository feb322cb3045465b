"""TFDS adapters: voc/2007, voc/2012, coco/2017, mnist, cifar10, celeb_a, div2k/bicubic_x4 -> jaxvision batches.

Examples are read by random access through ``tfds.data_source`` (ArrayRecord files; reading needs no TensorFlow),
so the epoch order, host sharding and exact resume work exactly as for the embedded data sets. The data must have
been prepared once: ``download=True`` downloads and prepares it into ``data_dir`` (default ``~/tensorflow_datasets``),
which for most of these builders needs TensorFlow (``pip install 'jaxvision[tfds]'``); copying prepared ArrayRecord
files from another machine works too. Nothing is downloaded unless ``download=True``.

Batch formats:
- detection (voc/*, coco/2017): ``image`` float32 [B, S, S, 3] in [0, 1] (resized, aspect not kept, to
  ``image_size`` S), ``boxes`` float32 [B, max_boxes, 4] xyxy px in the resized image (from TFDS's normalized
  ymin, xmin, ymax, xmax), ``labels`` int32 [B, max_boxes] (-1 pad), ``mask`` bool, and ``difficult`` (VOC
  is_difficult) / ``crowd`` (COCO is_crowd) bool [B, max_boxes]; for evaluation in original-image coordinates,
  ``image_id`` int64 [B] (COCO ``image/id``; VOC: the digits of ``image/filename``, '2008_000123.jpg' ->
  2008000123; else the example's index + 1), ``image_hw`` int32 [B, 2] (original height, width) and ``area``
  float32 [B, max_boxes] (COCO's annotation area, else the box area in original pixels). Objects beyond
  ``max_boxes`` are dropped (counted in ``.info['truncated_objects']`` only when known).
- mnist, cifar10: ``image`` float32 [B, H, W, C] in [0, 1], ``label`` int32 [B].
- celeb_a: ``image`` float32 [B, S, S, 3] in [0, 1]: the centre 178x178 square resized to ``image_size``;
  ``attributes`` bool [B, 40] (sorted attribute names in ``.info['attribute_names']``).
- div2k/bicubic_x4: ``low_res`` float32 [B, P, P, 3] and ``image`` (HR) [B, 4P, 4P, 3] in [0, 1], aligned
  patches (``patch_size`` P, default 24: the SRGAN paper's 96-px HR crops); random position + flip on 'train',
  the centre patch otherwise (DIV2K images differ in size; whole-image evaluation reads the source directly).
Split names: 'train', 'val' (TFDS 'validation') and 'test', or any TFDS split string.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxvision.data.augment import SSDAugment
from jaxvision.data.base import Dataset
from jaxvision.data.detection_rows import DetectionBatches

DETECTION = ("voc/2007", "voc/2012", "coco/2017")
CLASSIFICATION = ("mnist", "cifar10")
FACES = ("celeb_a",)
SUPER_RESOLUTION = ("div2k/bicubic_x4",)
SPLIT_ALIASES = {"val": "validation"}
DEFAULT_IMAGE_SIZE = {"voc/2007": 300, "voc/2012": 300, "coco/2017": 320, "celeb_a": 64}
DEFAULT_MAX_BOXES = {"voc/2007": 42, "voc/2012": 56, "coco/2017": 100}
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")


IMAGE_DTYPES = ("float32", "uint8")


def _resize(img: np.ndarray, size: int, resize: str = "pil", dtype: str = "float32") -> np.ndarray:
    """uint8 [H, W, C] -> [size, size, C] (bilinear: PIL's, or OpenCV's with ``resize='cv2'``, about 5x faster and
    not identical): float32 in [0, 1], or with ``dtype='uint8'`` the resized uint8 pixels (converted on the
    device: ``float32(x) / 255``, the same float32 values)."""
    from PIL import Image

    if dtype not in IMAGE_DTYPES:
        raise ValueError(f"image_dtype: expected one of {IMAGE_DTYPES}, got {dtype!r}")
    if resize not in ("pil", "cv2"):
        raise ValueError(f"resize: expected 'pil' or 'cv2', got {resize!r}")
    channels = img.shape[-1]
    if img.shape[0] == size and img.shape[1] == size:
        out = img
    elif resize == "cv2":
        import cv2

        out = cv2.resize(np.ascontiguousarray(img), (size, size), interpolation=cv2.INTER_LINEAR)
    else:
        pil = Image.fromarray(img[..., 0] if channels == 1 else img)
        out = np.asarray(pil.resize((size, size), Image.BILINEAR))
    out = out.reshape(size, size, channels)
    return np.asarray(out, np.uint8) if dtype == "uint8" else out.astype(np.float32) / 255.0


def image_id_of(example: dict, index: int) -> int:
    """The data set's id of an example: ``image/id`` (COCO), else the digits of ``image/filename`` (VOC), else
    ``index + 1``."""
    if "image/id" in example:
        return int(np.asarray(example["image/id"]))
    name = example.get("image/filename")
    if name is not None:
        name = name if isinstance(name, (str, bytes)) else np.asarray(name).item()
        name = name.decode() if isinstance(name, bytes) else str(name)
        digits = "".join(c for c in name.rsplit(".", 1)[0] if c.isdigit())
        if digits and len(digits) <= 18:
            return int(digits)
    return int(index) + 1


def convert_detection(example: dict, image_size: int, max_boxes: int, index: int = 0, resize: str = "pil",
                      image_dtype: str = "float32") -> dict:
    """One TFDS VOC/COCO example (the ``index``-th of its split) -> fixed-shape arrays (see the module docstring).

    ``objects/bbox`` is TFDS's normalized [ymin, xmin, ymax, xmax]; it becomes xyxy pixels of the resized
    ``image_size`` x ``image_size`` image: ``x = xmin * image_size`` etc. ``image_dtype='uint8'`` keeps the
    image uint8 [S, S, 3] in [0, 255] (a quarter of the bytes to build, stack and transfer; the device converts).
    """
    objects = example["objects"]
    bbox = np.asarray(objects["bbox"], np.float32).reshape(-1, 4)
    labels = np.asarray(objects["label"], np.int64).reshape(-1)
    flag_key = "is_difficult" if "is_difficult" in objects else "is_crowd"
    flags = np.asarray(objects.get(flag_key, np.zeros(len(labels), bool)), bool).reshape(-1)
    n = min(len(bbox), len(labels), len(flags), max_boxes)
    image = np.asarray(example["image"])
    h, w = image.shape[:2]
    out = {"image": _resize(image, image_size, resize, image_dtype),
           "boxes": np.zeros((max_boxes, 4), np.float32), "labels": np.full(max_boxes, -1, np.int32),
           "mask": np.zeros(max_boxes, bool), "difficult": np.zeros(max_boxes, bool),
           "crowd": np.zeros(max_boxes, bool), "image_id": np.int64(image_id_of(example, index)),
           "image_hw": np.array([h, w], np.int32), "area": np.zeros(max_boxes, np.float32)}
    ymin, xmin, ymax, xmax = (np.clip(bbox[:n, k], 0.0, 1.0) for k in range(4))
    out["boxes"][:n] = np.stack([xmin, ymin, xmax, ymax], -1) * image_size
    if "area" in objects:
        out["area"][:n] = np.asarray(objects["area"], np.float32).reshape(-1)[:n]
    else:
        out["area"][:n] = (xmax - xmin) * w * (ymax - ymin) * h
    out["labels"][:n] = labels[:n]
    out["mask"][:n] = True
    out["difficult" if flag_key == "is_difficult" else "crowd"][:n] = flags[:n]
    return out


class DetectionConverter:
    """``convert_detection`` with fixed sizes, as a picklable ``(example, index) -> arrays`` (worker processes)."""

    def __init__(self, image_size: int, max_boxes: int, resize: str = "pil", image_dtype: str = "float32"):
        if resize not in ("pil", "cv2"):
            raise ValueError(f"resize: expected 'pil' or 'cv2', got {resize!r}")
        if image_dtype not in IMAGE_DTYPES:
            raise ValueError(f"image_dtype: expected one of {IMAGE_DTYPES}, got {image_dtype!r}")
        self.image_size, self.max_boxes, self.resize = int(image_size), int(max_boxes), resize
        self.image_dtype = image_dtype

    def __call__(self, example: dict, index: int) -> dict:
        return convert_detection(example, self.image_size, self.max_boxes, index, self.resize, self.image_dtype)


def convert_classification(example: dict) -> dict:
    img = np.asarray(example["image"])
    return {"image": img.astype(np.float32) / 255.0, "label": np.int32(example["label"])}


def convert_face(example: dict, image_size: int, attribute_names: Sequence[str]) -> dict:
    img = np.asarray(example["image"])
    h, w = img.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    attrs = example.get("attributes", {})
    return {"image": _resize(img[y:y + s, x:x + s], image_size),
            "attributes": np.array([bool(attrs.get(a, False)) for a in attribute_names], bool)}


def convert_super_resolution(example: dict, patch_size: int, scale: int, rng=None) -> dict:
    """One TFDS div2k example (uint8 ``lr`` [h, w, 3], ``hr`` [h scale, w scale, 3]) -> aligned float32 patches
    ``low_res`` [P, P, 3] and ``image`` [P scale, P scale, 3]: at a random position with a random flip when
    ``rng`` is given, else the centre."""
    lr, hr = np.asarray(example["lr"]), np.asarray(example["hr"])
    h, w = lr.shape[:2]
    if h < patch_size or w < patch_size or hr.shape[0] < h * scale or hr.shape[1] < w * scale:
        raise ValueError(f"div2k example: expected lr >= {patch_size} px and hr = {scale} x lr, got lr {lr.shape}, "
                         f"hr {hr.shape}")
    if rng is None:
        y, x = (h - patch_size) // 2, (w - patch_size) // 2
    else:
        y, x = int(rng.integers(0, h - patch_size + 1)), int(rng.integers(0, w - patch_size + 1))
    p, s = patch_size, scale
    out = {"low_res": lr[y:y + p, x:x + p], "image": hr[y * s:(y + p) * s, x * s:(x + p) * s]}
    if rng is not None and rng.random() < 0.5:
        out = {k: v[:, ::-1] for k, v in out.items()}
    return {k: v.astype(np.float32) / 255.0 for k, v in out.items()}


def _class_names(source) -> tuple[str, ...] | None:
    try:
        features = source.dataset_info.features
        label = features["objects"]["label"] if "objects" in features else features["label"]
        return tuple(label.names)
    except Exception:  # mocks and custom sources may have no feature info
        return None


def open_source(name: str, split: str, data_dir: str | None = None, download: bool = False):
    """``tfds.data_source(name, split)``: a random-access sequence of example dicts (numpy values)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise ImportError(f"data set {name!r} needs tensorflow-datasets (pip install tensorflow-datasets)") from e
    try:
        return tfds.data_source(name, split=SPLIT_ALIASES.get(split, split), data_dir=data_dir, download=download)
    except Exception as e:
        if download:
            raise
        where = data_dir or "~/tensorflow_datasets"
        raise FileNotFoundError(
            f"TFDS data set {name!r} (split {split!r}) is not prepared in {where} ({type(e).__name__}: "
            f"{str(e)[:200]}); prepare it once with jaxvision.data.load({name!r}, ..., download=True), which needs "
            "TensorFlow: pip install 'jaxvision[tfds]'") from None


class SourceBatches:
    """``make_batch`` of a random-access ``source``: row j is ``convert(augment(source[i], rngs[j]), i)`` for
    example index ``i = idx[j]`` (``augment`` optional). Picklable if its parts are (grain worker processes)."""

    def __init__(self, source, convert, augment=None):
        self.source, self.convert, self.augment = source, convert, augment

    def __call__(self, idx, rngs) -> dict:
        examples = []
        for j, i in enumerate(idx):
            example = self.source[int(i)]
            if self.augment is not None:
                example = self.augment(example, rngs[j])
            examples.append(self.convert(example, int(i)))
        return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


AUGMENTATIONS = (None, "none", "ssd", "ssd_geometric")


def augmentation(name: str | None, image_size: int | None = None):
    """The worker-side augmentation named ``name`` (one of ``AUGMENTATIONS``): None / 'none'; 'ssd'
    (``jaxvision.data.augment.SSDAugment``: IoU crop, resize to ``image_size``, flip, colour distortion); or
    'ssd_geometric', the same without the colour distortion, which the train step then applies on the device
    (``jaxvision.ops.photometric_distort``)."""
    if name in (None, "none"):
        return None
    if name in ("ssd", "ssd_geometric"):
        return SSDAugment(image_size, photometric=name == "ssd")
    raise ValueError(f"augment: expected one of {AUGMENTATIONS}, got {name!r}")


def source_dataset(source, convert, split: str, batch_size: int, seed: int = 0, num_devices: int | None = None, *,
                   info: dict, shuffle: bool | None = None, drop_remainder: bool = True, host_id=None,
                   num_hosts=None, augment=None) -> Dataset:
    """A ``Dataset`` over a random-access ``source`` of examples: row ``j`` of a batch is
    ``convert(source[idx[j]], idx[j])`` (a dict of fixed-shape arrays), after ``augment(example, rng)`` if given
    (``rng`` from (seed, epoch, position)). Shuffled by default on 'train'."""
    make_batch = SourceBatches(source, convert, augment)
    if isinstance(convert, DetectionConverter) and (augment is None or (
            type(augment) is SSDAugment and augment.size == convert.image_size)):
        make_batch = DetectionBatches(source, convert, augment)  # the same batches, built in place
    return Dataset(len(source), make_batch, batch_size, seed=seed,
                   shuffle=(split == "train") if shuffle is None else shuffle, drop_remainder=drop_remainder,
                   num_devices=num_devices, host_id=host_id, num_hosts=num_hosts, info=info)


def detection_info(name: str, split: str, source, image_size: int, max_boxes: int,
                   class_names: Sequence[str]) -> dict:
    """``Dataset.info`` of a detection data set (the keys the detector experiments read)."""
    return {"name": name, "split": split, "num_examples": len(source), "image_size": (image_size, image_size),
            "channels": 3, "max_boxes": max_boxes, "class_names": tuple(class_names),
            "num_classes": len(class_names)}


def load(split: str, batch_size: int, seed: int = 0, num_devices: int | None = None, *, name: str,
         image_size: int | None = None, max_boxes: int | None = None, patch_size: int = 24,
         data_dir: str | None = None,
         download: bool = False, source=None, shuffle: bool | None = None, drop_remainder: bool = True,
         host_id=None, num_hosts=None, augment: str | None = None, resize: str = "pil",
         image_dtype: str = "float32") -> Dataset:
    """A TFDS data set as a ``Dataset`` (see the module docstring and ``jaxvision.data.load``).

    Args:
      name: one of voc/2007, voc/2012, coco/2017, mnist, cifar10, celeb_a, div2k/bicubic_x4.
      image_size: output side S for detection and celeb_a (defaults: VOC 300, COCO 320, celeb_a 64).
      max_boxes: padded objects per image (defaults: voc/2007 42, voc/2012 56, coco 100: the largest counts).
      patch_size: low-resolution patch side for div2k/bicubic_x4 (HR patches are 4x).
      data_dir: TFDS data directory. download: download and prepare if missing (may need TensorFlow).
      source: use this random-access sequence of TFDS-format examples instead of ``tfds.data_source``.
      augment: detection only: 'ssd' for SSD's IoU crop, flip and photometric distortion
        (``jaxvision.data.augment``), applied per example (crop, then resize, flip, colours); 'ssd_geometric'
        without the colours (then apply ``jaxvision.ops.photometric_distort`` on the device). resize: 'pil'
        (default) or 'cv2'. image_dtype: detection only: 'float32' (default, [0, 1]) or 'uint8' ([0, 255],
        converted on the device).
    """
    if source is None:
        source = open_source(name, split, data_dir, download)
    info = {"name": name, "split": split, "num_examples": len(source)}
    if name in DETECTION:
        size = image_size or DEFAULT_IMAGE_SIZE[name]
        mb = max_boxes or DEFAULT_MAX_BOXES[name]
        names = _class_names(source) or (VOC_CLASSES if name.startswith("voc") else tuple(map(str, range(80))))
        info = detection_info(name, split, source, size, mb, names)
        convert = DetectionConverter(size, mb, resize, image_dtype)
    elif name in CLASSIFICATION:
        names = _class_names(source)
        shape = np.asarray(source[0]["image"]).shape
        info.update(image_size=shape[:2], channels=shape[2], class_names=names, num_classes=10)
        convert = lambda ex, i: convert_classification(ex)  # noqa: E731
    elif name in FACES:
        size = image_size or DEFAULT_IMAGE_SIZE[name]
        attribute_names = tuple(sorted(source[0].get("attributes", {})))
        info.update(image_size=(size, size), channels=3, attribute_names=attribute_names)
        convert = lambda ex, i: convert_face(ex, size, attribute_names)  # noqa: E731
    elif name in SUPER_RESOLUTION:
        scale = int(name.rsplit("x", 1)[1])
        info.update(image_size=(patch_size * scale,) * 2, low_res_size=(patch_size, patch_size), scale=scale,
                    channels=3)
        train = split == "train"

        def make_batch(idx, rngs):  # random HR crops on 'train' (rng from (seed, epoch, position)), centre otherwise
            examples = [convert_super_resolution(source[int(i)], patch_size, scale, rngs[j] if train else None)
                        for j, i in enumerate(idx)]
            return {k: np.stack([e[k] for e in examples]) for k in examples[0]}

        return Dataset(len(source), make_batch, batch_size, seed=seed,
                       shuffle=train if shuffle is None else shuffle, drop_remainder=drop_remainder,
                       num_devices=num_devices, host_id=host_id, num_hosts=num_hosts, info=info)
    else:
        raise ValueError(f"name: expected one of {DETECTION + CLASSIFICATION + FACES + SUPER_RESOLUTION}, got {name!r}")
    if augment not in (None, "none") and name not in DETECTION:
        raise ValueError(f"augment: only for detection data sets, got {augment!r} for {name!r}")
    if image_dtype != "float32" and name not in DETECTION:
        raise ValueError(f"image_dtype: only for detection data sets, got {image_dtype!r} for {name!r}")
    return source_dataset(source, convert, split, batch_size, seed, num_devices, info=info, shuffle=shuffle,
                          drop_remainder=drop_remainder, host_id=host_id, num_hosts=num_hosts,
                          augment=augmentation(augment, info.get("image_size", (None,))[0]))
