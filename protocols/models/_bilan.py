"""``bilan``: an EHPAD nurse's assessment sent to the SAMU.

Identity follows the INS "strict traits" (birth name, first names, birth date, sex,
birthplace code) with Hub Santé's sex codes, and the INS itself only when the identity is
*qualified* — an unqualified INS must not be transmitted as if it were, so its presence
is the qualification. The INS control key is checked: a one-digit typo would attach the
bilan to someone else's record.

The structured flags are what triage reads (triage.md: cardiac arrest → P0, FAST positive
or chest pain → P1); they are required booleans, not optional ones, so "not ticked" and
"not sent" cannot be confused. FAST is optional as a whole because a nurse may not have
assessed it; when present its three signs are explicit.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field, field_validator

from protocols.models._observation import Observation
from protocols.models._types import V1, Date, Id, Message, ShortText, Text, Timestamp, Tuple
from protocols.models._video import Phone
from protocols.vocab import nir_key

__all__ = [
    "INS_PATTERN",
    "RPPS_PATTERN",
    "Attachment",
    "BilanBody",
    "BilanFlags",
    "DluSummary",
    "FastSigns",
    "Nurse",
    "ResidentIdentity",
    "TrustedPerson",
]

RPPS_PATTERN: Final = r"^[0-9]{11}$"
"""RPPS number: 11 digits (Répertoire partagé des professionnels de santé)."""

INS_PATTERN: Final = r"^[1-478][0-9]{4}(?:[0-9]{2}|2A|2B)[0-9]{8}$"
"""INS (NIR or NIA): 15 characters, Corsica's 2A/2B allowed, upper case, no spaces."""

INSEE_PLACE_PATTERN: Final = r"^(?:[0-9]{2}|2A|2B)[0-9]{3}$"
"""INSEE code of the commune of birth, or ``99`` + country code for births abroad."""

SHA256_PATTERN: Final = r"^[0-9a-f]{64}$"


class Nurse(Message):
    """The nurse who wrote the bilan.

    Attributes:
        rpps: RPPS number, 11 digits.
        name: display name.
    """

    rpps: Annotated[str, Field(pattern=RPPS_PATTERN)]
    name: ShortText


class ResidentIdentity(Message):
    """The resident, by INS strict traits.

    Attributes:
        resident: the site's pseudonymous resident reference (as in ``vitals.patient``).
        birth_name: nom de naissance.
        first_names: prénoms de naissance, in order (at least one).
        used_name: nom d'usage, when different.
        birth_date: date of birth.
        sex: Hub Santé sex code ``M``, ``F``, ``O``, ``UN``.
        birthplace: INSEE birthplace code, when known.
        ins: the INS, only when the identity is qualified.
    """

    resident: Id | None = None
    birth_name: ShortText
    first_names: Annotated[Tuple[ShortText], Field(min_length=1, max_length=10)]
    used_name: ShortText | None = None
    birth_date: Date
    sex: Literal["M", "F", "O", "UN"]
    birthplace: Annotated[str, Field(pattern=INSEE_PLACE_PATTERN)] | None = None
    ins: Annotated[str, Field(pattern=INS_PATTERN)] | None = None

    @field_validator("ins")
    @classmethod
    def _ins_key(cls, value: str | None) -> str | None:
        if value is not None:
            expected = nir_key(value[:13])
            if int(value[13:]) != expected:
                raise ValueError(f"INS control key {value[13:]} is wrong (expected {expected:02d})")
        return value


class TrustedPerson(Message):
    """Personne de confiance.

    Attributes:
        name: their name.
        relation: relation to the resident.
        phone: E.164 phone number.
    """

    name: ShortText
    relation: ShortText | None = None
    phone: Phone | None = None


