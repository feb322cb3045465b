"""SSD augmentation: exact box transforms (checked on the pixels they enclose), IoU constraint, determinism."""
import numpy as np
import pytest

from jaxvision.data import augment as A


def _example(h=60, w=80):
    yy, xx = np.mgrid[:h, :w]
    image = np.stack([xx, yy, (xx * 7 + yy * 3) % 256], -1).astype(np.uint8)  # pixel (y, x) holds (x, y, .)
    px = np.array([[10, 5, 30, 25], [40, 20, 76, 58], [2, 40, 12, 52]], np.float64)  # xyxy integer pixels
    bbox = np.stack([px[:, 1] / h, px[:, 0] / w, px[:, 3] / h, px[:, 2] / w], -1).astype(np.float32)
    return {"image": image, "objects": {"bbox": bbox, "label": np.array([1, 2, 3]),
                                        "is_difficult": np.array([False, True, False])}}, px


def _pixels(example):
    """xyxy integer pixels of the example's normalized boxes, rounded."""
    h, w = example["image"].shape[:2]
    b = np.asarray(example["objects"]["bbox"], np.float64)
    return np.round(np.stack([b[:, 1] * w, b[:, 0] * h, b[:, 3] * w, b[:, 2] * h], -1)).astype(int)


@pytest.mark.parametrize("seed", range(12))
def test_crop_then_flip_moves_boxes_with_their_pixels(seed):
    ex, px = _example()
    rng = np.random.default_rng(seed)
    out = A.hflip(A.iou_crop(ex, rng), rng)
    img, boxes = out["image"], _pixels(out)
    flipped = not np.array_equal(img[0, 1, 0].astype(int) - img[0, 0, 0].astype(int), 1) if img.shape[1] > 1 else 0
    for k, label in enumerate(out["objects"]["label"]):
        x0, y0, x1, y1 = boxes[k]
        src = px[label - 1].astype(int)
        corner = img[y0, x0] if not flipped else img[y0, x1 - 1]  # the box's top-left source pixel
        if x0 > 0 and y0 > 0 and (x1 < img.shape[1] if flipped else True):  # box not clipped on that side
            assert (int(corner[0]), int(corner[1])) == (src[0], src[1]), (seed, k)
    # kept objects keep their per-object fields together
    np.testing.assert_array_equal(out["objects"]["is_difficult"], out["objects"]["label"] == 2)


def test_crop_respects_min_iou_and_centres():
    _, px = _example()
    for seed in range(30):
        crop = A.choose_crop(px, 60, 80, np.random.default_rng(seed))
        if crop is None:
            continue
        x0, y0, x1, y1 = crop
        assert 0 <= x0 < x1 <= 80 and 0 <= y0 < y1 <= 60 and 0.5 <= (x1 - x0) / (y1 - y0) <= 2
        centres = (px[:, :2] + px[:, 2:]) / 2
        assert ((centres[:, 0] > x0) & (centres[:, 0] < x1) & (centres[:, 1] > y0) & (centres[:, 1] < y1)).any()


def test_photometric_is_deterministic_and_bounded():
    ex, _ = _example()
    a = A.photometric_distort(ex["image"], np.random.default_rng(3))
    b = A.photometric_distort(ex["image"], np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.uint8 and a.shape == ex["image"].shape and not np.array_equal(a, ex["image"])
