"""Detection batches built in place: the fast path of ``tfds.SourceBatches`` for detection sets.

``DetectionBatches(source, convert, augment)(idx, rngs)`` returns, bit for bit, what the generic
``SourceBatches`` returns (row ``j`` = ``convert(augment(source[idx[j]], rngs[j]), idx[j])``, then ``np.stack``)
when ``convert`` is a ``tfds.DetectionConverter`` and ``augment`` is None or an ``augment.SSDAugment`` resizing to
the converter's size (what ``load(..., augment='ssd' | 'ssd_geometric' | None)`` builds), with less work per image:

- the IoU crop is a view of the decoded image, resized by OpenCV straight into the batch's preallocated image
  array (no example dicts, no copy of the crop, no per-row arrays to stack), and flipped there in place;
- the boxes of the whole batch are clipped, scaled, flipped and padded at once (the same float32 operations,
  element by element, as ``augment.hflip`` and ``tfds.convert_detection`` on each row).

The random draws per row are the generic path's (crop, then flip, then colours), so batches stay a function of
(seed, epoch, index). A batch with an example the fast path does not cover (an image that is not uint8
[H, W, C], per-object arrays of different lengths) is built by the generic path instead.
"""
from __future__ import annotations

import numpy as np

from jaxvision.data import augment as A


