"""``shape_captions``: ``shapes`` images with captions generated from their annotations (text-to-image GANs).

Every image holds one or two filled shapes (the six ``shapes`` classes, the eight ``shapes`` colours, two sizes)
over a dark colour gradient, drawn with the ``shapes`` rasterizer; its caption is generated from the annotation:
"a small red circle" or "a large blue square above a small white star". Two objects never overlap and are
separated mainly along one axis, so the relation word is unambiguous ("above"/"below" for a vertical pair,
"left of"/"right of" for a horizontal one). A pair has two captions (either object named first, the relation
inverted); training batches pick one per example with its random generator, so the text encoder sees both.

Image ``k`` of a split comes from ``numpy.random.default_rng([data_seed, 0xCA9, split_code, k])`` (train=1, val=2,
test=3; disjoint streams), ``seed`` only shuffles and picks captions.

Batch keys:
- ``image`` float32 [B, S, S, 3] in [0, 1];
- ``tokens`` int32 [B, L]: word ids into ``VOCABULARY`` (0 = ``<pad>`` after the caption), ``token_mask`` bool
  [B, L] (True on words);
- the annotation in canonical order (object 0 is the upper one of a vertical pair, the left one of a horizontal
  pair), -1 where absent: ``color`` int32 [B, 2] (into ``COLOR_NAMES``), ``shape`` int32 [B, 2] (into
  ``shapes.CLASS_NAMES``), ``size`` int32 [B, 2] (into ``SIZE_NAMES``), ``layout`` int32 [B] (into
  ``LAYOUT_NAMES``: single, vertical pair, horizontal pair).

``tokenize`` / ``detokenize`` convert between caption strings and padded token arrays; ``caption_of`` writes
the canonical caption of an annotation.
"""
from __future__ import annotations

import functools

import numpy as np

from jaxvision._checks import check_choice, check_positive
from jaxvision.data.base import Dataset
from jaxvision.data.shapes import CLASS_NAMES, COLORS, SPLIT_CODES, _rasterize, _shape_geometry

COLOR_NAMES = ("red", "green", "blue", "yellow", "magenta", "cyan", "orange", "white")  # rows of shapes.COLORS
SIZE_NAMES = ("small", "large")
LAYOUT_NAMES = ("single", "vertical", "horizontal")
# vertical pair: object 0 "above" object 1; horizontal: object 0 "left of" object 1 (words in that order)
RELATIONS = {1: (("above",), ("below",)), 2: (("left", "of"), ("right", "of"))}
VOCABULARY = ("<pad>", "<unk>", "a", *SIZE_NAMES, *COLOR_NAMES, *CLASS_NAMES, "above", "below", "left", "right", "of")
PAD, UNK = 0, 1
MAX_TOKENS = 10        # the longest captions ("a large magenta pentagon left of a small white star") have 10 words
DEFAULT_NUM_EXAMPLES = {"train": 4096, "val": 512, "test": 512}
_WORD_ID = {w: i for i, w in enumerate(VOCABULARY)}


def tokenize(captions, max_tokens: int = MAX_TOKENS, *, unknown: str = "error") -> tuple[np.ndarray, np.ndarray]:
    """Captions -> (tokens int32 [N, max_tokens], mask bool [N, max_tokens]), words lower-cased, padded with 0.

    Args:
      captions: sequence of strings (words separated by spaces).
      max_tokens: L, the fixed length.
      unknown: 'error' (ValueError naming the word) or 'unk' (map to ``<unk>``).

    Raises:
      ValueError: a caption longer than ``max_tokens`` words, an empty caption, or an unknown word with
        ``unknown='error'``.
    """
    check_choice("unknown", unknown, ("error", "unk"))
    captions = [captions] if isinstance(captions, str) else list(captions)
    tokens = np.zeros((len(captions), max_tokens), np.int32)
    for n, text in enumerate(captions):
        words = str(text).lower().split()
        if not 1 <= len(words) <= max_tokens:
            raise ValueError(f"captions[{n}]: expected 1..{max_tokens} words, got {len(words)}: {text!r}")
        for i, w in enumerate(words):
            if w not in _WORD_ID and unknown == "error":
                raise ValueError(f"captions[{n}]: unknown word {w!r} (vocabulary: {' '.join(VOCABULARY[2:])})")
            tokens[n, i] = _WORD_ID.get(w, UNK)
    return tokens, tokens != PAD


