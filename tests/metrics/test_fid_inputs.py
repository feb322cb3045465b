"""fid() inputs: uint8 arrays, float arrays quantized like their saved PNGs, streamed batches and sampler callables."""
import numpy as np
import pytest
from PIL import Image
from test_fid_end_to_end import _images, _net

from jaxvision.metrics import fid
from jaxvision.metrics.generative.fid_pipeline import quantize_like_png


def test_arrays_and_their_saved_pngs_agree(tmp_path):
    net, _, _ = _net()
    a, b = _images(14, 5), _images(12, 6, shift=0.1)
    for i, im in enumerate(a):  # saved as torchvision.utils.save_image does: (x * 255 + 0.5) clamped, to uint8
        Image.fromarray(np.clip(im * 255 + 0.5, 0, 255).astype(np.uint8)).save(tmp_path / f"{i:03d}.png")
    from_png = fid(str(tmp_path), b, network=net, batch_size=7).value
    from_arrays = fid(a, b, network=net, batch_size=7).value  # quantize=True by default
    np.testing.assert_allclose(from_arrays, from_png, rtol=1e-6)
    unquantized = fid(a, b, network=net, batch_size=7, quantize=False).value
    assert abs(unquantized - from_png) > 1e-6 * abs(from_png)  # the option matters on these inputs
    u8 = np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8)
    np.testing.assert_allclose(fid(u8, b, network=net, batch_size=7).value, from_png, rtol=1e-6)
    np.testing.assert_array_equal(quantize_like_png(u8 / 255.0), u8 / np.float32(255.0))


def test_streamed_sources_equal_the_array():
    net, _, _ = _net()
    a, b = _images(13, 7), _images(11, 8, shift=0.1)
    want = fid(a, b, network=net, batch_size=4).value
    stream = (a[i:i + 6] for i in range(0, 13, 6))  # batches of another size than batch_size
    np.testing.assert_allclose(fid(stream, b, network=net, batch_size=4).value, want, rtol=1e-9)
    drawn = []

    def sampler(n):  # e.g. a generator's sampling function: n images each call
        start = sum(drawn)
        drawn.append(n)
        return a[start:start + n]

    got = fid(sampler, b, network=net, batch_size=4, num_samples=13)
    np.testing.assert_allclose(got.value, want, rtol=1e-9)
    assert max(drawn) <= 4 and sum(drawn) == 13 and got.num_samples[0] == 13
    with pytest.raises(ValueError, match="num_samples"):
        fid(sampler, b, network=net)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fid((x for x in [a * 2]), b, network=net)


def test_saved_reference_statistics_are_reused(tmp_path):
    net, _, _ = _net()
    a, b = _images(12, 9), _images(10, 10, shift=0.1)
    first = fid(a, b, network=net, batch_size=6, save_stats_a=tmp_path / "real.npz")
    again = fid(str(tmp_path / "real.npz"), b, network=net, batch_size=6)
    np.testing.assert_allclose(again.value, first.value, rtol=1e-9)
    assert again.num_samples[0] == 12 and again.provenance["a"]["weights_sha256"] == net.weights_sha256
