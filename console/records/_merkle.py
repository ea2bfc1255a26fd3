"""RFC 6962 / RFC 9162 Merkle tree hash over the audit trail's leaf hashes.

* leaf hash ``= SHA-256(0x00 || canonical bytes)`` (computed in :mod:`._audit`),
* interior node ``= SHA-256(0x01 || left || right)``,
* ``MTH(D[0:n])`` splits at the largest power of two ``k < n``; the empty tree hashes
  to ``SHA-256("")``.

Splitting at the largest power of two means the tree over ``n`` leaves is the
right-fold of the perfect subtrees given by the binary decomposition of ``n``
(``n = 2^a + 2^b + …``, ``a > b > …``): ``H(T_a, H(T_b, …))``. That list of perfect
subtree roots, largest first, is the *frontier* (a "compact range" from the left edge).
It lets the writer extend the tree one leaf at a time with O(log n) memory and lets a
checkpoint be created from the previous one plus the leaves appended since, without
rereading the whole trail.

:class:`MerkleLevels` is the verifier's side: it hashes a block of leaves level by level
(copies of a hash object pre-fed the 0x01 prefix keep the per-node cost close to one
``hashlib`` call) and answers
the frontier of any prefix of the block, so the roots of many checkpoints come out of
one pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

_sha256 = hashlib.sha256

EMPTY_ROOT = _sha256(b"").digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Interior node: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def fold(frontier: Sequence[bytes]) -> bytes:
    """Root of the tree whose perfect subtrees (largest first) are ``frontier``."""
    if not frontier:
        return EMPTY_ROOT
    acc = frontier[-1]
    for node in reversed(frontier[:-1]):
        acc = _sha256(b"\x01" + node + acc).digest()
    return acc


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, straight from the RFC's recursive definition (reference)."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


class Frontier:
    """Incremental Merkle tree: perfect subtree roots of the leaves appended so far."""

    __slots__ = ("nodes", "size")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if len(nodes) != size.bit_count():
            raise ValueError(f"a frontier of {size} leaves has {size.bit_count()} nodes")
        self.size = size
        self.nodes = list(nodes)

    @classmethod
    def from_bytes(cls, size: int, packed: bytes) -> Frontier:
        """Inverse of :meth:`to_bytes` (nodes concatenated, 32 bytes each)."""
        if len(packed) % 32:
            raise ValueError("packed frontier length is not a multiple of 32")
        return cls(size, [packed[i : i + 32] for i in range(0, len(packed), 32)])

    def to_bytes(self) -> bytes:
        return b"".join(self.nodes)

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append leaf hashes, merging equal-sized subtrees as a binary counter carries."""
        nodes = self.nodes
        size = self.size
        for leaf in leaves:
            node = leaf
            carry = size
            while carry & 1:
                node = _sha256(b"\x01" + nodes.pop() + node).digest()
                carry >>= 1
            nodes.append(node)
            size += 1
        self.size = size

    def root(self) -> bytes:
        return fold(self.nodes)


class MerkleLevels:
    """All complete nodes of a block of leaves, level by level.

    ``levels[h][i]`` is the perfect subtree of ``2^h`` leaves starting at leaf
    ``i * 2^h`` of the block. Blocks handed to verifier workers start at multiples of a
    large power of two, so a block's prefix frontiers combine with the roots of the
    blocks before it into the frontier of the whole trail.
    """

    __slots__ = ("levels",)

    def __init__(self, leaves: list[bytes]) -> None:
        levels = [leaves]
        level = leaves
        # Copying a hash object already fed the 0x01 prefix, then feeding it both children,
        # costs ~15 % less per node than hashing ``b"\x01" + a + b`` (no concatenations,
        # no digest lookup); ``zip(pairs, pairs)`` pairs neighbours without slicing.
        node_of = _sha256(b"\x01").copy
        while len(level) > 1:
            pairs = iter(level)
            parents: list[bytes] = []
            append = parents.append
            for left, right in zip(pairs, pairs, strict=False):  # an odd last one waits
                node = node_of()
                node.update(left)
                node.update(right)
                append(node.digest())
            level = parents
            levels.append(level)
        self.levels = levels

    def prefix_frontier(self, size: int) -> list[bytes]:
        """Frontier of the first ``size`` leaves of the block (largest subtree first)."""
        if size > len(self.levels[0]):
            raise ValueError(f"block holds {len(self.levels[0])} leaves, not {size}")
        out: list[bytes] = []
        offset = 0
        for height in range(size.bit_length() - 1, -1, -1):
            if size >> height & 1:
                out.append(self.levels[height][offset >> height])
                offset += 1 << height
        return out
