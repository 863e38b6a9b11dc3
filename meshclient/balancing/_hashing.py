"""Consistent hashing: a Maglev lookup table (Eisenbud et al., NSDI 2016), weighted as Envoy's.

Every process must map a key to the same endpoint, so nothing here uses Python's ``hash()``
(randomised per process): keys are hashed with CRC-32 (cheap, per request), endpoints with
BLAKE2b (once per table).

Adding or removing one of N endpoints moves about 1/N of the keys (Maglev's table fills
each endpoint's preferred slots first, so most slots keep their owner). The table size is
fixed (Envoy's 65,537) rather than grown with N: a size that depended on N would move nearly
every key when N crossed a step, and would differ between clients that saw different
histories.
"""

from __future__ import annotations

import hashlib
import zlib
from array import array
from collections.abc import Sequence
from typing import Final

__all__ = ["BACKEND_SALT", "TABLE_SIZE", "TIER_SALT", "build_maglev", "key_hash", "spread"]

TABLE_SIZE: Final = 65537
"""Envoy's default Maglev table size: a prime, ≥ 100 slots per endpoint up to 655 of them."""
_MASK64: Final = (1 << 64) - 1


def key_hash(key: str) -> int:
    """A 32-bit hash of a request's hash key, the same in every process (CRC-32: it runs per
    request, and its value modulo the prime table size spreads keys evenly)."""
    return zlib.crc32(key.encode())


def spread(hv: int, salt: int) -> float:
    """A uniform float in [0, 1) from a key hash, independent for each ``salt``.

    The backend and the tier are chosen with different salts: one draw for both would send
    every key of a light backend to the same tier.
    """
    z = (hv * salt) & _MASK64
    return ((z ^ (z >> 29)) >> 40 & 0xFFFFFF) / 16777216.0


BACKEND_SALT: Final = 0x9E3779B97F4A7C15
TIER_SALT: Final = 0xC2B2AE3D27D4EB4F


def build_maglev(
    keys: Sequence[str], weights: Sequence[int], size: int = TABLE_SIZE
) -> array[int]:
    """Fill a Maglev table with indices into ``keys``.

    Args:
        keys: Stable endpoint identities (``EndpointInfo.key``), one per endpoint.
        weights: Positive weights, one per key; an endpoint gets slots in proportion.
        size: Table size, a prime; only tests pass a smaller one.

    Returns:
        An ``array('I')`` of ``size`` entries indexing ``keys``; empty when there are no
        keys. O(M log M) for M slots: 50–90 ms at the default size, so callers build it once
        per endpoint-set version, never per request.
    """
    n = len(keys)
    if n == 0:
        return array("I")
    m = size
    offsets: list[int] = []
    skips: list[int] = []
    for k in keys:
        d = hashlib.blake2b(k.encode(), digest_size=16).digest()
        offsets.append(int.from_bytes(d[:8], "little") % m)
        skips.append(int.from_bytes(d[8:], "little") % (m - 1) + 1)
    top = max(weights)
    # Envoy's weighted fill: an endpoint of weight w takes a turn on w/top of the rounds.
    target = [0.0] * n
    nxt = [0] * n
    table = array("I", [0]) * m
    taken = bytearray(m)
    filled = 0
    rounds = 0
    while filled < m:
        rounds += 1
        for i in range(n):
            if rounds * weights[i] < target[i]:
                continue
            target[i] += top
            off, skip, j = offsets[i], skips[i], nxt[i]
            c = (off + skip * j) % m
            while taken[c]:
                j += 1
                c = (off + skip * j) % m
            taken[c] = 1
            table[c] = i
            nxt[i] = j + 1
            filled += 1
            if filled == m:
                break
    return table
