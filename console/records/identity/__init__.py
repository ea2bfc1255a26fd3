"""Patient identities, field encryption, signed records, retention and rights.

:class:`PatientService` is the door to identities and signed records (it authorises
through :class:`console.auth.AccountService`); :class:`RetentionRunner` and
:class:`RightsService` build on it for ``samu retention`` and ``samu rights``. The
crypto (:class:`KeyRing`, field sealing, blind index), the INS key check, the signing
primitives and the retention rule are pure and exported for reuse and tests.
"""

from console.records.identity._crypto import (
    Cell,
    CryptoError,
    DecryptionError,
    KeyRing,
    PatientShreddedError,
    WrongMasterKeyError,
    ensure_master_key,
    normalise_name,
    open_field,
    seal_field,
)
from console.records.identity._ins import Nir, NirError, is_valid_nir, nir_key, parse_nir
from console.records.identity._patients import (
    RECTIFIABLE,
    TRAITS,
    IdentityTraits,
    PatientRecord,
    PatientService,
    QualificationReport,
    UnknownPatientError,
    check_qualification,
)
from console.records.identity._retention import (
    RetentionDecision,
    RetentionReport,
    RetentionRunner,
    add_years,
    decide,
    retention_end,
)
from console.records.identity._rights import EXPORT_FORMAT, RightsService
from console.records.identity._signing import (
    RECORD_KINDS,
    KeyUnlockError,
    canonical_json,
    decrypt_private_key,
    generate_user_key,
    key_id_of,
    make_bundle,
    signed_content,
    verify_bundle,
)

__all__ = [
    "EXPORT_FORMAT",
    "RECORD_KINDS",
    "RECTIFIABLE",
    "TRAITS",
    "Cell",
    "CryptoError",
    "DecryptionError",
    "IdentityTraits",
    "KeyRing",
    "KeyUnlockError",
    "Nir",
    "NirError",
    "PatientRecord",
    "PatientService",
    "PatientShreddedError",
    "QualificationReport",
    "RetentionDecision",
    "RetentionReport",
    "RetentionRunner",
    "RightsService",
    "UnknownPatientError",
    "WrongMasterKeyError",
    "add_years",
    "canonical_json",
    "check_qualification",
    "decide",
    "decrypt_private_key",
    "ensure_master_key",
    "generate_user_key",
    "is_valid_nir",
    "key_id_of",
    "make_bundle",
    "nir_key",
    "normalise_name",
    "open_field",
    "parse_nir",
    "retention_end",
    "seal_field",
    "signed_content",
    "verify_bundle",
]
