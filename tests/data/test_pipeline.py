"""grain pipeline: the batches of steps start..stop are exactly ``batch(k % len, k // len)`` whatever the workers
and threads; fit resumes exactly with it; device prefetch keeps the order."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision.data import load
from jaxvision.data.pipeline import step_batches
from jaxvision.train import TrainState, fit, make_train_step
from jaxvision.train.parallel import prefetch_to_device


def _source(n=5):
    rng = np.random.default_rng(0)
    return [{"image": rng.integers(0, 255, (30 + 4 * k, 40, 3), dtype=np.uint8),
             "objects": {"bbox": np.array([[0.1, 0.1, 0.6, 0.5], [0.4, 0.3, 0.9, 0.95]], np.float32),
                         "label": np.array([k, k + 1]), "is_difficult": np.array([False, True])}}
            for k in range(n)]


def _same(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_threads_and_workers_give_the_same_batches():
    ds = load("voc/2007", "train", 2, seed=3, image_size=24, max_boxes=3, source=_source(), augment="ssd",
              resize="cv2")
    want = [ds.batch(k % len(ds), k // len(ds)) for k in range(1, 6)]  # crosses epochs 0 -> 2
    for loader in ({"threads": 2}, {"workers": 2, "buffer": 1}):
        got = list(step_batches(ds, 1, 6, **loader))
        assert len(got) == 5, loader
        for a, b in zip(got, want):
            _same(a, b)
    assert not np.array_equal(want[0]["image"], load("voc/2007", "train", 2, seed=3, image_size=24, max_boxes=3,
                                                     source=_source(), resize="cv2").batch(1 % 2, 0)["image"])


def test_fit_with_a_loader_resumes_exactly(tmp_path):
    def problem():
        params = {"w": jnp.zeros((2, 25)), "b": jnp.zeros(25)}
        state = TrainState.create(apply_fn=None, params=params, tx=optax.sgd(0.05), rng=jax.random.PRNGKey(0))

        def loss_fn(params, batch_stats, batch, rng):
            logits = batch["x"] @ params["w"] + params["b"]
            return optax.softmax_cross_entropy_with_integer_labels(logits, batch["mode"]).mean(), (batch_stats, {})

        return state, make_train_step(loss_fn)

    ds = load("mixture", "train", 16, kind="grid", num_examples=48).with_loader(threads=2)
    state, step = problem()
    straight, _ = fit(state, step, ds, num_steps=7, workdir=str(tmp_path / "a"), experiment="t", progress=False,
                      checkpoint_every=100, log_every=7)
    fit(state, step, ds, num_steps=4, workdir=str(tmp_path / "b"), experiment="t", progress=False, log_every=4)
    resumed, _ = fit(state, step, ds, num_steps=7, workdir=str(tmp_path / "b"), experiment="t", progress=False,
                     log_every=7)
    assert int(resumed.step) == 7
    for a, b in zip(jax.tree_util.tree_leaves(straight.params), jax.tree_util.tree_leaves(resumed.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # and the same as the plain loop (no loader, no device prefetch)
    plain, _ = fit(state, step, load("mixture", "train", 16, kind="grid", num_examples=48), num_steps=7,
                   workdir=str(tmp_path / "c"), experiment="t", progress=False, log_every=7, device_prefetch=0)
    for a, b in zip(jax.tree_util.tree_leaves(straight.params), jax.tree_util.tree_leaves(plain.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_prefetch_to_device_keeps_order():
    batches = [{"x": np.full(3, k)} for k in range(5)]
    got = list(prefetch_to_device(iter(batches), 2))
    assert [int(b["x"][0]) for b in got] == list(range(5)) and isinstance(got[0]["x"], jax.Array)
    assert [int(b["x"][0]) for b in prefetch_to_device(iter(batches), 0)] == list(range(5))


def test_uint8_images_are_the_float_images_made_on_the_device():
    for opts in ({"resize": "pil"}, {"resize": "cv2"}, {"resize": "cv2", "augment": "ssd"}):
        f32 = load("voc/2007", "train", 2, seed=1, image_size=24, max_boxes=3, source=_source(), **opts).batch(1, 2)
        u8 = load("voc/2007", "train", 2, seed=1, image_size=24, max_boxes=3, source=_source(), image_dtype="uint8",
                  **opts).batch(1, 2)
        assert u8["image"].dtype == np.uint8 and f32["image"].dtype == np.float32
        # float32(x) / 255: what experiments._detection.float_images makes of them on the device, bit for bit
        np.testing.assert_array_equal(u8["image"].astype(np.float32) / 255.0, f32["image"], err_msg=str(opts))
        _same({k: v for k, v in u8.items() if k != "image"}, {k: v for k, v in f32.items() if k != "image"})


def test_ssd_geometric_is_ssd_without_the_colours():
    from jaxvision.data import augment as A
    from jaxvision.data.base import ExampleRngs

    opts = dict(seed=5, image_size=24, max_boxes=3, source=_source(), resize="cv2", image_dtype="uint8")
    ssd = load("voc/2007", "train", 4, augment="ssd", **opts)
    geo = load("voc/2007", "train", 4, augment="ssd_geometric", **opts)
    a, b = ssd.batch(0, 1), geo.batch(0, 1)
    _same({k: v for k, v in a.items() if k != "image"}, {k: v for k, v in b.items() if k != "image"})
    rngs = ExampleRngs(5, 1, np.arange(4))
    for j, i in enumerate(ssd.order(1)[:4]):  # the colours are the host's draws after the crop's and the flip's
        rng = rngs[j]
        ex = A.hflip(A.resize_image(A.iou_crop(_source()[int(i)], rng), 24), rng)
        np.testing.assert_array_equal(ex["image"], b["image"][j])
        np.testing.assert_array_equal(A.photometric_distort(ex["image"], rng), a["image"][j])
    # a function of (seed, epoch, index) whatever the loader: grain threads give the plain loop's uint8 batches
    for k, got in enumerate(step_batches(geo, 0, 3, threads=2), start=0):
        _same(got, geo.batch(k % len(geo), k // len(geo)))


def test_bad_image_dtype_and_augment_name_the_argument():
    with pytest.raises(ValueError, match=r"image_dtype: expected one of \('float32', 'uint8'\), got 'float16'"):
        load("voc/2007", "train", 2, image_size=24, source=_source(), image_dtype="float16")
    with pytest.raises(ValueError, match="augment: expected one of .*'ssd_geometric'.*got 'colour'"):
        load("voc/2007", "train", 2, image_size=24, source=_source(), augment="colour")

