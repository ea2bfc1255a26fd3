"""Canonical JSON: the exact bytes a MAC is computed over (protocols.md §2).

The contract: sorted keys, separators ``,`` and ``:``, no whitespace, UTF-8, non-ASCII
kept as is. That is exactly::

    json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

with two decisions the contract leaves open, taken here:

* **NaN and ±Infinity are refused** (:class:`CanonicalJsonError`). They are not JSON
  (RFC 8259); Python would write the non-standard tokens ``NaN``/``Infinity`` that other
  parsers reject, so a MAC over them could not be checked elsewhere.
* **Floats are written as Python writes them**: the shortest decimal that reads back to
  the same double (``repr``), e.g. ``98.0``, ``0.1``, ``1e-07``, ``1e+16``. An integer
  stays an integer (``98`` and ``98.0`` are different texts, hence different MACs).
  Verification always canonicalises the *received* JSON as parsed by Python, so a
  sender's number is reproduced digit for digit whenever it was already in that shortest
  form — true of every integer and of decimals printed by mainstream serialisers (JS, Go,
  Rust, Java all print shortest round-trip forms); senders in other languages should
  avoid exponents, which are where those printers differ.

Strings that are not valid Unicode (lone surrogates, which ``json.loads`` can produce
from ``"\\ud800"``) cannot be encoded as UTF-8 and are refused too, and so is an object
nested deeper than the interpreter can serialise (a ``RecursionError`` inside the
encoder): the wire parser refuses such nesting too, so no sender can be asked to sign it.
"""

from __future__ import annotations

import json

__all__ = ["CanonicalJsonError", "canonical_json"]


class CanonicalJsonError(ValueError):
    """The object has no canonical JSON form (NaN/Infinity, a non-JSON type, bad Unicode)."""


_encoder = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(obj: object) -> bytes:
    """Serialise ``obj`` (JSON data: dict with str keys, list, str, int, float, bool, None).

    Args:
        obj: the value to serialise.

    Returns:
        The canonical UTF-8 bytes.

    Raises:
        CanonicalJsonError: NaN or ±Infinity, a value JSON cannot represent, a string
            that is not valid Unicode, or nesting too deep to serialise.
    """
    try:
        return _encoder.encode(obj).encode("utf-8")
    except (ValueError, TypeError) as exc:  # UnicodeEncodeError is a ValueError
        raise CanonicalJsonError(f"no canonical JSON form: {exc}") from exc
    except RecursionError:
        raise CanonicalJsonError("no canonical JSON form: nested too deep") from None