def detokenize(tokens) -> list[str]:
    """Token ids [N, L] (or [L]) -> caption strings (padding dropped)."""
    tokens = np.atleast_2d(np.asarray(tokens))
    if not np.issubdtype(tokens.dtype, np.integer) or tokens.size and not 0 <= tokens.min() <= tokens.max() < len(
            VOCABULARY):
        raise ValueError(f"tokens: expected int ids in [0, {len(VOCABULARY)}), got {tokens.dtype} array")
    return [" ".join(VOCABULARY[t] for t in row if t != PAD) for row in tokens]


def _phrase(color: int, shape: int, size: int) -> list[str]:
    return ["a", SIZE_NAMES[size], COLOR_NAMES[color], CLASS_NAMES[shape]]


def caption_of(color, shape, size, layout: int, swap: bool = False) -> str:
    """The caption of one annotation (canonical order; ``swap`` names object 1 first with the inverse relation)."""
    if layout == 0:
        return " ".join(_phrase(color[0], shape[0], size[0]))
    first, second = (1, 0) if swap else (0, 1)
    rel = RELATIONS[int(layout)][int(swap)]
    return " ".join(_phrase(color[first], shape[first], size[first]) + list(rel)
                    + _phrase(color[second], shape[second], size[second]))


def _radius(rng, size_class: int, pair: bool, s: int) -> float:
    lo, hi = ((0.11, 0.14), (0.17, 0.22)) if pair else ((0.14, 0.19), (0.27, 0.34))
    return float(rng.uniform(*(lo if size_class == 0 else hi))) * s


def _place(rng, radii, layout: int, s: int):
    """Centres [(cx, cy)] of 1 or 2 non-overlapping objects; a pair is separated mainly along its layout axis."""
    if layout == 0:
        r = radii[0]
        return [tuple(rng.uniform(r + 0.5, s - r - 0.5, 2))]
    r0, r1 = radii
    for _ in range(1000):
        c0 = rng.uniform(r0 + 0.5, s - r0 - 0.5, 2)
        c1 = rng.uniform(r1 + 0.5, s - r1 - 0.5, 2)
        along, across = (1, 0) if layout == 1 else (0, 1)   # vertical: y separates; horizontal: x separates
        gap = c1[along] - c0[along]
        if gap >= r0 + r1 and abs(c1[across] - c0[across]) <= 0.5 * gap:
            return [tuple(c0), tuple(c1)]
    raise RuntimeError("could not place two objects; image_size too small")  # not reached for image_size >= 16


def render_caption_example(rng: np.random.Generator, image_size: int = 32, max_objects: int = 2,
                           noise: float = 0.0):
    """One image and its annotation: (image float32 [S, S, 3] in [0, 1], color [2], shape [2], size [2], layout)."""
    s = image_size
    layout = 0 if max_objects == 1 or rng.random() < 0.5 else int(rng.integers(1, 3))
    n = 1 if layout == 0 else 2
    color = np.full(2, -1, np.int32)
    shape, size = color.copy(), color.copy()
    color[:n] = rng.integers(len(COLOR_NAMES), size=n)
    shape[:n] = rng.integers(len(CLASS_NAMES), size=n)
    size[:n] = rng.integers(2, size=n)
    radii = [_radius(rng, size[i], n == 2, s) for i in range(n)]
    c0, c1 = rng.uniform(0.0, 0.3, 3), rng.uniform(0.0, 0.3, 3)
    t = np.linspace(0, 1, s, dtype=np.float32)
    ramp = t[:, None] if rng.random() < 0.5 else t[None, :]
    img = (c0 + (c1 - c0) * ramp[..., None]).astype(np.float32) * np.ones((s, s, 1), np.float32)
    for i, (cx, cy) in enumerate(_place(rng, radii, layout, s)):
        outline, _, _, _ = _shape_geometry(int(shape[i]), cx, cy, radii[i], rng)
        img[_rasterize(outline, cx, cy, radii[i], s)] = COLORS[color[i]] + rng.uniform(-0.05, 0.05, 3)
    if noise:
        img = img + noise * rng.standard_normal(img.shape)
    return np.clip(img, 0.0, 1.0).astype(np.float32), color, shape, size, layout