class DluSummary(Message):
    """Summary of the resident's DLU (dossier de liaison d'urgence).

    Attributes:
        history: relevant medical history, one item per entry.
        allergies: known allergies.
        treatments: current treatments.
        advance_directives: directives anticipées, as written or summarised.
        trusted_person: personne de confiance.
        palliative_care: the resident is in palliative care.
        baseline_confusion: known chronic confusion, scored as Alert by NEWS2 (triage.md);
            only *new* confusion scores.
        hypercapnic_respiratory_failure: clinician-documented, selects the NEWS2 SpO2
            scale 2 (triage.md); never inferred.
    """

    history: Annotated[Tuple[ShortText], Field(max_length=50)] = ()
    allergies: Annotated[Tuple[ShortText], Field(max_length=50)] = ()
    treatments: Annotated[Tuple[ShortText], Field(max_length=100)] = ()
    advance_directives: Text | None = None
    trusted_person: TrustedPerson | None = None
    palliative_care: bool
    baseline_confusion: bool = False
    hypercapnic_respiratory_failure: bool = False


class FastSigns(Message):
    """FAST stroke screen (Face, Arm, Speech, Time).

    Attributes:
        face: facial droop.
        arm: arm weakness.
        speech: speech disturbance.
        onset: time of onset or last seen well, when known.
    """

    face: bool
    arm: bool
    speech: bool
    onset: Timestamp | None = None

    @property
    def positive(self) -> bool:
        """Any sign present."""
        return self.face or self.arm or self.speech


class BilanFlags(Message):
    """Structured flags triage reads.

    Attributes:
        fall: the resident fell.
        chest_pain: chest pain.
        fast: FAST screen, when assessed.
        pain: pain score 0–10, when assessed.
        new_confusion: confusion that is new (not the DLU's baseline).
        cardiac_arrest: cardiac arrest.
    """

    fall: bool
    chest_pain: bool
    fast: FastSigns | None = None
    pain: Annotated[int, Field(ge=0, le=10)] | None = None
    new_confusion: bool
    cardiac_arrest: bool


class Attachment(Message):
    """A file sent separately, referenced by content.

    Attributes:
        sha256: lowercase hex SHA-256 of the file's bytes.
        size: size in bytes (1 byte to 100 MiB).
        media_type: MIME type, e.g. ``image/jpeg``, ``application/pdf``.
        name: file name shown to the regulator.
    """

    sha256: Annotated[str, Field(pattern=SHA256_PATTERN)]
    size: Annotated[int, Field(ge=1, le=100 * 1024 * 1024)]
    media_type: (
        Annotated[str, Field(pattern=r"^[a-z]+/[A-Za-z0-9.+-]{1,100}$", max_length=127)] | None
    ) = None
    name: ShortText | None = None


class BilanBody(Message):
    """``bilan``: a nurse's assessment.

    Attributes:
        v: body version (1).
        nurse: author.
        resident: identity.
        dlu: DLU summary, when available.
        complaint: the reason for calling, in the nurse's words.
        flags: structured flags.
        observations: vital signs, as in ``vitals`` (typed ones have method ``manual``).
        on_oxygen: whether the resident was on supplemental oxygen when the nurse
            measured (NEWS2's "air or oxygen"); ``None`` when not said. No LOINC
            observation carries it, and without it NEWS2 can never be complete.
        attachments: files by SHA-256 and size, no repeats.
        notes: free text beyond the complaint.
    """

    v: V1
    nurse: Nurse
    resident: ResidentIdentity
    dlu: DluSummary | None = None
    complaint: Text
    flags: BilanFlags
    observations: Annotated[Tuple[Observation], Field(max_length=256)] = ()
    on_oxygen: bool | None = None
    attachments: Annotated[Tuple[Attachment], Field(max_length=32)] = ()
    notes: Text | None = None

    @field_validator("attachments")
    @classmethod
    def _unique_attachments(cls, value: tuple[Attachment, ...]) -> tuple[Attachment, ...]:
        digests = [a.sha256 for a in value]
        if len(set(digests)) != len(digests):
            raise ValueError("the same attachment (sha256) is listed twice")
        return value
