"""The TFDS DCGAN configurations (mnist, cifar10, celeba) run end to end on stand-in data of the TFDS shapes."""
import json
import types

import numpy as np
import pytest

import experiments
from experiments import _dcgan

pytestmark = pytest.mark.slow  # end-to-end experiment runs: CI's slow step (pytest -m slow)

# native TFDS image shapes: the configs crop to a centre square and resize to cfg.size
SHAPES = {"dcgan_mnist": (28, 28, 1), "dcgan_cifar10": (32, 32, 3), "dcgan_celeba": (218, 178, 3)}


class _Data:
    def __init__(self, shape, batch):
        self.images = np.random.default_rng(0).uniform(0, 1, (batch,) + shape).astype(np.float32)

    def __len__(self):
        return 3

    def batch(self, i, epoch=0):
        return {"image": self.images, "label": np.zeros(len(self.images), np.int32)}


def test_configs_are_registered_with_paper_defaults():
    for name in SHAPES:
        cfg = experiments.get(name).Config()
        assert (cfg.g_learning_rate, cfg.b1, cfg.nz, cfg.ngf, cfg.ndf) == (2e-4, 0.5, 100, 64, 64)
        assert cfg.size in (32, 64) and cfg.data_parallel


@pytest.mark.parametrize("name", ["dcgan_celeba"])  # the non-square crop + resize path
def test_tiny_run_on_stand_in_data(name, tmp_path, monkeypatch):
    module = experiments.get(name)
    cfg = experiments.make_config(module, tiny=True)
    loaded = []

    def fake_load(dataset, split, batch_size, seed=0, num_devices=None, **kw):
        loaded.append((dataset, split))
        return _Data(SHAPES[name], batch_size)

    seen = {}

    def fake_fid(a, b, **kw):  # the FID Inception weights are not available in tests: check what it is fed
        seen["a"], seen["b"], seen["save_stats_a"] = a, b, kw.get("save_stats_a")
        if kw.get("save_stats_a"):  # what fid() does with it: the real side's statistics, written once
            np.savez(kw["save_stats_a"], mu=np.zeros(2), sigma=np.eye(2))
        return types.SimpleNamespace(value=1.0, num_samples=(len(a), len(b)))

    import jaxvision.metrics

    monkeypatch.setattr(_dcgan.data, "load", fake_load)
    monkeypatch.setattr(jaxvision.metrics, "fid", fake_fid)
    out = module.train(cfg, str(tmp_path))
    assert loaded[0] == (cfg.dataset, "train") and (cfg.dataset, "test") in loaded
    for side in ("a", "b"):
        x = seen[side]
        assert x.shape[1:] == (cfg.size, cfg.size, 3) and x.min() >= 0.0 and x.max() <= 1.0
    assert out["fid_num_fake"] == cfg.num_eval_samples
    assert (tmp_path / "samples_final.png").exists() and (tmp_path / "samples" / "step_000001.png").exists()
    # cached reference statistics: a second evaluation reads the .npz and loads no real images
    cache = seen["save_stats_a"]
    assert cache and cache.startswith(str(tmp_path)) and cache.endswith(".npz")
    loaded.clear()
    module.evaluate(cfg, str(tmp_path))
    assert seen["a"] == cache and seen["save_stats_a"] is None and (cfg.dataset, "test") not in loaded


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    """TINY dcgan_mnist through the real TFDS adapter (tfds.testing.mock_data: nothing downloaded), pmapped over
    the 8 simulated devices (data_parallel=True, synchronized BatchNorm); FID replaced by a recorder (no Inception
    weights in tests). Returns (module, cfg, workdir, train's result, what FID was fed)."""
    import jax

    tfds = pytest.importorskip("tensorflow_datasets")
    if jax.local_device_count() < 8:
        pytest.skip("needs the 8 simulated devices of tests/conftest.py")
    import jaxvision.metrics

    module = experiments.get("dcgan_mnist")
    cfg = experiments.make_config(module, {"data_parallel": True}, tiny=True)
    workdir = tmp_path_factory.mktemp("dcgan_mnist")
    seen = []

    def fake_fid(a, b, **kw):
        seen.append((np.asarray(a), np.asarray(b)))
        return types.SimpleNamespace(value=float(len(seen)), num_samples=(len(a), len(b)))

    with pytest.MonkeyPatch.context() as mp, tfds.testing.mock_data(
            num_examples=100, policy=tfds.testing.MockPolicy.USE_CODE):  # eval reads batches of 100
        mp.setattr(jaxvision.metrics, "fid", fake_fid)
        out = module.train(cfg, str(workdir))
        yield module, cfg, workdir, out, seen, mp


def test_tiny_dcgan_mnist_data_parallel_and_grey_to_rgb_fid(mnist_run):
    module, cfg, workdir, out, seen, _ = mnist_run
    assert cfg.data_parallel and cfg.channels == 1 and cfg.batch_size % 8 == 0
    real, fake = seen[0]
    for x, n in ((real, cfg.fid_real_samples), (fake, cfg.num_eval_samples)):
        assert x.shape == (n, cfg.size, cfg.size, 3) and x.min() >= 0.0 and x.max() <= 1.0
        np.testing.assert_array_equal(x[..., 0], x[..., 1])  # grey repeated to RGB
        np.testing.assert_array_equal(x[..., 0], x[..., 2])
    assert out["fid_num_fake"] == cfg.num_eval_samples and np.isfinite(out["d_loss"])
    records = [r for r in __import__("jaxvision.train", fromlist=["read_metrics"]).read_metrics(workdir)
               if r["split"] == "train"]
    assert [r["step"] for r in records] == [1, 2]


def test_evaluate_tfds_and_cli_eval_on_the_tiny_run(mnist_run, capsys):
    """``evaluate_tfds`` (through ``jaxvision eval dcgan_mnist``) restores the data-parallel run's checkpoint and
    feeds FID the same real images and the same samples as train did."""
    from experiments._cli import main

    module, cfg, workdir, out, seen, _ = mnist_run
    n = len(seen)
    assert main(["eval", "dcgan_mnist", "--workdir", str(workdir)]) == 0
    assert json.loads(capsys.readouterr().out)["fid_num_real"] == cfg.fid_real_samples
    real, fake = seen[n]
    np.testing.assert_array_equal(real, seen[0][0])
    np.testing.assert_allclose(fake, seen[0][1], atol=1e-6)