@functools.lru_cache(maxsize=8)
def generate(split: str, data_seed: int, num_examples: int, image_size: int, max_objects: int, noise: float,
             max_tokens: int) -> dict:
    """A whole split (cached): image uint8 [N, S, S, 3], the annotation arrays, and both captions' tokens
    ``captions`` int32 [N, 2, L] (a single object's two entries are equal)."""
    n = num_examples
    out = {"image": np.zeros((n, image_size, image_size, 3), np.uint8), "color": np.zeros((n, 2), np.int32),
           "shape": np.zeros((n, 2), np.int32), "size": np.zeros((n, 2), np.int32),
           "layout": np.zeros(n, np.int32)}
    texts = []
    for k in range(n):
        rng = np.random.default_rng([data_seed & 0xFFFFFFFF, 0xCA9, SPLIT_CODES[split], k])
        img, color, shape, size, layout = render_caption_example(rng, image_size, max_objects, noise)
        out["image"][k] = np.round(img * 255)
        out["color"][k], out["shape"][k], out["size"][k], out["layout"][k] = color, shape, size, layout
        texts += [caption_of(color, shape, size, layout, swap) for swap in (False, True)]
    out["captions"] = tokenize(texts, max_tokens)[0].reshape(n, 2, max_tokens)
    for v in out.values():
        v.setflags(write=False)
    return out


def load(split: str, batch_size: int, seed: int = 0, num_devices: int | None = None, *, image_size: int = 32,
         max_objects: int = 2, noise: float = 0.0, num_examples: int | None = None, data_seed: int = 0,
         max_tokens: int = MAX_TOKENS, random_caption_order: bool | None = None, shuffle: bool | None = None,
         drop_remainder: bool = True, host_id=None, num_hosts=None) -> Dataset:
    """Captioned shapes batches (see the module docstring and ``jaxvision.data.load``).

    Args:
      split: 'train', 'val' or 'test'.
      image_size: S, images are [S, S, 3]; at least 16.
      max_objects: 1 (single objects only) or 2 (half single objects, half pairs with a relation).
      noise: std of Gaussian pixel noise (0 = clean images).
      num_examples: images in the split (default 4096 train, 512 val/test).
      data_seed: seeds the images themselves (``seed`` only seeds the epoch order and caption choice).
      max_tokens: L, the padded caption length (>= 10 for pairs, >= 4 for single objects).
      random_caption_order: name a pair's objects in random order per example (default: True for train); False
        gives the canonical caption (object 0 first).
    """
    check_choice("split", split, tuple(SPLIT_CODES))
    check_choice("max_objects", max_objects, (1, 2))
    if image_size < 16:
        raise ValueError(f"image_size: expected >= 16, got {image_size}")
    if max_tokens < (10 if max_objects == 2 else 4):
        raise ValueError(f"max_tokens: expected >= {10 if max_objects == 2 else 4} for max_objects={max_objects}, "
                         f"got {max_tokens}")
    n = DEFAULT_NUM_EXAMPLES[split] if num_examples is None else num_examples
    check_positive("num_examples", n)
    data = generate(split, data_seed, n, image_size, max_objects, float(noise), max_tokens)
    swap_order = (split == "train") if random_caption_order is None else random_caption_order

    def make_batch(idx, rngs):
        pick = np.array([rngs[j].integers(2) if swap_order else 0 for j in range(len(idx))], np.int64)
        tokens = data["captions"][idx, pick]
        return {"image": data["image"][idx].astype(np.float32) / 255.0, "tokens": tokens,
                "token_mask": tokens != PAD, **{k: data[k][idx] for k in ("color", "shape", "size", "layout")}}

    info = {"name": "shape_captions", "split": split, "image_size": (image_size, image_size), "channels": 3,
            "vocabulary": VOCABULARY, "max_tokens": max_tokens, "color_names": COLOR_NAMES,
            "class_names": CLASS_NAMES, "size_names": SIZE_NAMES, "layout_names": LAYOUT_NAMES, "num_examples": n}
    return Dataset(n, make_batch, batch_size, seed=seed, shuffle=(split == "train") if shuffle is None else shuffle,
                   drop_remainder=drop_remainder, num_devices=num_devices, host_id=host_id, num_hosts=num_hosts,
                   info=info)
