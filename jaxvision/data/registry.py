"""``jaxvision.data.load``: one entry point for every data set, embedded or TFDS."""
from __future__ import annotations

import importlib

from jaxvision.data.base import Dataset

EMBEDDED = {"shapes": "jaxvision.data.shapes", "digits": "jaxvision.data.digits",
            "photos": "jaxvision.data.photos", "mixture": "jaxvision.data.mixture", "pairs": "jaxvision.data.pairs",
            "sr_photos": "jaxvision.data.sr_photos", "paired_folder": "jaxvision.data.paired_folder",
            "shape_captions": "jaxvision.data.shape_captions"}
LOCAL = {"text_embeddings": "jaxvision.data.text_embeddings"}   # read from the user's files (``path=``)
TFDS = ("voc/2007", "voc/2012", "coco/2017", "mnist", "cifar10", "celeb_a", "div2k/bicubic_x4")
# One's own detection data in a folder (``data_dir=...``): a COCO annotation file, or VOC-style XML files.
FOLDERS = {"coco_json": "jaxvision.data.coco_json", "voc_xml": "jaxvision.data.voc_xml"}
NAMES = tuple(EMBEDDED) + tuple(LOCAL) + TFDS + tuple(FOLDERS)


def load(name: str, split: str, batch_size: int, seed: int = 0, num_devices: int | None = None,
         **options) -> Dataset:
    """Load one split of a data set as a ``Dataset`` of fixed-shape numpy batches.

    Args:
      name: 'shapes', 'digits', 'photos', 'mixture', 'pairs', 'sr_photos', 'shape_captions' (embedded, nothing
        downloaded), 'paired_folder' (pix2pix A|B files under ``root``), 'text_embeddings' (images + precomputed
        caption embeddings from an .npz, ``path=``), a TFDS name ('voc/2007', 'voc/2012', 'coco/2017', 'mnist',
        'cifar10', 'celeb_a', 'div2k/bicubic_x4'; see ``jaxvision.data.tfds``), or one's own detection folder:
        'coco_json' (``jaxvision.data.coco_json``), 'voc_xml' (``jaxvision.data.voc_xml``), both with
        ``data_dir=...``.
      split: e.g. 'train', 'val', 'test' (which ones exist depends on the data set).
      batch_size: global batch size over all hosts and devices.
      seed: seeds the epoch order and per-batch augmentation.
      num_devices: if given, arrays get a leading device axis [D, B/D, ...] (for ``jax.pmap``).
      **options: data-set specific (``image_size``, ``max_boxes``, ``single_object``, ``backgrounds``,
        ``num_examples`` for shapes and shape_captions; ``path`` for text_embeddings; ``size`` for digits;
        ``patch_size`` for photos; ``kind`` for mixture and pairs; ``patch_size``, ``scale`` for sr_photos and
        div2k; ``root``, ``direction`` for paired_folder; ``data_dir``, ``image_size``, ``max_boxes`` for TFDS
        and folder sets;
        ``drop_remainder``, ``host_id``, ``num_hosts`` for all).

    Returns:
      A ``Dataset``: iterate it for one epoch of batches, ``len()`` is batches per epoch, ``.batch(i, epoch)`` is
      random access, ``.info`` holds num_classes, image_size, class_names, ...
    """
    if name in EMBEDDED or name in LOCAL or name in FOLDERS:
        module = importlib.import_module({**EMBEDDED, **LOCAL, **FOLDERS}[name])
    elif name in TFDS:
        from jaxvision.data import tfds as module

        options["name"] = name
    else:
        raise ValueError(f"name: expected one of {NAMES}, got {name!r}")
    try:
        return module.load(split, batch_size, seed, num_devices, **options)
    except TypeError as e:
        if "unexpected keyword" in str(e):
            raise ValueError(f"options for data set {name!r}: {e}") from None
        raise
