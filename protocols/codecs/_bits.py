"""Bit fields ↔ names, shared by the codecs that report status and alarm bits by name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def bits_to_names(value: int, names: Mapping[int, str]) -> list[str]:
    """Names of the set bits of ``value`` (bit index → name); unnamed bits as ``bitN``.

    Unnamed bits are reported, not dropped: a reserved bit set by a newer firmware is
    something a technician wants to see, and keeping it makes the encoding reversible.
    """
    out: list[str] = []
    bit = 0
    while value:
        if value & 1:
            out.append(names.get(bit, f"bit{bit}"))
        value >>= 1
        bit += 1
    return out


def names_to_bits(names: Iterable[str] | int, table: Mapping[int, str], width: int) -> int:
    """Inverse of :func:`bits_to_names`; also accepts the integer itself.

    Raises:
        ValueError: unknown name, or a value that does not fit in ``width`` bits.
    """
    if isinstance(names, bool):
        raise ValueError(f"not a bit field: {names!r}")
    if isinstance(names, int):
        value = names
    else:
        index = {name: bit for bit, name in table.items()}
        value = 0
        for name in names:
            if not isinstance(name, str):
                raise ValueError(f"not a flag name: {name!r}")
            if name in index:
                value |= 1 << index[name]
            elif name.startswith("bit") and name[3:].isdigit():
                value |= 1 << int(name[3:])
            else:
                known = ", ".join(table.values())
                raise ValueError(f"unknown flag {name!r} (known: {known})")
    if not 0 <= value < (1 << width):
        raise ValueError(f"bit field {value:#x} does not fit in {width} bits")
    return value