class DetectionBatches:
    """``make_batch(idx, rngs) -> dict`` of ``tfds.convert_detection`` rows (see the module docstring); picklable
    when ``source`` is (grain worker processes).

    Args:
      source: random-access TFDS-format examples (``image`` uint8 [H, W, C], ``objects`` with normalized
        ``bbox`` [N, 4], ``label`` [N], ``is_difficult`` or ``is_crowd`` [N], optional ``area`` [N]).
      convert: a ``tfds.DetectionConverter`` (output size S, ``max_boxes`` M, ``resize``, ``image_dtype``).
      augment: None or an ``augment.SSDAugment`` with ``size == S``.
    """

    def __init__(self, source, convert, augment=None):
        if augment is not None and not (type(augment) is A.SSDAugment and augment.size == convert.image_size):
            raise ValueError(f"augment: expected None or SSDAugment(size={convert.image_size}), got {augment!r}")
        self.source, self.convert, self.augment = source, convert, augment

    def _generic(self, idx, rngs) -> dict:
        from jaxvision.data.tfds import SourceBatches

        return SourceBatches(self.source, self.convert, self.augment)(idx, rngs)

    def __call__(self, idx, rngs) -> dict:
        import cv2

        from jaxvision.data.tfds import _resize, image_id_of

        conv, aug = self.convert, self.augment
        size, n = conv.image_size, len(idx)
        dtype = np.uint8 if conv.image_dtype == "uint8" else np.float32
        images = None
        boxes, labels, flags, areas = [], [], [], []  # per row: the example's objects (all N of them)
        crowd_rows, has_area, flip = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool)
        crops = np.zeros((n, 4), np.float64)  # x0, y0, x1, y1 of the IoU crop; x1 = 0: not cropped
        hw = np.zeros((n, 2), np.float64)  # the image size the normalized boxes refer to
        image_id, image_hw = np.zeros(n, np.int64), np.zeros((n, 2), np.int32)
        for j, i in enumerate(idx):
            example = self.source[int(i)]
            image, objects = np.asarray(example["image"]), example["objects"]
            bbox = np.asarray(objects["bbox"], np.float64).reshape(-1, 4)
            label = np.asarray(objects["label"])
            flag_key = "is_difficult" if "is_difficult" in objects else "is_crowd"
            flag = np.asarray(objects[flag_key], bool) if flag_key in objects else np.zeros(len(bbox), bool)
            area = np.asarray(objects["area"], np.float32) if "area" in objects else None
            if (image.ndim != 3 or image.dtype != np.uint8 or (images is not None and image.shape[2] !=
                                                               images.shape[3])
                    or any(a.ndim != 1 or len(a) != len(bbox) for a in (label, flag, area) if a is not None)):
                return self._generic(idx, rngs)  # other images or ragged objects: the general rules
            if images is None:
                images = np.empty((n, size, size, image.shape[2]), dtype)
            image = A.opencv_view(image)
            h, w = image.shape[:2]
            hw[j] = h, w
            image_id[j] = image_id_of(example, int(i))
            boxes.append(bbox), labels.append(label), flags.append(flag)
            crowd_rows[j] = flag_key == "is_crowd"
            rng = rngs[j] if aug is not None else None
            if aug is not None and aug.crop:
                crop = A.choose_crop(bbox[:, [1, 0, 3, 2]] * (w, h, w, h), h, w, rng)
                if crop is not None:
                    crops[j] = crop
                    x0, y0, x1, y1 = crop
                    image = image[y0:y1, x0:x1]
                    area = None  # the annotation area no longer applies (augment._objects_subset)
            has_area[j] = area is not None
            areas.append(area if area is not None else np.zeros(len(bbox), np.float32))
            row = images[j]
            image_hw[j] = (size, size) if aug is not None else (h, w)
            if aug is None and (conv.resize != "cv2" or dtype is not np.uint8):
                row[...] = _resize(image, size, conv.resize, conv.image_dtype)
                continue
            # OpenCV bilinear straight into the batch (augment.resize_image / tfds._resize with 'cv2')
            target = row if dtype is np.uint8 else np.empty(row.shape, np.uint8)
            plane = target[..., 0] if target.shape[2] == 1 else target  # OpenCV's one-channel images are 2-d
            if image.shape[:2] == (size, size):
                target[...] = image
            elif cv2.resize(image[..., 0] if plane is not target else image, (size, size), dst=plane,
                            interpolation=cv2.INTER_LINEAR) is not plane:
                raise RuntimeError("cv2.resize did not write into the batch")  # (OpenCV returns dst when it fills it)
            if aug is not None and aug.flip and rng.random() < 0.5:
                flip[j] = True
                cv2.flip(plane, 1, dst=plane)
            if aug is not None and aug.photometric:
                target[...] = A.photometric_distort(target, rng)
            if dtype is not np.uint8:
                np.divide(target, 255.0, out=row, dtype=np.float32)
        out = self._objects(boxes, labels, flags, areas, crops, hw, flip, has_area)
        valid = out.pop("valid")
        return {"image": images, "boxes": out["boxes"], "labels": out["labels"], "mask": valid,
                "difficult": out["flags"] & ~crowd_rows[:, None], "crowd": out["flags"] & crowd_rows[:, None],
                "image_id": image_id, "image_hw": image_hw, "area": out["area"]}

    def _objects(self, boxes, labels, flags, areas, crops, hw, flip, has_area) -> dict:
        """The rows' objects, padded: cropped (``augment.crop_boxes``), the first ``max_boxes`` kept, flipped
        (``augment.flip_boxes``) and converted to output pixels (``tfds.convert_detection``), all rows at once."""
        size, m, n = self.convert.image_size, self.convert.max_boxes, len(boxes)
        counts = np.array([len(b) for b in boxes])
        p = max(int(counts.max()), 1)
        present = np.arange(p) < counts[:, None]  # [n, P]
        bbox = np.zeros((n, p, 4), np.float64)
        label, flag, area = np.zeros((n, p), np.int64), np.zeros((n, p), bool), np.zeros((n, p), np.float32)
        if counts.sum():
            bbox[present] = np.concatenate(boxes)
            label[present] = np.concatenate(labels)
            flag[present] = np.concatenate(flags)
            area[present] = np.concatenate(areas)
        cropped = crops[:, 2] > 0
        norm = bbox.astype(np.float32)
        keep = present
        if cropped.any():  # augment.crop_boxes on every row at once (uncropped rows: a dummy 1 px crop, unused)
            px = A.pixel_boxes(bbox, hw[:, :1], hw[:, 1:])
            safe = np.where(cropped[:, None], crops, (0.0, 0.0, 1.0, 1.0))
            inside, new = A.crop_boxes(px, tuple(safe[:, k:k + 1] for k in range(4)))
            norm = np.where(cropped[:, None, None], new, norm)
            keep = np.where(cropped[:, None], inside & present, present)
        order = np.argsort(~keep, axis=1, kind="stable")[:, :m]  # the kept objects first, in their order
        take = min(p, m)
        valid = np.zeros((n, m), bool)
        valid[:, :take] = np.take_along_axis(keep, order, 1)
        norm, label, flag, area = (np.take_along_axis(a, order if a.ndim == 2 else order[..., None], 1)
                                   for a in (norm, label, flag, area))
        if self.augment is not None and self.augment.flip:
            norm = np.where(flip[:, None, None], A.flip_boxes(norm), norm)
        ymin, xmin, ymax, xmax = (np.zeros((n, m), np.float32) for _ in range(4))
        for k, a in enumerate((ymin, xmin, ymax, xmax)):
            a[:, :take] = np.clip(norm[..., k], 0.0, 1.0)
        img_h, img_w = self._image_hw(hw)
        box_area = (xmax - xmin) * img_w * (ymax - ymin) * img_h
        full_area = np.zeros((n, m), np.float32)
        full_area[:, :take] = area
        labels_out = np.full((n, m), -1, np.int32)
        labels_out[:, :take] = label
        flags_out = np.zeros((n, m), bool)
        flags_out[:, :take] = flag
        return {"valid": valid,
                "boxes": np.where(valid[..., None], np.stack([xmin, ymin, xmax, ymax], -1) * size, np.float32(0)),
                "labels": np.where(valid, labels_out, np.int32(-1)), "flags": flags_out & valid,
                "area": np.where(valid, np.where(has_area[:, None], full_area, box_area), np.float32(0))}

    def _image_hw(self, hw):
        """float32 [n, 1] heights and widths of the converted images (the resized size after an augmentation)."""
        if self.augment is not None:
            s = np.full((len(hw), 1), self.convert.image_size, np.float32)
            return s, s
        return hw[:, :1].astype(np.float32), hw[:, 1:].astype(np.float32)
