"""Elementwise losses (no reduction): smooth L1, sigmoid focal loss, softmax cross-entropy, Gaussian KL.

Semantics follow ``torch.nn.functional.smooth_l1_loss(reduction='none')``,
``torchvision.ops.sigmoid_focal_loss(reduction='none')`` and ``torch.nn.functional.cross_entropy
(reduction='none')``; all are pure jax.numpy, numerically stable for large logits, and differentiable.
Reduce (sum / mean over positives, normalize by the number of matches, ...) in the detector's loss.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxvision._checks import check_positive, check_rank


def smooth_l1(x, y, beta: float = 1.0):
    """Smooth L1 (Huber / beta) loss per element, as torch's ``smooth_l1_loss``.

    ``0.5 * d**2 / beta`` where ``|d| < beta`` else ``|d| - 0.5 * beta``, with ``d = x - y``; ``beta == 0``
    is plain L1. An infinite target (e.g. ``BoxCoder.encode`` against a zero-size padding box) gives an
    infinite loss but finite gradients, so masking it out with ``jnp.where`` leaves no NaN in the gradient.

    Args:
      x: float array (predictions), any shape.
      y: float array (targets), broadcastable against ``x``.
      beta: static float >= 0, the L1/L2 switch point.

    Returns:
      float array of the broadcast shape.
    """
    check_positive("beta", beta, allow_zero=True)
    return _smooth_l1(jnp.asarray(x), jnp.asarray(y), float(beta))


@functools.partial(jax.jit, static_argnums=2)
def _smooth_l1(x, y, beta):
    d = jnp.abs(x - y)
    if beta == 0:
        return d
    quad = d < beta
    dq = jnp.where(quad, d, 0)  # keeps the unused quadratic branch finite, so an infinite d has finite gradients
    return jnp.where(quad, 0.5 * dq * dq / beta, d - 0.5 * beta)


def sigmoid_focal_loss(logits, targets, alpha: float = 0.25, gamma: float = 2.0):
    """Sigmoid focal loss per element (RetinaNet), as ``torchvision.ops.sigmoid_focal_loss(reduction='none')``.

    ``alpha_t * (1 - p_t)**gamma * BCE(logits, targets)`` with ``p = sigmoid(logits)``,
    ``p_t = p t + (1 - p)(1 - t)`` and ``alpha_t = alpha t + (1 - alpha)(1 - t)``; ``alpha = -1`` disables
    the alpha weighting. The BCE is computed from logits (stable for |logits| >> 1).

    Args:
      logits: float array, any shape (e.g. ``[A, C]`` one logit per class).
      targets: float array broadcastable against ``logits``, in [0, 1] (usually one-hot 0/1).
      alpha: static float in [0, 1], or -1 for no weighting.
      gamma: static float >= 0, focusing exponent.

    Returns:
      float array of the broadcast shape.
    """
    if not (0.0 <= alpha <= 1.0 or alpha == -1):
        raise ValueError(f"alpha: expected a float in [0, 1] or -1 (no weighting), got {alpha!r}")
    check_positive("gamma", gamma, allow_zero=True)
    return _focal(jnp.asarray(logits), jnp.asarray(targets), float(alpha), float(gamma))


@functools.partial(jax.jit, static_argnums=(2, 3))
def _focal(logits, targets, alpha, gamma):
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        logits = logits.astype(jnp.float32)
    targets = targets.astype(logits.dtype)
    p = jax.nn.sigmoid(logits)
    ce = (1 - targets) * logits - jax.nn.log_sigmoid(logits)  # BCE with logits
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce if gamma == 0 else ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


def softmax_cross_entropy(logits, labels):
    """Softmax cross-entropy per example with integer labels, as torch's ``cross_entropy(reduction='none')``.

    ``-log_softmax(logits)[..., label]``. Negative labels (the padding index -1) give loss 0 and zero
    gradient, like torch's ``ignore_index``.

    Args:
      logits: float ``[..., C]`` unnormalized class scores.
      labels: int ``[...]`` class indices in ``[0, C)``, or negative to ignore.

    Returns:
      float ``[...]`` loss.
    """
    check_rank("logits", logits, range(1, 64), "[..., C] with C classes")
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    if tuple(labels.shape) != tuple(logits.shape[:-1]):
        raise ValueError(f"labels: expected shape {tuple(logits.shape[:-1])} (logits [..., C] without C), "
                         f"got {tuple(labels.shape)}")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"labels: expected an integer dtype, got {labels.dtype}")
    return _cross_entropy(logits, labels)


@jax.jit
def _cross_entropy(logits, labels):
    logp = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(logp, jnp.clip(labels, 0, None)[..., None], axis=-1)[..., 0]
    return jnp.where(labels >= 0, -picked, jnp.zeros((), logp.dtype))


def gaussian_kl(mu, logvar):
    """KL divergence of ``N(mu, exp(logvar))`` from ``N(0, 1)`` per element (no reduction).

    ``-0.5 * (1 + logvar - mu**2 - exp(logvar))``: the conditioning-augmentation term of StackGAN (whose code
    takes the mean over all elements) and the VAE prior term (sum over the latent dimension).

    Args:
      mu: float array, any shape (means).
      logvar: float array of the same shape (log variances).

    Returns:
      float array of that shape, >= 0.
    """
    mu, logvar = jnp.asarray(mu), jnp.asarray(logvar)
    if mu.shape != logvar.shape:
        raise ValueError(f"logvar: expected the shape of mu {tuple(mu.shape)}, got {tuple(logvar.shape)}")
    return -0.5 * (1.0 + logvar - jnp.square(mu) - jnp.exp(logvar))
