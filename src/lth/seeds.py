"""Independent random streams, one per purpose.

The seed of (purpose, keys...) is 63 bits of a BLAKE2b hash of the purpose and the keys, so two
purposes never share a stream whatever their seeds (seed 1000's network is not seed 0's
reinitialisation), and neighbouring keys (seeds, iterations) give unrelated streams.
"""
from __future__ import annotations

import hashlib


def stream_seed(purpose: str, *keys: int) -> int:
    text = ":".join([purpose, *(str(int(k)) for k in keys)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1
