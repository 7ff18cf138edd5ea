"""Independent random streams, one per purpose.

The seed of (purpose, keys...) is 63 bits of a BLAKE2b hash of the purpose and the keys, so two
purposes never share a stream whatever their seeds (seed 1000's network is not seed 0's
reinitialisation), and neighbouring keys (seeds, iterations) give unrelated streams.

`train.streams` = 1 keeps the scheme of lth 0.1 for the runs stored with it (their bits must not
change): one linear derivation (seed x 1,000,003 + index) for epoch order, augmentation and random
pruning, reinitialisation with init seed + 1000, the data-order copy with data seed + 10007.
"""
from __future__ import annotations

import hashlib


def stream_seed(purpose: str, *keys: int) -> int:
    text = ":".join([purpose, *(str(int(k)) for k in keys)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


def legacy_seed(seed: int, index: int) -> int:
    """The one derivation of lth 0.1 (train.streams = 1), shared by all its purposes."""
    return (seed * 1_000_003 + index) % (2**63 - 1)


def order_seed(seed: int, epoch: int, streams: int) -> int:
    """The permutation of epoch `epoch` of data seed `seed`."""
    return legacy_seed(seed, epoch) if streams == 1 else stream_seed("order", seed, epoch)


def augment_seed(seed: int, iteration: int, streams: int) -> int:
    """The augmentation (crops, flips) of iteration `iteration`'s batch."""
    return legacy_seed(seed, iteration) if streams == 1 else stream_seed("augment", seed, iteration)


def random_prune_seed(seed: int, level: int, streams: int) -> int:
    """The random-prune baseline's mask at `level` of the run with init seed `seed`."""
    return legacy_seed(seed, level) if streams == 1 else stream_seed("random-prune", seed, level)


def reinit_seed(seed: int, streams: int) -> int:
    """The initialisation seed of the reinit baseline of the run with init seed `seed`."""
    return seed + 1_000 if streams == 1 else stream_seed("reinit", seed)


def copy_data_seed(seed: int, streams: int) -> int:
    """The data seed of the data-order copy of a run whose data seed is `seed`."""
    return seed + 10_007 if streams == 1 else stream_seed("data-order copy", seed)
