"""A sample patient identity for the identity and rights tests.

``TRAITS`` is a complete ``IdentityTraits`` (accented, hyphenated names; a valid INS);
``BODY`` is the INS's 13-digit body and ``INS`` the body with its NIR key.
"""

from __future__ import annotations

from datetime import date

from console.identity import IdentityTraits, nir_key

BODY = "1370475112042"  # man, born April 1937 in 75112, order 042
INS = BODY + f"{nir_key(BODY):02d}"
TRAITS = IdentityTraits(
    birth_name="Lefèvre-Dupontel",
    first_names="Jean-Baptiste Marcel",
    birth_date=date(1937, 4, 12),
    sex="M",
    birthplace_code="75112",
    ins=INS,
)
