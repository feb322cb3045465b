"""Feature networks for FID / IS / KID: the FID Inception, or any Flax classifier giving features + logits.

A :class:`FeatureNetwork` is a jit-compiled function ``images [N, H, W, C] in [0, 1] -> {'features': [N, d],
'logits': [N, K]}`` together with what a reported number needs to be reproducible: the network's name, the
SHA-256 of its weights and its preprocessing (resize). :func:`fid` and friends copy those into their results.

Domain networks (e.g. the ``digits_classifier`` experiment's model) plug in with :func:`feature_fn_from_flax`::

    net = feature_fn_from_flax(model.apply, {'params': params, 'batch_stats': bs},
                               features_key='features', logits_key='logits',
                               apply_kwargs={'train': False}, name='digits_classifier', channels=1)
    result = fid(real_images, fake_images, network=net)   # a "Fréchet Digits Distance"
    is_ = inception_score(net(fake_images)['logits'])

The model's ``apply`` may return a dict (keys named by ``features_key``/``logits_key``) or a tuple
``(features, logits)``. Only compare numbers computed with the same network and weights hash.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision._checks import check_rank

__all__ = ["FeatureNetwork", "feature_fn_from_flax", "load_fid_inception", "hash_variables", "check_images"]


def check_images(name: str, images, channels: int | None = None, check_range: bool = True) -> None:
    """ValueError unless ``images`` is [N, H, W, C] (C == ``channels`` if given) with values in [0, 1]."""
    check_rank(name, images, 4, "[N, H, W, C]")
    c = np.shape(images)[-1]
    if channels is not None and c != channels:
        raise ValueError(f"{name}: expected {channels} channels (NHWC), got shape {tuple(np.shape(images))}")
    if check_range and np.size(images):
        xp = np if isinstance(images, np.ndarray) else jnp  # host arrays stay on the host
        lo, hi = (float(v) for v in jax.device_get((xp.min(images), xp.max(images))))
        if not (lo >= 0.0 and hi <= 1.0):
            raise ValueError(
                f"{name}: expected values in [0, 1], got range [{lo:.4g}, {hi:.4g}] "
                "(GAN outputs in [-1, 1] must be mapped with (x + 1) / 2 first)"
            )


def hash_variables(variables) -> str:
    """SHA-256 over a variables pytree (sorted key paths, dtypes, shapes and bytes): a weights fingerprint."""
    h = hashlib.sha256()
    leaves = jax.tree_util.tree_leaves_with_path(variables)
    for path, leaf in sorted(leaves, key=lambda kv: jax.tree_util.keystr(kv[0])):
        arr = np.asarray(jax.device_get(leaf))
        h.update(jax.tree_util.keystr(path).encode())
        h.update(f"{arr.dtype}{arr.shape}".encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class FeatureNetwork:
    """A jit-compiled feature extractor plus its provenance.

    Attributes:
      fn: jitted ``images float32 [N, H, W, C] in [0, 1] -> {'features': [N, d], 'logits': [N, K] or absent}``.
      name: network name, e.g. ``'pytorch-fid InceptionV3 (pool3)'``.
      weights_sha256: SHA-256 of the weights file (Inception) or of the variables (:func:`hash_variables`).
      resize: preprocessing description, e.g. ``'bilinear 299x299 align_corners=False'`` or ``'none'``.
      channels: expected input channels (3 for Inception), or None for any.
      apply, variables: ``fn`` as ``apply(variables, images)`` (optional; the networks made here set them), so
        that feature extraction over several devices passes the weights as an argument, replicated once
        (``jaxvision.metrics.multihost.map_over_devices``), instead of tracing ``fn`` with its weights inside.
    """

    fn: Callable[[jax.Array], dict]
    name: str
    weights_sha256: str | None
    resize: str
    channels: int | None = 3
    apply: Callable[[Any, jax.Array], dict] | None = dataclasses.field(default=None, repr=False)
    variables: Any = dataclasses.field(default=None, repr=False, compare=False)

    def __call__(self, images, check_range: bool = True) -> dict:
        """Run on a batch. ``images``: float [N, H, W, C] in [0, 1]. Returns {'features', 'logits'}."""
        check_images("images", images, self.channels, check_range)
        return self.fn(jnp.asarray(images, jnp.float32))

    def provenance(self) -> dict[str, Any]:
        return {"feature_network": self.name, "weights_sha256": self.weights_sha256, "resize": self.resize}


def _pick(out, key, which):
    if isinstance(out, Mapping):
        if key not in out:
            raise ValueError(f"{which}: model output has keys {sorted(out)}, no {key!r}")
        return out[key]
    if isinstance(out, (tuple, list)) and len(out) >= 2:
        return out[0] if which == "features_key" else out[1]
    raise ValueError(f"model output: expected a dict or a (features, logits) tuple, got {type(out).__name__}")


def feature_fn_from_flax(
    apply_fn: Callable,
    variables,
    *,
    features_key: str = "features",
    logits_key: str | None = "logits",
    apply_kwargs: Mapping[str, Any] | None = None,
    input_range: tuple[float, float] = (0.0, 1.0),
    resize_to: tuple[int, int] | None = None,
    channels: int | None = None,
    name: str = "flax classifier",
) -> FeatureNetwork:
    """Wrap a Flax classifier as a :class:`FeatureNetwork` (stands in for Inception in FID / IS / KID).

    Args:
      apply_fn: ``model.apply``; called as ``apply_fn(variables, x, **apply_kwargs)``.
      variables: the model's variables (``{'params': ..., 'batch_stats': ...}``), closed over (not retraced).
      features_key: output key of the feature vector [N, d] (ignored for tuple outputs: element 0).
      logits_key: output key of the class logits [N, K] (tuple: element 1); None if there are no logits.
      apply_kwargs: extra static arguments, e.g. ``{'train': False}``.
      input_range: the range the model was trained on; images in [0, 1] are mapped linearly to it
        (``(-1, 1)`` for GAN-style models).
      resize_to: (h, w) to resize to first (bilinear, align_corners=False), or None.
      channels: required input channels (e.g. 1 for digits), or None.
      name: recorded in results.
    """
    kwargs = dict(apply_kwargs or {})
    lo, hi = input_range

    @jax.jit
    def apply(variables, images):
        from jaxvision.nn.inception import resize_bilinear

        x = images
        if resize_to is not None:
            x = resize_bilinear(x, resize_to)
        x = lo + x * (hi - lo)
        out = apply_fn(variables, x, **kwargs)
        res = {"features": jnp.reshape(_pick(out, features_key, "features_key"), (x.shape[0], -1))}
        if logits_key is not None:
            res["logits"] = _pick(out, logits_key, "logits_key")
        return res

    variables = jax.device_put(variables)  # an argument, not a closure: weights stay out of the HLO constants
    fn = functools.partial(apply, variables)

    resize = "none" if resize_to is None else f"bilinear {resize_to[0]}x{resize_to[1]} align_corners=False"
    return FeatureNetwork(fn, name, hash_variables(variables), resize, channels, apply=apply, variables=variables)


def load_fid_inception(path=None, *, check_hash: bool = True, expected_sha256: str | None = None) -> FeatureNetwork:
    """pytorch-fid's FID InceptionV3 as a jit-compiled :class:`FeatureNetwork`; no download, ever.

    Args:
      path: ``pt_inception-2015-12-05-6726825d.pth`` (read with ``torch.load(weights_only=True)``) or an
        ``.npz`` converted by ``python -m jaxvision.metrics.generative.inception_weights``; None searches
        ``$JAXVISION_FID_WEIGHTS``, ``~/.cache/jaxvision/fid_inception.npz`` and torch.hub's cache.
      check_hash: reject a file whose SHA-256 is not the known one (prefix ``6726825d``, torch.hub's check).
      expected_sha256: pin the full 64-digit SHA-256 instead (e.g. of your own verified copy).

    Returns:
      A callable ``images float32 [N, H, W, 3] in [0, 1] (any H, W) -> {'pool3': [N, 2048],
      'logits': [N, 1008], 'features': pool3}``, with ``.weights_sha256`` etc.

    Raises:
      FileNotFoundError: no weights; the message says where to download them.
    """
    from jaxvision.metrics.generative.inception_weights import load_inception_variables

    variables, sha, _ = load_inception_variables(path, check_hash=check_hash, expected_sha256=expected_sha256)
    return inception_network(variables, sha)


def inception_network(variables, weights_sha256: str | None = None) -> FeatureNetwork:
    """A :class:`FeatureNetwork` from already-converted FID Inception variables (see :func:`load_fid_inception`)."""
    from jaxvision.nn.inception import FIDInceptionV3

    model = FIDInceptionV3()
    variables = jax.device_put(variables)

    @jax.jit
    def apply(variables, images):
        out = model.apply(variables, images)
        return {"pool3": out["pool3"], "logits": out["logits"], "features": out["pool3"]}

    fn = functools.partial(apply, variables)

    return FeatureNetwork(
        fn,
        "pytorch-fid InceptionV3 (FID, 2015-12-05) pool3",
        weights_sha256 or hash_variables(variables),
        "bilinear 299x299 align_corners=False, [0,1]->[-1,1]",
        3,
        apply=apply,
        variables=variables,
    )
