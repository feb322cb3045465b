"""StackGAN (Zhang et al. 2017): text-to-image in two stages, sized for small images.

Text input ``text``, one array per batch, either
- caption tokens int [B, L] (0 = padding after the words): encoded by a ``TextEncoder`` (learned word embedding
  + GRU, the hidden state after the last word), trained with the player that owns it; or
- a precomputed caption embedding float [B, E] (CUB / COCO's char-CNN-RNN vectors): used as it is.
Each player (G1, D1, G2, D2) owns its encoder, so the GAN step only has to hand the same tokens to both.

Conditioning augmentation (``ConditioningAugmentation``): a dense layer maps the text feature to ``mu`` and
``logvar`` [B, c_dim]; ``c = mu + exp(logvar / 2) * eps``. The paper's KL(N(mu, sigma) || N(0, I)) term is a
generator loss term fed by G's aux output (``jaxvision.train.gan.conditional.kl_term``). ``eps`` is the tail of
the generator's noise: ``z`` [B, nz + c_dim] = [latent | eps], so the step's device-count invariant noise covers
both (the paper's code applies a ReLU to mu and logvar, which keeps sigma >= 1; here the layer is linear, as in
the paper's equations).

Stage-I ``StageIGenerator``: [z_latent, c] -> dense 4x4 map -> nearest x2 upsample + 3x3 conv + BN + ReLU blocks
-> 3x3 conv -> tanh, an image [B, S1, S1, 3] in [-1, 1].

Stage-II ``StageIIGenerator``: runs a Stage-I generator (``stage1``, a submodule in inference mode, its output
not differentiated: its parameters stay as trained when the Stage-II optimizer freezes them with
``freeze_stage1``), encodes the low-resolution image (3x3 conv, strided 4x4 conv + BN + ReLU to S1/2), joins its
own conditioning vector tiled over the map (3x3 conv + BN + ReLU), ``num_residual`` residual blocks, then
upsampling blocks to ``factor`` x S1 (2 or 4). Its aux output adds ``low_res``, the Stage-I image.

``TextImageDiscriminator`` (both stages): strided 4x4 convs + BN + LeakyReLU(0.2) down to 4x4, the compressed
text feature tiled and concatenated, 3x3 conv + BN + LeakyReLU, 4x4 valid conv -> one logit per image [B]. It is
matching-aware when the step also shows it real images with mismatched text as fakes.
"""
from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxvision._checks import check_choice, check_rank

init = nn.initializers.normal(0.02)


def _bn(train: bool, axis_name):
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, axis_name=axis_name if train else None)


def _check_text(text):
    check_rank("text", text, 2, "[B, L] tokens or [B, E] embeddings")
    if not (jnp.issubdtype(text.dtype, jnp.integer) or jnp.issubdtype(text.dtype, jnp.floating)):
        raise ValueError(f"text: expected int tokens or float embeddings, got dtype {text.dtype}")


class TextEncoder(nn.Module):
    """tokens int [B, L] (0 = padding, words first) -> float32 [B, hidden]: the GRU state after the last word.

    Attributes:
      vocab_size: number of token ids (ids must lie in [0, vocab_size)).
      embed_dim: word embedding size.
      hidden: GRU state size.
    """

    vocab_size: int
    embed_dim: int = 32
    hidden: int = 64

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(self.vocab_size, self.embed_dim, embedding_init=nn.initializers.normal(1.0))(tokens)
        outs = nn.RNN(nn.GRUCell(self.hidden))(x)  # [B, L, hidden]; output t depends only on words <= t
        last = jnp.maximum(jnp.sum(tokens != 0, -1) - 1, 0)  # index of the last word
        return jnp.take_along_axis(outs, last[:, None, None], 1)[:, 0]


def text_features(text, vocab_size: int, embed_dim: int, hidden: int, name: str = "text_encoder"):
    """(Inside a compact module) tokens -> ``TextEncoder`` features; float embeddings pass through."""
    _check_text(text)
    if jnp.issubdtype(text.dtype, jnp.integer):
        return TextEncoder(vocab_size, embed_dim, hidden, name=name)(text)
    return text.astype(jnp.float32)


