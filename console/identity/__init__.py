"""Patient identities, qualification, signed records, retention and rights.

:class:`PatientService` is the door to identities and signed records (it authorises
through :class:`console.auth.AccountService`); :class:`RetentionRunner` and
:class:`RightsService` build on it for ``samu retention`` and ``samu rights``. The INS
key check and the retention rule are pure and exported for reuse and tests; the
cryptography they use (field sealing, blind index, signing keys) is
:mod:`console.crypto`.
"""

from console.identity._ins import Nir, NirError, is_valid_nir, nir_key, parse_nir
from console.identity._patients import (
    RECTIFIABLE,
    TRAITS,
    IdentityTraits,
    PatientRecord,
    PatientService,
    QualificationReport,
    UnknownPatientError,
    check_qualification,
)
from console.identity._retention import (
    RetentionDecision,
    RetentionReport,
    RetentionRunner,
    add_years,
    decide,
    retention_end,
)
from console.identity._rights import EXPORT_FORMAT, RightsService

__all__ = [
    "EXPORT_FORMAT",
    "RECTIFIABLE",
    "TRAITS",
    "IdentityTraits",
    "Nir",
    "NirError",
    "PatientRecord",
    "PatientService",
    "QualificationReport",
    "RetentionDecision",
    "RetentionReport",
    "RetentionRunner",
    "RightsService",
    "UnknownPatientError",
    "add_years",
    "check_qualification",
    "decide",
    "is_valid_nir",
    "nir_key",
    "parse_nir",
    "retention_end",
]
