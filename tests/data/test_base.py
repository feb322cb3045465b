"""Dataset mechanics: determinism, epochs, padding, host and device sharding."""
import numpy as np
import pytest

from jaxvision.data.base import Dataset, array_batches


def _ds(n=10, b=4, **kw):
    arrays = {"x": np.arange(n, dtype=np.int32), "y": np.arange(n, dtype=np.float32)[:, None] * 2}
    kw.setdefault("host_id", 0)
    kw.setdefault("num_hosts", 1)
    return Dataset(n, array_batches(arrays), b, **kw)


def test_len_and_drop_remainder():
    assert len(_ds(10, 4)) == 2
    ds = _ds(10, 4, drop_remainder=False, shuffle=False)
    assert len(ds) == 3
    last = ds.batch(2)
    np.testing.assert_array_equal(last["x"], [8, 9, 9, 9])
    np.testing.assert_array_equal(last["valid"], [True, True, False, False])
    assert ds.batch(0)["valid"].all()


def test_epoch_order_deterministic_and_distinct():
    a, b = _ds(seed=3), _ds(seed=3)
    np.testing.assert_array_equal(a.order(5), b.order(5))
    assert not np.array_equal(a.order(0), a.order(1))
    assert not np.array_equal(a.order(0), _ds(seed=4).order(0))
    assert sorted(a.order(2)) == list(range(10))
    first = [x["x"] for x in a]   # iter() walks epochs 0, 1, ...
    second = [x["x"] for x in a]
    np.testing.assert_array_equal(np.concatenate(first), a.order(0)[:8])
    np.testing.assert_array_equal(np.concatenate(second), a.order(1)[:8])
    np.testing.assert_array_equal(a.batch(1, epoch=7)["x"], a.order(7)[4:8])


def test_hosts_partition_the_global_batch():
    full = _ds(16, 8, seed=1).batch(1, epoch=2)["x"]
    parts = [_ds(16, 8, seed=1, host_id=h, num_hosts=2).batch(1, epoch=2)["x"] for h in range(2)]
    np.testing.assert_array_equal(np.concatenate(parts), full)


def test_device_axis():
    ds = _ds(16, 8, num_devices=4)
    b = ds.batch(0)
    assert b["x"].shape == (4, 2) and b["y"].shape == (4, 2, 1)
    np.testing.assert_array_equal(b["x"].reshape(-1), _ds(16, 8).batch(0)["x"])


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        _ds(16, 6, num_devices=4)
    with pytest.raises(ValueError, match="batch_size"):
        _ds(4, 8)
    with pytest.raises(IndexError):
        _ds().batch(2)
    with pytest.raises(ValueError, match="host_id"):
        _ds(host_id=2, num_hosts=2)


def test_load_unknown_name_and_option():
    from jaxvision.data import load

    with pytest.raises(ValueError, match="name"):
        load("nope", "train", 4)
    with pytest.raises(ValueError, match="bogus"):
        load("digits", "train", 4, bogus=1)


@pytest.mark.parametrize("name, opts", [("mixture", {"num_examples": 32}), ("photos", {"num_examples": 32,
                                                                                        "patch_size": 8})])
def test_random_augmentation_independent_of_host_split(name, opts):
    from jaxvision.data import load

    full = load(name, "train", 8, seed=1, host_id=0, num_hosts=1, **opts).batch(2, epoch=3)
    parts = [load(name, "train", 8, seed=1, host_id=h, num_hosts=2, **opts).batch(2, epoch=3) for h in range(2)]
    for k in full:
        np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), full[k])


def test_with_arrays_adds_rows_of_the_same_examples():
    ds = _ds(10, 4, seed=2, drop_remainder=False)
    extra = ds.with_arrays({"z": np.arange(10) * 10})
    for i in range(len(ds)):
        b = extra.batch(i, epoch=1)
        np.testing.assert_array_equal(b["z"], b["x"] * 10)
        np.testing.assert_array_equal(b["valid"], ds.batch(i, epoch=1)["valid"])
    with pytest.raises(ValueError, match=r"arrays\['z'\]: expected 10 rows"):
        ds.with_arrays({"z": np.zeros(3)})