class ConditioningAugmentation(nn.Module):
    """text feature [B, T], eps [B, c_dim] -> (c, mu, logvar), each float32 [B, c_dim]; c = mu + sigma * eps."""

    c_dim: int = 16

    @nn.compact
    def __call__(self, t, eps):
        h = nn.Dense(2 * self.c_dim, kernel_init=init)(t)
        mu, logvar = h[:, :self.c_dim], h[:, self.c_dim:]
        return mu + jnp.exp(0.5 * logvar) * eps, mu, logvar


def _split_noise(z, nz: int, c_dim: int):
    check_rank("z", z, 2, "[B, nz + c_dim]")
    if z.shape[-1] != nz + c_dim:
        raise ValueError(f"z: expected [B, nz + c_dim = {nz + c_dim}] (latent then eps), got {z.shape}")
    return z[:, :nz], z[:, nz:]


def _up_block(x, features: int, train: bool, axis_name):
    b, h, w, c = x.shape
    x = jax.image.resize(x, (b, 2 * h, 2 * w, c), "nearest")
    x = nn.Conv(features, (3, 3), padding="SAME", use_bias=False, kernel_init=init)(x)
    return nn.relu(_bn(train, axis_name)(x))


def _log2(name: str, value: int, minimum: int) -> int:
    n = int(round(math.log2(value))) if value > 0 else -1
    if value < minimum or 2 ** n != value:
        raise ValueError(f"{name}: expected a power of two >= {minimum}, got {value}")
    return n


class StageIGenerator(nn.Module):
    """(text, z [B, nz + c_dim], train) -> (image float32 [B, size, size, 3] in [-1, 1], {'mu', 'logvar'}).

    Attributes:
      vocab_size: token ids of the caption vocabulary (unused with float embeddings).
      size: output px, a power of two >= 8.
      nz: latent size; c_dim: conditioning vector size; ngf: channels of the last upsampling block (x2 per block
      going down, the 4x4 map has ngf * size / 8).
      embed_dim, text_hidden: text encoder sizes; bn_axis_name: pmap axis for synchronized BatchNorm.
    """

    vocab_size: int
    size: int = 16
    nz: int = 32
    c_dim: int = 16
    ngf: int = 32
    embed_dim: int = 32
    text_hidden: int = 64
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, text, z, train: bool = False):
        n = _log2("size", self.size, 8) - 2
        latent, eps = _split_noise(z, self.nz, self.c_dim)
        t = text_features(text, self.vocab_size, self.embed_dim, self.text_hidden)
        c, mu, logvar = ConditioningAugmentation(self.c_dim, name="ca")(t, eps)
        ch = self.ngf * 2 ** n
        x = nn.Dense(4 * 4 * ch, use_bias=False, kernel_init=init)(jnp.concatenate([latent, c], -1))
        x = nn.relu(_bn(train, self.bn_axis_name)(x)).reshape(-1, 4, 4, ch)
        for i in range(n):
            x = _up_block(x, self.ngf * 2 ** (n - 1 - i), train, self.bn_axis_name)
        img = jnp.tanh(nn.Conv(3, (3, 3), padding="SAME", kernel_init=init)(x))
        return img, {"mu": mu, "logvar": logvar}


class _Residual(nn.Module):
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x, train: bool):
        c = x.shape[-1]
        h = nn.relu(_bn(train, self.bn_axis_name)(nn.Conv(c, (3, 3), use_bias=False, kernel_init=init)(x)))
        h = _bn(train, self.bn_axis_name)(nn.Conv(c, (3, 3), use_bias=False, kernel_init=init)(h))
        return nn.relu(x + h)


