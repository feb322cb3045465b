"""FID end to end: images (arrays or PNG/JPEG folders) or saved stats -> features -> statistics -> distance.

    result = fid(real_images, fake_images)                 # arrays [N, H, W, 3] in [0, 1]
    result = fid("samples/", "cifar10_train_stats.npz")    # folders and pytorch-fid .npz stats mix freely
    print(float(result), result.provenance)

Also the ``jaxvision fid A B`` command (:func:`main`), mirroring ``python -m pytorch_fid A B`` including
``--save-stats``. Features are streamed in fixed-size batches (the last one padded and masked, so one
compilation) into :mod:`jaxvision.metrics.generative.stats` accumulators on device; the distance is
:func:`jaxvision.metrics.generative.frechet.frechet_distance`, in float64 by default.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.metrics.generative.feature_networks import FeatureNetwork, check_images, load_fid_inception
from jaxvision.metrics.generative.frechet import frechet_distance, warn_rank_deficient, x64_scope
from jaxvision.metrics.generative.stats import finalize_stats, init_stats, load_stats, save_stats, update_stats
from jaxvision.metrics.multihost import gather_from_processes, map_over_devices, process_block

__all__ = ["FIDResult", "fid", "compute_statistics", "extract_features", "list_images", "main"]

IMAGE_EXTENSIONS = ("bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp")  # as pytorch-fid


@dataclasses.dataclass(frozen=True)
class FIDResult:
    """A Fréchet distance with how it was made. ``float(result)`` is the value.

    Attributes:
      value: the distance.
      num_samples: (n1, n2) images behind each side's statistics.
      provenance: feature network, weights SHA-256, resize, precision, and each side's source.
    """

    value: float
    num_samples: tuple[int, int]
    provenance: dict[str, Any]

    def __float__(self) -> float:
        return self.value

    def __str__(self) -> str:
        return f"FID: {self.value:.6f} (n = {self.num_samples[0]} / {self.num_samples[1]})"


def list_images(folder: str | os.PathLike) -> list[pathlib.Path]:
    """Image files directly in ``folder`` with pytorch-fid's extensions, sorted by path."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise ValueError(f"folder: expected a directory of images, got {str(folder)!r}")
    return sorted(p for ext in IMAGE_EXTENSIONS for p in folder.glob(f"*.{ext}"))


def _load_image(path: pathlib.Path, channels: int | None) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("L" if channels == 1 else "RGB")
        arr = np.asarray(im, np.float32) / 255.0  # torchvision ToTensor
    return arr[..., None] if arr.ndim == 2 else arr


def quantize_like_png(images) -> np.ndarray:
    """Float images in [0, 1] -> float32 values a saved 8-bit PNG would hold: ``floor(x * 255 + 0.5) / 255``
    (the rounding of ``torchvision.utils.save_image``), clipped to [0, 255] first."""
    x = np.asarray(images, np.float32)
    return (np.floor(np.clip(x * 255.0 + 0.5, 0.0, 255.0)) / 255.0).astype(np.float32)


def _as_unit(name: str, batch, channels: int | None, quantize: bool) -> np.ndarray:
    """One batch of images (uint8 [0, 255], or float [0, 1]) -> float32 [0, 1], quantized if asked (floats)."""
    if getattr(batch, "dtype", None) == np.uint8:
        batch = np.asarray(batch)
        check_images(name, batch, channels, check_range=False)
        return batch.astype(np.float32) / 255.0
    check_images(name, batch, channels)
    return quantize_like_png(batch) if quantize else batch


def _is_stream(source) -> bool:
    return not isinstance(source, (np.ndarray, str, os.PathLike, tuple, list)) and not hasattr(source, "shape") \
        and (hasattr(source, "__next__") or hasattr(source, "__iter__"))


