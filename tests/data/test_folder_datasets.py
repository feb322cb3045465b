"""coco_json and voc_xml: one's own detection data written to disk by the test, read as fixed-shape batches."""
import json
import os

import numpy as np
import pytest
from folder_fixtures import COCO_TRAIN, VOC, write_coco, write_voc

from jaxvision.data import load

S = 20


def test_coco_json_batches_exact(tmp_path):
    root = write_coco(str(tmp_path))
    ds = load("coco_json", "train", 3, data_dir=root, image_size=S, max_boxes=3, shuffle=False)
    b = ds.batch(0)
    assert ds.info["class_names"] == ("ball", "cup") and ds.info["category_ids"] == (3, 7)
    assert ds.info["num_classes"] == 2
    np.testing.assert_array_equal(b["image_id"], [17, 5, 1001])
    np.testing.assert_array_equal(b["image_hw"], [[40, 60], [48, 32], [30, 30]])
    # image 17: (6, 4, 24, 16) px of 60x40 -> xyxy at 20x20: x * 20/60, y * 20/40
    np.testing.assert_allclose(b["boxes"][0, :2], [[2, 2, 10, 10], [10, 10, 50 / 3, 16]], rtol=1e-5)
    np.testing.assert_array_equal(b["labels"], [[0, 1, -1], [1, -1, -1], [-1, -1, -1]])  # cat 3 -> 0, cat 7 -> 1
    np.testing.assert_array_equal(b["crowd"][:, 0], [False, True, False])
    np.testing.assert_allclose(b["area"][0, :2], [24 * 16 * 0.75, 20 * 12 * 0.75])  # the file's area field
    assert not b["mask"][2].any() and b["image"].shape == (3, S, S, 3)
    # the PNG is read exactly: a constant image stays constant through the resize
    h, w = COCO_TRAIN[0][:2]
    np.testing.assert_allclose(b["image"][0, 0, 0], 40 / 255, atol=1e-6)
    assert (h, w) == (40, 60)


def test_coco_json_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="instances_val.json"):
        load("coco_json", "val", 1, data_dir=str(tmp_path))
    root = write_coco(str(tmp_path))
    path = os.path.join(root, "annotations", "instances_train.json")
    coco = json.load(open(path))
    coco["annotations"][1]["category_id"] = 99
    json.dump(coco, open(path, "w"))
    with pytest.raises(ValueError, match=r"annotations\[1\]: category_id 99"):
        load("coco_json", "train", 1, data_dir=root)
    with pytest.raises(ValueError, match="data_dir"):
        load("coco_json", "train", 1)


def test_voc_xml_batches_exact(tmp_path):
    root = write_voc(str(tmp_path))
    ds = load("voc_xml", "train", 2, data_dir=root, image_size=S, max_boxes=2, shuffle=False)
    b = ds.batch(0)
    assert ds.info["class_names"] == ("ball", "cup")
    np.testing.assert_array_equal(b["image_id"], [7, 2008000123])
    np.testing.assert_array_equal(b["image_hw"], [[40, 50], [36, 24]])
    # devkit (11, 5, 31, 25) 1-based in 50x40 -> ((x - 1) / 50 * 20, (y - 1) / 40 * 20)
    np.testing.assert_allclose(b["boxes"][0, 0], [4, 2, 12, 12], rtol=1e-5)
    np.testing.assert_array_equal(b["difficult"], [[False, True], [False, False]])
    np.testing.assert_array_equal(b["labels"], [[0, 1], [1, -1]])
    assert len(VOC) == 2


def test_voc_xml_unknown_class_says_labels_txt(tmp_path):
    root = write_voc(str(tmp_path), labels=None)  # no labels.txt: VOC's 20 classes, 'ball' is not one
    with pytest.raises(ValueError, match="labels.txt"):
        load("voc_xml", "train", 1, data_dir=root)
    with pytest.raises(FileNotFoundError, match="test.txt"):
        load("voc_xml", "test", 1, data_dir=root)


def test_read_image_decodes_jpeg_like_pil(tmp_path):
    from PIL import Image

    from jaxvision.data.coco_json import read_image

    rng = np.random.default_rng(0)
    img = (rng.random((37, 53, 3)) * 255).astype(np.uint8)
    for name, kw in (("x.jpg", {"quality": 90}), ("y.png", {}), ("g.jpg", {"quality": 80})):
        pixels = img[..., 0] if name == "g.jpg" else img  # a greyscale JPEG becomes 3 equal channels
        Image.fromarray(pixels).save(tmp_path / name, **kw)
        with Image.open(tmp_path / name) as im:
            want = np.asarray(im.convert("RGB"))
        got = read_image(str(tmp_path / name))
        assert got.dtype == np.uint8 and got.shape == (37, 53, 3)
        np.testing.assert_array_equal(got, want, err_msg=name)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_image(str(tmp_path / "missing.jpg"))