class StageIIGenerator(nn.Module):
    """(text, z [B, nz + c_dim], train) -> (image [B, factor*S1, factor*S1, 3] in [-1, 1], {'mu', 'logvar',
    'low_res'}), ``low_res`` being the Stage-I image [B, S1, S1, 3] it refined.

    Attributes:
      stage1: the Stage-I generator (its variables are the ``stage1`` entries of this module's variables).
      factor: 2 or 4, output size over Stage-I's.
      c_dim: this stage's conditioning vector size (its eps is the same noise tail as Stage-I's, so c_dim must
        equal stage1.c_dim); ngf: channels of the last block; num_residual: residual blocks.
    """

    stage1: StageIGenerator
    factor: int = 2
    ngf: int = 16
    num_residual: int = 2
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, text, z, train: bool = False):
        check_choice("factor", self.factor, (2, 4))
        s1 = self.stage1
        low, _ = s1(text, z, train=False)  # inference mode: running statistics, nothing mutated
        low = jax.lax.stop_gradient(low)
        _, eps = _split_noise(z, s1.nz, s1.c_dim)
        t = text_features(text, s1.vocab_size, s1.embed_dim, s1.text_hidden)
        c, mu, logvar = ConditioningAugmentation(s1.c_dim, name="ca")(t, eps)
        ch = self.ngf * 2 * self.factor
        x = nn.relu(nn.Conv(ch // 2, (3, 3), kernel_init=init)(low))
        x = nn.Conv(ch, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)), use_bias=False, kernel_init=init)(x)
        x = nn.relu(_bn(train, self.bn_axis_name)(x))  # [B, S1/2, S1/2, ch]
        cmap = jnp.broadcast_to(c[:, None, None, :], x.shape[:3] + (c.shape[-1],))
        x = nn.Conv(ch, (3, 3), use_bias=False, kernel_init=init)(jnp.concatenate([x, cmap], -1))
        x = nn.relu(_bn(train, self.bn_axis_name)(x))
        for _ in range(self.num_residual):
            x = _Residual(self.bn_axis_name)(x, train)
        for i in range(int(math.log2(self.factor)) + 1):  # S1/2 -> factor * S1
            x = _up_block(x, max(ch // 2 ** (i + 1), self.ngf), train, self.bn_axis_name)
        img = jnp.tanh(nn.Conv(3, (3, 3), padding="SAME", kernel_init=init)(x))
        return img, {"mu": mu, "logvar": logvar, "low_res": low}


class TextImageDiscriminator(nn.Module):
    """(image [B, size, size, 3] in [-1, 1], text, train) -> logits float32 [B] (is this a real image of this text).

    Attributes:
      vocab_size, embed_dim, text_hidden: its own text encoder (unused with float embeddings).
      size: input px, a power of two >= 8; ndf: channels of the first conv (x2 per stride-2 conv);
      text_dim: size of the compressed text feature tiled over the 4x4 map.
    """

    vocab_size: int
    size: int = 16
    ndf: int = 32
    text_dim: int = 32
    embed_dim: int = 32
    text_hidden: int = 64
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, image, text, train: bool = False):
        n = _log2("size", self.size, 8) - 2
        check_rank("image", image, 4, "[B, H, W, 3]")
        if image.shape[1:] != (self.size, self.size, 3):
            raise ValueError(f"image: expected [B, {self.size}, {self.size}, 3], got {image.shape}")
        if text.shape[0] != image.shape[0]:
            raise ValueError(f"text: expected {image.shape[0]} rows (those of image), got {text.shape}")
        leaky = functools.partial(nn.leaky_relu, negative_slope=0.2)
        x = image
        for i in range(n):
            x = nn.Conv(self.ndf * 2 ** i, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)), use_bias=i == 0,
                        kernel_init=init)(x)
            x = leaky(x if i == 0 else _bn(train, self.bn_axis_name)(x))
        t = text_features(text, self.vocab_size, self.embed_dim, self.text_hidden)
        t = leaky(nn.Dense(self.text_dim, kernel_init=init)(t))
        tmap = jnp.broadcast_to(t[:, None, None, :], x.shape[:3] + (self.text_dim,))
        x = nn.Conv(x.shape[-1], (3, 3), use_bias=False, kernel_init=init)(jnp.concatenate([x, tmap], -1))
        x = leaky(_bn(train, self.bn_axis_name)(x))
        return nn.Conv(1, (4, 4), padding="VALID", kernel_init=init)(x).reshape(-1)


def freeze_stage1(tx: optax.GradientTransformation, params) -> optax.GradientTransformation:
    """``tx`` for a Stage-II generator's ``params`` with the ``stage1`` subtree frozen (its updates are zero)."""
    labels = {k: ("frozen" if k == "stage1" else "train") for k in params}
    return optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, labels)
