"""Random streams: one seeded numpy Generator per thing, derived from the scenario seed.

Each patient, device, implant and session gets its own ``SeedSequence`` whose spawn key is
derived from its *name* (``("device", site, "spo2-01")``) rather than from creation order.
It is SeedSequence spawning — independent, high-quality child streams — keyed so that
adding a device to a scenario does not change the numbers any other device draws, and two
runs with the same seed produce the same bytes whatever order things were built in.
"""

from __future__ import annotations

import hashlib

import numpy as np


def seed_sequence(seed: int, *key: str) -> np.random.SeedSequence:
    """The SeedSequence of the stream named ``key`` under root ``seed``."""
    digest = hashlib.blake2b("\x1f".join(key).encode("utf-8"), digest_size=16).digest()
    spawn_key = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))
    return np.random.SeedSequence(seed, spawn_key=spawn_key)


def rng_for(seed: int, *key: str) -> np.random.Generator:
    """A Generator for the stream named ``key``."""
    return np.random.default_rng(seed_sequence(seed, *key))


def rngs_for(seed: int, n: int, *key: str) -> list[np.random.Generator]:
    """``n`` independent Generators spawned from the stream named ``key``."""
    return [np.random.default_rng(s) for s in seed_sequence(seed, *key).spawn(n)]