def _batches(source, batch_size: int, channels: int | None, quantize: bool = False,
             num_samples: int | None = None) -> Iterator[np.ndarray]:
    """Yield image batches [b, H, W, C] float in [0, 1]; a folder's batches break where the image size changes.

    ``source``: a folder; an array (uint8 in [0, 255] or float in [0, 1], ``quantize``: rounded like a saved PNG);
    an iterator / iterable of such batches (streamed, re-split to ``batch_size``); or a callable ``fn(n)`` returning
    ``n`` images, called until ``num_samples`` images were drawn (streamed).
    """
    if isinstance(source, (str, os.PathLike)):
        files = list_images(source)
        if not files:
            raise ValueError(f"source: no images ({', '.join(IMAGE_EXTENSIONS)}) in {str(source)!r}")
        buf: list[np.ndarray] = []
        for f in files:
            img = _load_image(f, channels)
            if buf and (len(buf) == batch_size or img.shape != buf[0].shape):
                yield np.stack(buf)
                buf = []
            buf.append(img)
        yield np.stack(buf)
    elif callable(source) and not hasattr(source, "shape"):
        if num_samples is None or int(num_samples) <= 0:
            raise ValueError(f"num_samples: expected > 0 images to draw from a callable source, got {num_samples}")
        done = 0
        while done < num_samples:
            n = min(batch_size, int(num_samples) - done)
            batch = source(n)
            batch = _as_unit("images", batch if hasattr(batch, "shape") else np.asarray(batch), channels, quantize)
            if len(batch) != n:
                raise ValueError(f"images: the source callable returned {len(batch)} images for n={n}")
            done += n
            yield batch
    elif _is_stream(source):
        for batch in source:
            batch = _as_unit("images", batch if hasattr(batch, "shape") else np.asarray(batch), channels, quantize)
            for i in range(0, len(batch), batch_size):
                yield batch[i : i + batch_size]
    else:
        if getattr(source, "dtype", None) == np.uint8:
            check_images("images", source, channels, check_range=False)
        else:
            check_images("images", source, channels)
        for i in range(0, len(source), batch_size):
            yield _as_unit("images", source[i : i + batch_size], channels, quantize)


def _pad(batch, batch_size):
    n = len(batch)
    if n == batch_size:
        return batch, np.ones(n, bool)
    pad = np.zeros((batch_size - n,) + tuple(batch.shape[1:]), np.float32)
    return np.concatenate([np.asarray(batch, np.float32), pad]), np.arange(batch_size) < n


@functools.lru_cache(maxsize=4)
def _device_mapped(network: FeatureNetwork):
    """(mapped, shared): ``network`` over every local device (``map_over_devices``), its weights replicated once."""
    if network.apply is not None:
        mapped = map_over_devices(network.apply)
        return mapped, mapped.replicate(network.variables)
    return map_over_devices(lambda _, images: network.fn(images)), {}


