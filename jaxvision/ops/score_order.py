"""Score order for NMS: order-preserving uint32 keys and a stable argsort tuned for XLA:CPU.

XLA:CPU sorts a single integer operand ~5x faster than a (key, index) pair, so scores become order-preserving
uint32 keys, are sorted alone, ranked by binary search and the permutation is scattered from the ranks (or,
when keys tie, built by sorting ``rank * N + index``).
"""
from __future__ import annotations

import functools

import jax.numpy as jnp
from jax import lax


def sort_unstable(x):
    """Ascending sort of a 1-D integer array outside ``vmap``. Equal integers are indistinguishable, so an
    unstable sort gives the same result; XLA:CPU's is ~1.5x faster for one row (but slower for a batch of
    rows, so batched callers use ``jnp.sort``)."""
    return lax.sort(x, is_stable=False)


def descending_keys(scores, valid):
    """uint32 keys whose ascending order is descending score.

    Invalid entries get distinct keys above every valid key (``2^32 - N + index``; valid keys are at most
    ``~asc(-inf) = 0xFF800000``), so they sort last and never create ties among themselves.
    """
    n = scores.shape[-1]
    bits = lax.bitcast_convert_type(scores.astype(jnp.float32), jnp.uint32)
    # -0.0 and 0.0 tie, as in a float comparison (done on bits: XLA flushes subnormals in float compares)
    bits = jnp.where(bits == jnp.uint32(0x80000000), jnp.uint32(0), bits)
    ascending = jnp.where(bits >> 31 == 1, ~bits, bits | jnp.uint32(0x80000000))
    invalid_key = jnp.uint32(2**32 - n) + lax.iota(jnp.uint32, n)
    return jnp.where(valid, ~ascending, invalid_key)


def argsort_packed(keys, sorted_keys, sort=jnp.sort):
    """Stable argsort via dense ranks: sort ``rank * N + index`` (one more integer sort), decode the index."""
    n = keys.shape[0]
    rank = jnp.searchsorted(sorted_keys, keys, side="left", method="scan_unrolled").astype(jnp.uint32)
    return (sort(rank * jnp.uint32(n) + lax.iota(jnp.uint32, n)) % jnp.uint32(n)).astype(jnp.int32)


def argsort_unique(keys, sorted_keys):
    """Argsort when all keys differ: each key's rank is its slot, so one scatter builds the permutation."""
    n = keys.shape[0]
    rank = jnp.searchsorted(sorted_keys, keys, side="left", method="scan_unrolled")
    return jnp.zeros((n,), jnp.int32).at[rank].set(lax.iota(jnp.int32, n), unique_indices=True)


def stable_argsort(keys, allow_cond=True, sort=jnp.sort):
    """Stable ascending argsort of uint32 ``keys [N]`` -> int32 ``[N]``.

    XLA:CPU sorts a single integer operand ~5x faster than a (key, index) pair, so: sort the keys, rank each
    key by binary search, and either scatter (all keys distinct, the usual case) or sort ``rank * N + index``
    (ties; stable). ``allow_cond=False`` always takes the tie-safe path (under vmap a cond runs both sides).
    ``sort`` sorts the integer keys (:func:`sort_unstable` for one image outside vmap).
    """
    n = keys.shape[0]
    if n * n > 2**32:
        return lax.sort((keys, lax.iota(jnp.int32, n)), num_keys=1, is_stable=True)[1]
    sorted_keys = sort(keys)
    packed = functools.partial(argsort_packed, sort=sort)
    if not allow_cond:
        return packed(keys, sorted_keys)
    ties = jnp.any(sorted_keys[1:] == sorted_keys[:-1])
    return lax.cond(ties, packed, argsort_unique, keys, sorted_keys)
