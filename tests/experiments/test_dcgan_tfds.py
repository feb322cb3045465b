"""The TFDS DCGAN configurations (mnist, cifar10, celeba) run end to end on stand-in data of the TFDS shapes."""
import types

import numpy as np
import pytest

import experiments
from experiments import _dcgan

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