def _features(network: FeatureNetwork, batch, batch_size: int, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``keys`` of ``network``'s outputs for the rows of ``batch`` (n <= ``batch_size``), numpy, in row order.

    The batch is padded (zeros) to ``batch_size`` rounded up to a multiple of processes x local devices; this
    process runs its block of rows (``process_block``) split over its devices, and the blocks of all processes
    are gathered (``gather_from_processes``), so every process gets the features of the whole batch.
    """
    mapped, shared = _device_mapped(network)
    n = len(batch)
    rows, padded = process_block(max(batch_size, n), mapped.num_devices)
    full, _ = _pad(np.asarray(batch, np.float32), padded)
    out = mapped(shared, full[rows])
    out = gather_from_processes({k: out[k] for k in keys if k in out})
    return {k: v[:n] for k, v in out.items()}


def extract_features(source, network: FeatureNetwork, batch_size: int = 50, quantize: bool = False,
                     num_samples: int | None = None) -> dict[str, np.ndarray]:
    """Run ``network`` over all images of ``source`` (an array [N, H, W, C], uint8 or float in [0, 1], a folder, an
    iterable of batches or a callable ``fn(n)`` with ``num_samples``; ``quantize``: floats as a saved PNG holds
    them, ``quantize_like_png``).

    Every batch is split over all local devices and, in a multi-process run, over the processes (each runs its
    block of the batch; the features are gathered to every process), so every process must pass the same
    ``source``; the result is the one of a single-device run.

    Returns:
      {'features': float32 [N, d], 'logits': float32 [N, K] if the network has logits}, in source order.
    """
    outs: dict[str, list] = {}
    for batch in _batches(source, batch_size, network.channels, quantize, num_samples):
        for k, v in _features(network, batch, batch_size, ("features", "logits")).items():
            outs.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in outs.items()}


_update = jax.jit(update_stats)


def compute_statistics(source, network: FeatureNetwork, batch_size: int = 50, x64: bool = True,
                       quantize: bool = False, num_samples: int | None = None):
    """Mean and covariance of ``network`` features over ``source``, streamed batch by batch on device.

    Args:
      source: images [N, H, W, C] (uint8, or float in [0, 1]), a folder of PNG/JPEG files, an iterable of image
        batches, or a callable ``fn(n) -> n images`` drawn until ``num_samples`` (never all in memory).
      network: the feature extractor.
      batch_size: images per compiled call (the last batch is padded and masked); each batch is split over all
        local devices and processes as in :func:`extract_features` (every process passes the same ``source``
        and gets the same statistics, those of a single-device run).
      x64: accumulate in float64.
      quantize: round float images to 8 bits first, as a saved PNG would (``quantize_like_png``).

    Returns:
      (mu [d], sigma [d, d], count) as NumPy float64/float32 arrays and an int.
    """
    from tqdm.auto import tqdm

    stats = None
    batches = _batches(source, batch_size, network.channels, quantize, num_samples)
    for batch in tqdm(batches, desc="FID features", unit="batch", delay=5.0, leave=False, disable=None):
        feats, mask = _pad(_features(network, batch, batch_size, ("features",))["features"], batch_size)
        with x64_scope(x64):
            if stats is None:
                stats = init_stats(feats.shape[-1])
            stats = _update(stats, feats.astype(stats.mean.dtype), jnp.asarray(mask))
    if stats is None or int(stats.count) < 2:
        got = 0 if stats is None else int(stats.count)
        raise ValueError(f"source: expected at least 2 images for a covariance, got {got}")
    with x64_scope(x64):
        mu, sigma = finalize_stats(stats)
        return np.asarray(mu), np.asarray(sigma), int(stats.count)


def _is_stats_file(x) -> bool:
    return isinstance(x, (str, os.PathLike)) and str(x).endswith(".npz")


def _side(source, get_network, batch_size, x64, name, quantize=False, num_samples=None):
    """(mu, sigma, count, description) for one side of the distance."""
    if isinstance(source, tuple) and len(source) == 2:
        mu, sigma = (np.asarray(v) for v in source)
        return mu, sigma, None, {"source": "given (mu, sigma)"}
    if _is_stats_file(source):
        if not pathlib.Path(source).is_file():
            raise ValueError(f"{name}: stats file {str(source)!r} does not exist")
        mu, sigma, extra = load_stats(source)
        count = int(extra["count"]) if "count" in extra else None
        desc = {"source": f"stats {source}"}
        desc.update({k: str(v) for k, v in extra.items() if k in ("feature_network", "weights_sha256", "resize")})
        return mu, sigma, count, desc
    if isinstance(source, (str, os.PathLike)) and not pathlib.Path(source).is_dir():
        raise ValueError(f"{name}: expected an image array, a folder of images or an .npz, got {str(source)!r}")
    network = get_network()
    mu, sigma, count = compute_statistics(source, network, batch_size, x64, quantize, num_samples)
    if isinstance(source, (str, os.PathLike)):
        src = f"folder {source}"
    elif hasattr(source, "shape"):
        src = f"array {tuple(np.shape(source))}" + (" quantized to 8 bits" if quantize else "")
    else:
        src = f"stream of {count} images" + (" quantized to 8 bits" if quantize else "")
    return mu, sigma, count, {"source": src}


def fid(
    a,
    b,
    *,
    network: FeatureNetwork | None = None,
    weights: str | os.PathLike | None = None,
    batch_size: int = 50,
    x64: bool = True,
    check_hash: bool = True,
    quantize: bool = True,
    num_samples: int | None = None,
    save_stats_a: str | os.PathLike | None = None,
) -> FIDResult:
    """Fréchet Inception Distance between two image sets (or their saved statistics).

    Args:
      a: images [N, H, W, 3], uint8 or float in [0, 1]; a folder of PNG/JPEG images; an iterable of image
        batches or a callable ``fn(n)`` (streamed); a pytorch-fid ``.npz`` with ``mu``/``sigma``; or a
        ``(mu, sigma)`` tuple.
      b: same choices as ``a``.
      network: feature extractor; default: the FID Inception from ``weights`` (loaded only if needed).
      weights: FID Inception weights (see :func:`jaxvision.metrics.load_fid_inception`).
      batch_size: images per compiled call.
      x64: statistics and distance in float64 (recommended; float32 otherwise).
      check_hash: verify the weights file's SHA-256.
      quantize: float image inputs (arrays, streams) are first rounded to 8 bits as a saved PNG holds them
        (``quantize_like_png``), so the FID of arrays equals the FID of their saved PNGs; uint8 inputs are exact.
      num_samples: images to draw from a callable side (``fn(n) -> n images``, e.g. a generator's sampler).
      save_stats_a: write side ``a``'s statistics here (pytorch-fid ``.npz`` with count and the network's
        provenance) when they were computed, so later calls pass that file as ``a`` (cached reference stats).

    Returns:
      :class:`FIDResult`. Warns (RuntimeWarning) when a side has fewer samples than full-rank needs.

    Raises:
      ValueError: images not [N, H, W, C] / wrong channel count / outside [0, 1]; feature dims that differ.
    """
    cache: dict[str, FeatureNetwork] = {}

    def get_network():
        if "net" not in cache:
            cache["net"] = network if network is not None else load_fid_inception(weights, check_hash=check_hash)
        return cache["net"]

    mu1, s1, n1, d1 = _side(a, get_network, batch_size, x64, "a", quantize, num_samples)
    if save_stats_a is not None and "net" in cache and not _is_stats_file(a) and not isinstance(a, tuple):
        save_stats(save_stats_a, mu1, s1, count=n1, **cache["net"].provenance())
    mu2, s2, n2, d2 = _side(b, get_network, batch_size, x64, "b", quantize, num_samples)
    if mu1.shape != mu2.shape:
        raise ValueError(f"a and b: expected the same feature dim, got {mu1.shape[0]} and {mu2.shape[0]}")
    dim = mu1.shape[0]
    for n in (n1, n2):
        if n is not None:
            warn_rank_deficient(n, dim, "fid")
    prov: dict[str, Any] = {"metric": "fid", "feature_dim": dim, "precision": "float64" if x64 else "float32",
                            "a": d1, "b": d2}
    if "net" in cache:
        prov.update(cache["net"].provenance())
        for side in (d1, d2):
            if "weights_sha256" in side and side["weights_sha256"] != prov["weights_sha256"]:
                warnings.warn(f"stats {side['source']} were made with weights {side['weights_sha256']}, "
                              f"not {prov['weights_sha256']}: the distance is not meaningful", RuntimeWarning,
                              stacklevel=2)
    value = float(frechet_distance(mu1, s1, mu2, s2, x64=x64))
    return FIDResult(value, (n1 or -1, n2 or -1), prov)


def main(argv: list[str] | None = None) -> int:
    """``jaxvision fid PATH1 PATH2``: FID between two folders of images and/or ``.npz`` statistics.

    ``--save-stats`` writes PATH1's statistics to PATH2 (pytorch-fid's format plus provenance keys).
    """
    import argparse

    ap = argparse.ArgumentParser(prog="jaxvision fid", description=main.__doc__)
    ap.add_argument("path", nargs=2, help="folders of PNG/JPEG images or .npz statistics files")
    ap.add_argument("--weights", default=None, help="pt_inception-2015-12-05-6726825d.pth or converted .npz "
                    "(default: $JAXVISION_FID_WEIGHTS, ~/.cache/jaxvision, torch.hub cache)")
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--save-stats", action="store_true", help="write statistics of PATH1 to the .npz PATH2")
    ap.add_argument("--no-check-hash", action="store_true", help="accept weights that are not the known file")
    ap.add_argument("--float32", action="store_true", help="accumulate and compute in float32")
    args = ap.parse_args(argv)
    try:
        if args.save_stats:
            src, out = args.path
            if os.path.exists(out):
                raise ValueError(f"output {out!r} exists; refusing to overwrite")
            net = load_fid_inception(args.weights, check_hash=not args.no_check_hash)
            mu, sigma, count = compute_statistics(src, net, args.batch_size, x64=not args.float32)
            warn_rank_deficient(count, mu.shape[0], "save-stats")
            save_stats(out, mu, sigma, count=count, **net.provenance())
            print(f"saved statistics of {count} images to {out}")
            return 0
        result = fid(*args.path, weights=args.weights, batch_size=args.batch_size, x64=not args.float32,
                     check_hash=not args.no_check_hash)
    except (FileNotFoundError, ValueError) as e:
        print(f"jaxvision fid: error: {e}", file=sys.stderr)
        return 2
    print(f"FID: {result.value}")
    print(f"  samples: {result.num_samples}, provenance: {result.provenance}")
    return 0
