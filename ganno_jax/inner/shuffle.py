"""Keyed pseudo-random permutations of [0, n) evaluated at only the positions needed.

`jax.random.permutation` sorts n random keys: 27 ms for the 50k train split on the 2-core
development CPU, and under `vmap` (env copies, evaluation grids) a `lax.cond` that would skip it
becomes a select that runs it anyway. An epoch-wise minibatch stream needs only `tau · batch`
entries of the epoch's permutation per env step, and a validation subset only `n_val`, so this
module computes `perm(i)` for just those `i`: a balanced Feistel network whose round functions are
random lookup tables drawn from the key (Luby–Rackoff: with independent random round functions,
4 rounds already give a pseudo-random permutation; 6 are used), on the smallest domain
[0, 4^h) >= n, with cycle walking (re-encrypting until the value falls in [0, n)) to restrict it
to [0, n). The domain is < 4n, so the expected number of walks is < 4 (1.31 for n = 50,000).
Cost: O(number of positions), independent of n.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

ROUNDS = 6


def _half_bits(n: int) -> int:
    """h such that 4^h >= n (at least 1)."""
    h = 1
    while 4**h < n:
        h += 1
    return h


def permute(key: jax.Array, positions: jax.Array, n: int) -> jax.Array:
    """`perm(positions)` for the permutation of [0, n) that `key` selects.

    Args:
      key: PRNG key; each key gives a different permutation.
      positions: int array (any shape) of values in [0, n).
      n: the size of the permuted range (static).

    Returns:
      int32 array of `positions`' shape: distinct positions map to distinct values in [0, n).
    """
    h = _half_bits(n)
    mask = (1 << h) - 1
    tables = jax.random.randint(key, (ROUNDS, 1 << h), 0, 1 << h, dtype=jnp.int32)

    def encrypt(v):
        left, right = v >> h, v & mask
        for r in range(ROUNDS):
            left, right = right, left ^ tables[r][right]
        return (left << h) | right

    v = encrypt(positions.astype(jnp.int32))
    # Cycle walking: encrypting again until the value lands in [0, n) keeps it a bijection on [0, n).
    return jax.lax.while_loop(lambda v: jnp.any(v >= n),
                              lambda v: jnp.where(v >= n, encrypt(v), v), v)
