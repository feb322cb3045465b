"""TFDS adapters on tfds.testing.mock_data (nothing downloaded) plus exact box conversion."""
import importlib.util

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from jaxvision.data import load  # noqa: E402
from jaxvision.data.tfds import convert_detection  # noqa: E402

HAS_TF = importlib.util.find_spec("tensorflow") is not None


def _mock(n=6):
    return tfds.testing.mock_data(num_examples=n, policy=tfds.testing.MockPolicy.USE_CODE)


@pytest.mark.parametrize("name, split", [("voc/2007", "train"), ("voc/2012", "val")])
def test_voc(name, split):
    with _mock():
        ds = load(name, split, 4, image_size=64, max_boxes=10)
        b = ds.batch(0)
    assert len(ds) == 1 and ds.info["num_classes"] == 20 and ds.info["class_names"][0] == "aeroplane"
    assert b["image"].shape == (4, 64, 64, 3) and b["image"].dtype == np.float32
    assert 0 <= b["image"].min() and b["image"].max() <= 1
    assert b["boxes"].shape == (4, 10, 4) and b["labels"].shape == (4, 10)
    m = b["mask"]
    assert m.any()
    np.testing.assert_array_equal(b["labels"] < 0, ~m)
    assert (b["boxes"][m] >= 0).all() and (b["boxes"][m] <= 64).all()
    assert not b["difficult"][~m].any()


@pytest.mark.parametrize("name, shape", [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))])
def test_classification(name, shape):
    with _mock(8):
        ds = load(name, "test", 4, num_devices=2)
        b = ds.batch(1)
    assert b["image"].shape == (2, 2) + shape and b["label"].shape == (2, 2) and b["label"].dtype == np.int32
    assert ds.info["num_classes"] == 10


def test_celeb_a():
    with _mock(4):
        b = load("celeb_a", "train", 2, image_size=32).batch(0)
    assert b["image"].shape == (2, 32, 32, 3) and b["attributes"].shape == (2, 40)


def test_box_conversion_is_exact():
    ex = {"image": np.zeros((100, 200, 3), np.uint8),
          "objects": {"bbox": np.array([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0], [0.3, 0.3, 0.4, 0.4]],
                                       np.float32),
                      "label": np.array([3, 7, 1]), "is_crowd": np.array([False, True, False])}}
    out = convert_detection(ex, image_size=50, max_boxes=2)
    np.testing.assert_allclose(out["boxes"], [[10, 5, 30, 25], [0, 0, 50, 50]], rtol=1e-6)  # xyxy px
    np.testing.assert_array_equal(out["labels"], [3, 7])
    np.testing.assert_array_equal(out["crowd"], [False, True])
    assert out["image"].shape == (50, 50, 3) and out["mask"].all()


def test_coco_from_a_source_sequence():
    """The coco/2017 path on a TFDS-format source (tfds' own coco builder needs TensorFlow even for mocks)."""
    rng = np.random.default_rng(0)
    source = [{"image": rng.integers(0, 255, (40, 60, 3), dtype=np.uint8),
               "objects": {"bbox": np.array([[0.1, 0.1, 0.9, 0.5]], np.float32), "label": np.array([k]),
                           "is_crowd": np.array([False])}} for k in range(4)]
    b = load("coco/2017", "val", 4, image_size=32, source=source, shuffle=False).batch(0)
    np.testing.assert_array_equal(b["labels"][:, 0], [0, 1, 2, 3])
    np.testing.assert_allclose(b["boxes"][0, 0], [3.2, 3.2, 16.0, 28.8], rtol=1e-5)
    assert b["boxes"].shape == (4, 100, 4)


@pytest.mark.skipif(not HAS_TF, reason="tfds' coco builder imports TensorFlow, which is not installed "
                                       "(pip install 'jaxvision[tfds]'); its conversion is tested above")
def test_coco_mock():
    with _mock(3):
        b = load("coco/2017", "val", 2, image_size=32).batch(0)
    assert b["boxes"].shape == (2, 100, 4)


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        load("mnist", "train", 4, data_dir=str(tmp_path))
