"""Hypothesis strategies for every message model and for arbitrary JSON values.

Hand-made rather than ``st.builds``: the models carry cross-field rules (unit per LOINC
code, event-specific video fields, implant alert consistency, INS key) that blind
generation would almost never satisfy. Every strategy produces *valid* models;
tests/test_models_strategies.py checks that, so a strategy bug cannot hide as a
round-trip pass.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from protocols import (
    Attachment,
    BilanBody,
    BilanFlags,
    BirthBody,
    DeathBody,
    DeviceStatus,
    DluSummary,
    Envelope,
    FastSigns,
    ImplantAlert,
    ImplantBody,
    ImplantDevice,
    ImplantEpisode,
    ImplantObservation,
    ImplantSession,
    Nurse,
    Observation,
    ResidentIdentity,
    StatusBody,
    StreamQuality,
    TrustedPerson,
    VideoBody,
    VideoConsent,
    VitalsBody,
)
from protocols.vocab import (
    ACVPU,
    BATTERY_STATUSES,
    CONSENT_CALLER_TYPES,
    DEVICE_FLAGS,
    DEVICE_KINDS,
    HV_LEAD_OHMS,
    IDC_TERMS,
    LOINC,
    MDC,
    PACING_LEAD_OHMS,
    SERIAL_FORMATS,
    nir_key,
)

ids = st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)
uuids = st.uuids().map(str)

# Any Unicode except surrogates (not encodable) — accents, CJK, emoji, control chars.
_chars = st.characters(exclude_categories=("Cs",))
short_text = st.text(_chars, min_size=1, max_size=30)
long_text = st.text(_chars, min_size=1, max_size=200)

offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
timestamps = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=offsets
)


def _number(low: float, high: float) -> st.SearchStrategy[float]:
    return st.one_of(
        st.integers(int(low) + (low % 1 > 0), int(high)).map(float),
        st.floats(low, high, allow_nan=False, allow_infinity=False),
    )


@st.composite
def observations(draw: st.DrawFn, time: datetime | None = None) -> Observation:
    info = LOINC[draw(st.sampled_from(sorted(LOINC)))]
    when = time if time is not None else draw(timestamps)
    method = draw(st.sampled_from(["device", "manual"]))
    if not info.numeric:
        return Observation(
            code=info.code, value=draw(st.sampled_from(ACVPU)), time=when, method=method
        )  # type: ignore[arg-type]
    assert info.low is not None and info.high is not None
    return Observation(
        code=info.code,  # type: ignore[arg-type]
        value=draw(_number(info.low, info.high)),
        unit=info.unit,
        time=when,
        method=method,  # type: ignore[arg-type]
    )


@st.composite
def observation_lists(draw: st.DrawFn, min_size: int = 1, max_size: int = 6) -> list[Observation]:
    """Distinct times, so the same-time diastolic ≤ systolic rule is never tripped."""
    base = draw(timestamps.filter(lambda t: t.year < 2099))
    n = draw(st.integers(min_size, max_size))
    return [draw(observations(time=base + timedelta(seconds=i))) for i in range(n)]


device_statuses = st.builds(
    DeviceStatus,
    battery_pct=st.none() | st.integers(0, 100),
    flags=st.lists(st.sampled_from(DEVICE_FLAGS), unique=True, max_size=4).map(tuple),
    error_code=st.none() | st.integers(0, 255),
)

vitals_bodies = st.builds(
    VitalsBody,
    v=st.just(1),
    patient=st.none() | ids,
    observations=observation_lists().map(tuple),
    device_status=st.none() | device_statuses,
)

status_bodies = st.builds(
    StatusBody,
    v=st.just(1),
    state=st.sampled_from(["ok", "degraded", "fault", "disconnected"]),
    battery_pct=st.none() | st.integers(0, 100),
    flags=st.lists(st.sampled_from(DEVICE_FLAGS), unique=True, max_size=4).map(tuple),
    error_code=st.none() | st.integers(0, 255),
    clock_offset_s=st.none() | st.floats(-1e6, 1e6, allow_nan=False),
    detail=st.none() | short_text,
)

birth_bodies = st.builds(
    BirthBody,
    v=st.just(1),
    kind=st.sampled_from(DEVICE_KINDS),
    model=short_text,
    manufacturer=st.none() | short_text,
    serial=short_text,
    firmware=short_text,
    format=st.none() | st.sampled_from(SERIAL_FORMATS),
    mdc=st.lists(st.sampled_from(sorted(MDC)), unique=True, max_size=4).map(tuple),
    profile=st.none() | ids,
    sampling_period_s=st.none() | st.floats(0.001, 86400, allow_nan=False),
)

death_bodies = st.builds(
    DeathBody,
    v=st.just(1),
    reason=st.sampled_from(["connection_lost", "shutdown", "battery_depleted", "removed", "fault"]),
)


# --- implant ---------------------------------------------------------------------------


def _has_defibrillator(device_type: int) -> bool:
    return device_type in (753666, 753667)


@st.composite
def implant_observation(draw: st.DrawFn, term: str) -> ImplantObservation:
    info = IDC_TERMS[term]
    if info.value == "code":
        value: float | str = draw(st.sampled_from(BATTERY_STATUSES))
    elif info.value == "text":
        value = draw(short_text)
    elif info.value == "count":
        assert info.high is not None
        value = float(draw(st.integers(0, int(info.high))))
    else:
        assert info.low is not None and info.high is not None
        value = draw(_number(info.low, info.high))
    return ImplantObservation(term=term, value=value, unit=info.unit)  # type: ignore[arg-type]


@st.composite
def implant_episodes(draw: st.DrawFn, can_shock: bool) -> ImplantEpisode:
    therapies = ["none", "atp", "shock", "atp_shock"] if can_shock else ["none", "atp"]
    therapy = draw(st.sampled_from(therapies))
    shocks = draw(st.integers(1, 8)) if therapy in ("shock", "atp_shock") else 0
    results = (
        ["spontaneous", "ongoing"]
        if therapy == "none"
        else ["spontaneous", "terminated_by_therapy", "therapy_unsuccessful", "ongoing"]
    )
    return ImplantEpisode(
        id=draw(ids),
        type=draw(st.sampled_from(["VT", "VF", "AT-AF"])),
        time=draw(timestamps),
        duration_s=draw(st.floats(0, 30 * 86400, allow_nan=False)),
        therapy=therapy,  # type: ignore[arg-type]
        shocks=shocks,
        result=draw(st.sampled_from(results)),  # type: ignore[arg-type]
    )


@st.composite
def implant_alerts(draw: st.DrawFn, can_shock: bool) -> ImplantAlert:
    codes = [
        "battery_rrt",
        "battery_eos",
        "lead_impedance_out_of_range",
        "vt_vf_episode",
        "vt_vf_storm",
        "af_burden_over_threshold",
        "transmitter_disconnected",
    ]
    if can_shock:
        codes += ["shock_delivered", "shock_unsuccessful", "therapies_exhausted"]
    code = draw(st.sampled_from(codes))
    kwargs: dict[str, object] = {"code": code, "time": draw(timestamps)}
    if code == "lead_impedance_out_of_range":
        lead = draw(st.sampled_from(["RA", "RV", "LV", "HV"] if can_shock else ["RA", "RV", "LV"]))
        low, high = HV_LEAD_OHMS if lead == "HV" else PACING_LEAD_OHMS
        kwargs["lead"] = lead
        kwargs["ohms"] = draw(
            st.floats(0, low, exclude_max=True) | st.floats(high, 20000, exclude_min=True)
        )
    if code == "vt_vf_storm":
        kwargs["episodes_24h"] = draw(st.integers(3, 50))
    if code == "af_burden_over_threshold":
        kwargs["af_burden_pct"] = draw(st.floats(0, 100))
    kwargs["detail"] = draw(st.none() | short_text)
    return ImplantAlert(**kwargs)  # type: ignore[arg-type]


@st.composite
def implant_bodies(draw: st.DrawFn) -> ImplantBody:
    device_type = draw(st.sampled_from([753665, 753666, 753667, 753668]))
    can_shock = _has_defibrillator(device_type)
    terms = [
        t
        for t, info in IDC_TERMS.items()
        if can_shock
        or (info.lead != "hv" and t != "MDC_IDC_STAT_TACHYTHERAPY_SHOCKS_DELIVERED_RECENT")
    ]
    chosen = draw(st.lists(st.sampled_from(terms), unique=True, max_size=5))
    episodes = draw(st.lists(implant_episodes(can_shock), max_size=3, unique_by=lambda e: e.id))
    return ImplantBody(
        v=1,
        patient=draw(st.none() | ids),
        device=ImplantDevice(
            type=device_type,  # type: ignore[arg-type]
            model=draw(short_text),
            serial=draw(short_text),
            manufacturer=draw(st.none() | short_text),
        ),
        session=ImplantSession(
            type=draw(st.sampled_from([754051, 754052, 754053])),
            time=draw(timestamps),
        ),
        observations=tuple(draw(implant_observation(t)) for t in chosen),
        episodes=tuple(episodes),
        alerts=tuple(draw(st.lists(implant_alerts(can_shock), max_size=3))),
    )


# --- video -----------------------------------------------------------------------------

phones = st.from_regex(r"\+[1-9][0-9]{1,14}", fullmatch=True)
case_ids = st.from_regex(r"fr\.health\.samu[0-9]{3}\.[A-Za-z0-9_-]{1,20}", fullmatch=True)

qualities = st.builds(
    StreamQuality,
    bitrate_kbps=st.floats(0, 100_000),
    fps=st.floats(0, 120),
    loss_pct=st.floats(0, 100),
    rtt_ms=st.none() | st.floats(0, 60_000),
)


@st.composite
def video_bodies(draw: st.DrawFn) -> VideoBody:
    event = draw(
        st.sampled_from(
            [
                "link_sent",
                "link_opened",
                "consent_granted",
                "consent_refused",
                "stream_started",
                "stream_quality",
                "stream_ended",
                "consent_withdrawn",
            ]
        )
    )
    consent = None
    if event.startswith("consent_"):
        consent = VideoConsent(
            by=draw(st.sampled_from(CONSENT_CALLER_TYPES)),  # type: ignore[arg-type]
            name=draw(st.none() | short_text),
            relation=draw(st.none() | short_text),
            how=draw(st.sampled_from(["verbal", "link"])),
        )
    quality = None
    if event == "stream_quality" or (event == "stream_ended" and draw(st.booleans())):
        quality = draw(qualities)
    phone = draw(phones) if event == "link_sent" else draw(st.none() | phones)
    return VideoBody(
        v=1,
        session=draw(ids),
        case=draw(case_ids),
        event=event,  # type: ignore[arg-type]
        time=draw(timestamps),
        phone=phone,
        consent=consent,
        quality=quality,
    )


# --- bilan -----------------------------------------------------------------------------


@st.composite
def ins_numbers(draw: st.DrawFn) -> str:
    body = draw(st.from_regex(r"[12478][0-9]{4}([0-9]{2}|2A|2B)[0-9]{6}", fullmatch=True))
    return f"{body}{nir_key(body):02d}"


identities = st.builds(
    ResidentIdentity,
    resident=st.none() | ids,
    birth_name=short_text,
    first_names=st.lists(short_text, min_size=1, max_size=3).map(tuple),
    used_name=st.none() | short_text,
    birth_date=st.dates(),
    sex=st.sampled_from(["M", "F", "O", "UN"]),
    birthplace=st.none() | st.from_regex(r"([0-9]{2}|2A|2B)[0-9]{3}", fullmatch=True),
    ins=st.none() | ins_numbers(),
)

dlus = st.builds(
    DluSummary,
    history=st.lists(short_text, max_size=3).map(tuple),
    allergies=st.lists(short_text, max_size=3).map(tuple),
    treatments=st.lists(short_text, max_size=3).map(tuple),
    advance_directives=st.none() | long_text,
    trusted_person=st.none()
    | st.builds(
        TrustedPerson, name=short_text, relation=st.none() | short_text, phone=st.none() | phones
    ),
    palliative_care=st.booleans(),
    baseline_confusion=st.booleans(),
    hypercapnic_respiratory_failure=st.booleans(),
)

flags = st.builds(
    BilanFlags,
    fall=st.booleans(),
    chest_pain=st.booleans(),
    fast=st.none()
    | st.builds(
        FastSigns,
        face=st.booleans(),
        arm=st.booleans(),
        speech=st.booleans(),
        onset=st.none() | timestamps,
    ),
    pain=st.none() | st.integers(0, 10),
    new_confusion=st.booleans(),
    cardiac_arrest=st.booleans(),
)

attachments = st.builds(
    Attachment,
    sha256=st.binary(min_size=32, max_size=32).map(bytes.hex),
    size=st.integers(1, 100 * 1024 * 1024),
    media_type=st.none() | st.sampled_from(["image/jpeg", "application/pdf", "image/png"]),
    name=st.none() | short_text,
)

bilan_bodies = st.builds(
    BilanBody,
    v=st.just(1),
    nurse=st.builds(Nurse, rpps=st.from_regex(r"[0-9]{11}", fullmatch=True), name=short_text),
    resident=identities,
    dlu=st.none() | dlus,
    complaint=long_text,
    flags=flags,
    observations=observation_lists(min_size=0, max_size=4).map(tuple),
    attachments=st.lists(attachments, max_size=3, unique_by=lambda a: a.sha256).map(tuple),
    notes=st.none() | long_text,
)

bodies = st.one_of(
    vitals_bodies,
    status_bodies,
    birth_bodies,
    death_bodies,
    implant_bodies(),
    video_bodies(),
    bilan_bodies,
)


@st.composite
def envelopes(draw: st.DrawFn, body: st.SearchStrategy[object] = bodies) -> Envelope:
    return Envelope.create(
        site=draw(ids),
        device=draw(ids),
        seq=draw(st.integers(0, 2**53 - 1)),
        body=draw(body),  # type: ignore[arg-type]
        sent=draw(timestamps),
        message_id=draw(uuids),
    )


FIXED_SENT = datetime(2026, 11, 23, 16, 2, 3, 120000, tzinfo=UTC)


# --- any JSON value -------------------------------------------------------------------

#: Any value the JSON data model holds (no NaN or infinities, no lone surrogates).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",))),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(st.characters(exclude_categories=("Cs",)), max_size=8), children, max_size=4
        )
    ),
    max_leaves=20,
)
