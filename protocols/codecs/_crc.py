"""CRC-16/CCITT-FALSE, the sbf1 frame check (protocols.md 1.1).

Parameters: poly 0x1021, init 0xFFFF, no input/output reflection, xorout 0; the check
value of ASCII ``123456789`` is 0x29B1. The standard library's :func:`binascii.crc_hqx`
computes exactly this polynomial unreflected from a caller-given initial value, in C:
using it (rather than a Python table loop) is what keeps frame checking off the profile.
"""

from __future__ import annotations

import binascii
from typing import Final

CRC_INIT: Final[int] = 0xFFFF
CHECK_VALUE: Final[int] = 0x29B1


def crc16_ccitt_false(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE of ``data``."""
    return binascii.crc_hqx(data, CRC_INIT)
