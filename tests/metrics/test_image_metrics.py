"""PSNR / SSIM vs scikit-image (a CI dependency), plus the Y-channel and border-crop options."""
import jax
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from jaxvision.metrics.image.psnr_ssim import psnr, rgb_to_y, ssim


def _pair(n=2, h=40, w=33, c=3, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    base = np.stack([np.sin(6 * yy + k) * np.cos(5 * xx) * 0.4 + 0.5 for k in range(c)], -1)
    a = np.clip(base[None] + 0.05 * rng.standard_normal((n, h, w, c)), 0, 1)
    b = np.clip(a + 0.08 * rng.standard_normal(a.shape), 0, 1)
    return (a * scale).astype(np.float32), (b * scale).astype(np.float32)


def _sk_ssim(x, y, data_range):
    return structural_similarity(x.astype(np.float64), y.astype(np.float64), gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=data_range, channel_axis=-1)


@pytest.mark.parametrize("c,data_range", [(3, 1.0), (1, 1.0), (3, 255.0)])
def test_ssim_matches_skimage(c, data_range):
    a, b = _pair(c=c, scale=data_range)
    got = np.asarray(ssim(a, b, data_range))
    want = [_sk_ssim(x, y, data_range) for x, y in zip(a, b)]
    assert got.shape == (2,)
    np.testing.assert_allclose(got, want, atol=1e-4)
    with jax.enable_x64(True):
        np.testing.assert_allclose(np.asarray(ssim(a, b, data_range)), want, atol=1e-10)


def test_ssim_identical_is_one_and_unbatched():
    a, _ = _pair(n=1)
    assert float(ssim(a[0], a[0])) == pytest.approx(1.0, abs=1e-6)
    assert np.asarray(ssim(a[0], a[0], return_map=True)).shape == (30, 23, 3)


def test_psnr_matches_skimage():
    a, b = _pair()
    got = np.asarray(psnr(a, b, 1.0))
    want = [peak_signal_noise_ratio(y.astype(np.float64), x.astype(np.float64), data_range=1.0) for x, y in zip(a, b)]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert np.isinf(float(psnr(a[0], a[0])))


def test_y_channel_and_crop_border_like_sr_papers():
    a, b = _pair(h=48, w=48, scale=255.0)
    s = 4
    ya = 16 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255  # MATLAB rgb2ycbcr, uint8 range
    yb = 16 + (65.481 * b[..., 0] + 128.553 * b[..., 1] + 24.966 * b[..., 2]) / 255
    np.testing.assert_allclose(np.asarray(rgb_to_y(a, 255.0))[..., 0], ya, rtol=1e-5)
    ya, yb = ya[:, s:-s, s:-s], yb[:, s:-s, s:-s]
    got_p = np.asarray(psnr(a, b, 255.0, y_channel=True, crop_border=s))
    want_p = [peak_signal_noise_ratio(x.astype(np.float64), y.astype(np.float64), data_range=255.0)
              for x, y in zip(yb, ya)]
    np.testing.assert_allclose(got_p, want_p, rtol=1e-5)
    got_s = np.asarray(ssim(a, b, 255.0, y_channel=True, crop_border=s))
    want_s = [_sk_ssim(x[..., None], y[..., None], 255.0) for x, y in zip(ya, yb)]
    np.testing.assert_allclose(got_s, want_s, atol=1e-4)


def test_bad_input():
    a, b = _pair()
    with pytest.raises(ValueError, match="same shape"):
        ssim(a, b[:, :-1])
    with pytest.raises(ValueError, match="3 \\(RGB\\) channels"):
        psnr(a[..., :1], b[..., :1], y_channel=True)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(a[:, :10, :10], b[:, :10, :10])
    with pytest.raises(ValueError, match="a: expected"):
        psnr(a[0, 0], b[0, 0])


def test_mean_gradient_magnitude_matches_skimage_sobel():
    import skimage.filters

    from jaxvision.metrics import mean_gradient_magnitude

    x = np.random.default_rng(3).uniform(size=(2, 9, 7, 3)).astype(np.float32)
    want = [np.mean([skimage.filters.sobel(im[..., c]) for c in range(3)]) for im in x]
    np.testing.assert_allclose(mean_gradient_magnitude(x), want, rtol=1e-5)
    np.testing.assert_allclose(mean_gradient_magnitude(x[0]), want[0], rtol=1e-5)
    assert float(mean_gradient_magnitude(np.full((8, 8, 1), 0.3, np.float32))) < 1e-6
