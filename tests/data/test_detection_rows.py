"""The in-place detection batches (``data/detection_rows.py``) are bit for bit the generic ``SourceBatches`` rows
(every option: augment, resize, image dtype, truncation, VOC / COCO flags and areas, odd strides); the IoU crop
draws the same crops per seed as before it was vectorised."""
import numpy as np
import pytest

from jaxvision.data import augment as A
from jaxvision.data import load
from jaxvision.data.base import ExampleRngs
from jaxvision.data.detection_rows import DetectionBatches
from jaxvision.data.tfds import DetectionConverter, SourceBatches, augmentation


def _source(n=10, coco=False, seed=0):
    g = np.random.default_rng(seed)
    out = []
    for k in range(n):
        h, w = (24, 24) if k == 3 else (int(g.integers(16, 70)), int(g.integers(16, 70)))
        m = 0 if k == 5 else int(g.integers(1, 7))
        lo = g.uniform(-0.05, 0.8, (m, 2))
        objects = {"bbox": np.concatenate([lo, lo + g.uniform(0.02, 0.5, (m, 2))], -1).astype(np.float32),
                   "label": g.integers(0, 20, m)}
        if coco:
            objects |= {"is_crowd": g.random(m) < 0.3, "area": g.uniform(1, 500, m).astype(np.float32)}
            example = {"image/id": 1000 + k}
        else:
            objects["is_difficult"] = g.random(m) < 0.3
            example = {"image/filename": f"2008_{k:06d}.jpg"}
        image = g.integers(0, 256, (h, w, 3), dtype=np.uint8)
        image = image[::-1] if k == 7 else np.asfortranarray(image) if k == 8 else image  # strides OpenCV can't read
        out.append({**example, "image": image, "objects": objects})
    return out


def _same(a, b, msg=""):
    assert list(a) == list(b), msg
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, (k, msg)
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"{k} {msg}")
        if a[k].dtype.kind == "f":
            np.testing.assert_array_equal(np.signbit(a[k]), np.signbit(b[k]), err_msg=f"{k} {msg}")


@pytest.mark.parametrize("coco", [False, True])
def test_in_place_batches_are_the_generic_rows(coco):
    source = _source(coco=coco, seed=int(coco))
    for augment in (None, "ssd", "ssd_geometric"):
        for resize, dtype, max_boxes in (("cv2", "uint8", 8), ("cv2", "float32", 2), ("pil", "uint8", 2),
                                         ("pil", "float32", 8)):
            convert, aug = DetectionConverter(24, max_boxes, resize, dtype), augmentation(augment, 24)
            fast, generic = DetectionBatches(source, convert, aug), SourceBatches(source, convert, aug)
            for seed in range(3):
                idx = np.random.default_rng(seed).permutation(len(source))[:6]
                rngs = ExampleRngs(seed, 1, np.arange(6))
                _same(fast(idx, rngs), generic(idx, rngs), f"{augment} {resize} {dtype} {max_boxes} {seed}")


def test_grey_images_and_batches_without_objects_are_the_generic_rows():
    grey = [{**ex, "image": ex["image"][..., :1].copy()} for ex in _source()]  # [H, W, 1]: 2-d for OpenCV
    empty = [{**ex, "objects": {k: v[:0] for k, v in ex["objects"].items()}} for ex in _source(coco=True)]
    for source in (grey, empty):
        for augment in (None, "ssd_geometric"):
            for resize, dtype in (("cv2", "uint8"), ("cv2", "float32"), ("pil", "uint8")):
                convert, aug = DetectionConverter(24, 4, resize, dtype), augmentation(augment, 24)
                idx, rngs = np.arange(2, 8), ExampleRngs(3, 0, np.arange(6))
                _same(DetectionBatches(source, convert, aug)(idx, rngs), SourceBatches(source, convert, aug)(idx, rngs),
                      f"{augment} {resize} {dtype}")


def test_load_uses_the_in_place_batches_and_falls_back_for_other_inputs():
    source = _source()
    ds = load("voc/2007", "train", 4, seed=2, image_size=24, max_boxes=4, source=source, augment="ssd_geometric",
              resize="cv2", image_dtype="uint8")
    assert isinstance(ds._make_batch, DetectionBatches)
    # ragged objects (fewer labels than boxes) take the generic rules: the same results
    odd = [dict(ex) for ex in source]
    odd[1] = {**odd[1], "objects": {**odd[1]["objects"], "label": odd[1]["objects"]["label"][:1]}}
    convert, aug = DetectionConverter(24, 4, "cv2", "uint8"), augmentation("ssd", 24)
    rngs = ExampleRngs(0, 0, np.arange(3))
    _same(DetectionBatches(odd, convert, aug)([0, 1, 2], rngs), SourceBatches(odd, convert, aug)([0, 1, 2], rngs))
    with pytest.raises(ValueError, match=r"augment: expected None or SSDAugment\(size=24\), got"):
        DetectionBatches(source, convert, A.SSDAugment(32))


def test_choose_crop_draws_the_crops_it_drew_before_vectorising():
    """Crops of the previous implementation (one numpy draw per quantity) for seeds 0-7: the same draws give the
    same crops, so seeds keep their augmentation."""
    px = np.array([[10, 5, 30, 25], [40, 20, 76, 58], [2, 40, 12, 52]], np.float64)
    assert [A.choose_crop(px, 60, 80, np.random.default_rng(s)) for s in range(8)] == [
        (36, 25, 80, 56), (37, 1, 75, 54), (41, 33, 78, 57), (6, 1, 72, 58), None, None, (28, 13, 70, 59), None]
    px = np.array([[100.5, 40.25, 380.0, 300.75], [10, 200, 60, 370]], np.float64)
    assert [A.choose_crop(px, 375, 500, np.random.default_rng(s)) for s in range(8)] == [
        (86, 34, 374, 375), (42, 17, 340, 346), (75, 34, 361, 295), (34, 5, 452, 363), None, (120, 62, 404, 281),
        (7, 75, 378, 364), None]
