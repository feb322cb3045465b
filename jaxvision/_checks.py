"""Boundary checks shared by the public API: shape/format errors become ValueErrors at trace time.

Every message names the argument, what was expected and what was got, e.g.
``boxes: expected shape [..., 4], got (3, 5)``.
"""
from __future__ import annotations

import operator
from collections.abc import Iterable

import numpy as np


def check_last_dim(name: str, x, size: int) -> None:
    """Raise if ``x`` has rank 0 or its last axis is not ``size``."""
    shape = tuple(np.shape(x))
    if len(shape) == 0 or shape[-1] != size:
        raise ValueError(f"{name}: expected shape [..., {size}], got {shape}")


def check_rank(name: str, x, ranks: int | Iterable[int], layout: str = "") -> None:
    """Raise if ``x.ndim`` is not one of ``ranks``; ``layout`` (e.g. '[N, H, W, C]') is quoted in the message."""
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    shape = tuple(np.shape(x))
    if len(shape) not in ranks:
        want = layout or " or ".join(f"rank {r}" for r in ranks)
        raise ValueError(f"{name}: expected {want}, got shape {shape}")


def check_choice(name: str, value, choices: Iterable) -> None:
    """Raise if ``value`` is not one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name}: expected one of {choices}, got {value!r}")


def check_positive(name: str, value, allow_zero: bool = False) -> None:
    """Raise if the scalar or every element of the tuple ``value`` is not > 0 (>= 0 if ``allow_zero``)."""
    values = value if isinstance(value, (tuple, list)) else (value,)
    bad = [v for v in values if (v < 0 if allow_zero else v <= 0)]
    if bad:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected values {bound}, got {value!r}")


def check_same_leading(name_a: str, a, name_b: str, b, axes: int = 1) -> None:
    """Raise if the first ``axes`` dims of ``a`` and ``b`` differ (e.g. boxes [N, 4] vs scores [N])."""
    sa, sb = tuple(np.shape(a))[:axes], tuple(np.shape(b))[:axes]
    if sa != sb:
        raise ValueError(f"{name_a} and {name_b}: expected matching leading dims, got {sa} and {sb}")


def pair(name: str, value) -> tuple[int, int]:
    """Normalize an int or (h, w) to a tuple of two positive ints."""
    if isinstance(value, int):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2:
        raise ValueError(f"{name}: expected an int or a pair (h, w), got {value!r}")
    check_positive(name, value)
    return int(value[0]), int(value[1])


def pair_nonneg(name: str, value) -> tuple[int, int]:
    """Like ``pair`` but allows zeros."""
    if isinstance(value, int):
        value = (value, value)
    value = tuple(value)
    try:
        value = tuple(operator.index(v) for v in value)
    except TypeError:
        value = ()
    if len(value) != 2:
        raise ValueError(f"{name}: expected an int or a pair (h, w) of ints, got {value!r}")
    check_positive(name, value, allow_zero=True)
    return value
