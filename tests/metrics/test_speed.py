"""measure_fps: compile time separate, median ms/image and images/s consistent (no timed assertions)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.metrics import measure_fps


def test_measure_fps_reports_consistent_numbers():
    x = np.ones((4, 8, 8, 3), np.float32)
    res = measure_fps(lambda b: jnp.tanh(b).sum(axis=(1, 2, 3)), x, repeats=3, warmup=1)
    assert res.batch_size == 4 and res.repeats == 3
    assert res.compile_s > 0 and res.median_batch_ms > 0
    assert res.ms_per_image == pytest.approx(res.median_batch_ms / 4)
    assert res.images_per_s == pytest.approx(1000.0 / res.ms_per_image)
    assert "images/s" in str(res)


def test_measure_fps_accepts_jitted_and_pytrees():
    fn = jax.jit(lambda b: b["image"].mean() + b["scale"])
    res = measure_fps(fn, {"image": np.ones((2, 4, 4, 3), np.float32), "scale": np.ones((2,), np.float32)},
                      repeats=2)
    assert res.batch_size == 2
    with pytest.raises(ValueError, match="batch"):
        measure_fps(fn, {})
    with pytest.raises(ValueError, match="repeats"):
        measure_fps(fn, np.ones((2, 3)), repeats=0)
