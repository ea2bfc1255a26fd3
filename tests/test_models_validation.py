"""The models refuse what they must, with messages that say which field and why."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from protocols import (
    BilanBody,
    Envelope,
    ImplantAlert,
    ImplantBody,
    ImplantEpisode,
    Observation,
    VideoBody,
    VitalsBody,
)
from protocols.vocab import LOINC, nir_key

T = "2026-11-23T17:02:03.120+01:00"


def obs(code: str = "59408-5", value: object = 95, unit: object = "%", **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"code": code, "value": value, "time": T, "method": "device", **kw}
    if unit is not None:
        d["unit"] = unit
    return d


def vitals_env(**body: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "id": "0b7e7c1e-4d4c-4a55-9b8e-2a1e6f3c9d10",
        "kind": "vitals",
        "site": "ehpad-lilas",
        "device": "ox-1",
        "seq": 42,
        "sent": T,
        "body": {"v": 1, "observations": [obs()], **body},
    }


#: A pydantic error location: the path to a field, ``()`` for the model as a whole.
Loc = tuple[str | int, ...]


def errors_of(model: type, data: object, *, loc: Loc) -> str:
    """Validate ``data`` with ``model``, which must refuse it with an error at ``loc``.

    ``loc`` is pydantic's location of the refused field, e.g. ``("body", "observations",
    0)``, or ``()`` for a rule of the model as a whole (a model validator). Returns the
    messages of the errors at exactly that location, one a line, and fails if there is
    none: a refusal for another field does not pass for the one the test names.
    """
    with pytest.raises(ValidationError) as exc:
        model.model_validate(data)
    errors = exc.value.errors()
    here = [e["msg"] for e in errors if tuple(e["loc"]) == loc]
    elsewhere = ", ".join(repr(tuple(e["loc"])) for e in errors)
    assert here, f"no error at {loc!r}, only at {elsewhere}:\n{exc.value}"
    return "\n".join(here)


# --- observations ----------------------------------------------------------------------

NUMERIC = [c for c in LOINC.values() if c.numeric]


@pytest.mark.parametrize("info", NUMERIC, ids=[c.code for c in NUMERIC])
def test_every_numeric_loinc_code_requires_its_ucum_unit(info: Any) -> None:
    mid = (info.low + info.high) / 2
    Observation.model_validate(obs(info.code, mid, info.unit))
    for wrong in (
        "mmHg",
        "degC",
        "[degF]",
        "bpm",
        "mmol/L",
        "lb",
        "",
        "%" if info.unit != "%" else "/min",
    ):
        msg = errors_of(Observation, obs(info.code, mid, wrong), loc=())
        assert "wrong unit" in msg and info.unit in msg
    msg = errors_of(Observation, obs(info.code, mid, None), loc=())
    assert "wrong unit" in msg


@pytest.mark.parametrize("info", NUMERIC, ids=[c.code for c in NUMERIC])
def test_every_numeric_loinc_code_has_a_plausible_range(info: Any) -> None:
    Observation.model_validate(obs(info.code, info.low, info.unit))
    Observation.model_validate(obs(info.code, info.high, info.unit))
    for bad in (info.low - 0.1, info.high + 0.1, -1e9, 1e9):
        assert "not plausible" in errors_of(Observation, obs(info.code, bad, info.unit), loc=())


def test_known_implausible_values() -> None:
    assert "not plausible" in errors_of(Observation, obs("59408-5", 101, "%"), loc=())
    assert "not plausible" in errors_of(Observation, obs("8310-5", 12.0, "Cel"), loc=())
    assert "not plausible" in errors_of(Observation, obs("8867-4", 350, "/min"), loc=())
    assert "not plausible" in errors_of(Observation, obs("41653-7", 0, "mg/dL"), loc=())


def test_consciousness_is_an_acvpu_code_without_unit() -> None:
    for code in "ACVPU":
        Observation.model_validate(obs("67775-7", code, None))
    assert "ACVPU" in errors_of(Observation, obs("67775-7", 15, None), loc=())
    assert "ACVPU" in errors_of(Observation, obs("67775-7", "a", None), loc=())
    assert "no unit" in errors_of(Observation, obs("67775-7", "A", "{score}"), loc=())


def test_numeric_codes_refuse_text_values_and_booleans() -> None:
    assert "needs a number" in errors_of(Observation, obs("59408-5", "95", "%"), loc=())
    # True is not a number: refused by the value field's float branch, not coerced to 1.
    assert "valid number" in errors_of(
        Observation, obs("59408-5", True, "%"), loc=("value", "float")
    )


def test_unknown_loinc_code_and_method_refused() -> None:
    errors_of(Observation, obs("1234-5", 1, "%"), loc=("code",))
    errors_of(Observation, obs(method="guessed"), loc=("method",))


def test_nan_and_infinity_refused() -> None:
    for bad in (float("nan"), float("inf")):
        msg = errors_of(Observation, obs("8310-5", bad, "Cel"), loc=("value", "float"))
        assert "finite number" in msg


def test_diastolic_above_systolic_at_same_time_refused() -> None:
    body = {
        "v": 1,
        "observations": [obs("8480-6", 90, "mm[Hg]"), obs("8462-4", 120, "mm[Hg]")],
    }
    assert "diastolic 120" in errors_of(VitalsBody, body, loc=())
    body["observations"][1]["time"] = "2026-11-23T17:05:00+01:00"
    VitalsBody.model_validate(body)  # different measurements: not comparable


# --- envelope --------------------------------------------------------------------------


def test_valid_envelope_accepted() -> None:
    env = Envelope.model_validate(vitals_env())
    assert isinstance(env.body, VitalsBody)
    assert env.sent.utcoffset() is not None


@pytest.mark.parametrize(
    "sent",
    [
        "2026-11-23T17:02:03",
        "2026-11-23T17:02:03.120",
        "2026-11-23 17:02:03+01:00",
        "2026-11-23T17:02:03+0100",
        "2026-11-23",
        1795477922,
        "",
    ],
)
def test_sent_needs_rfc3339_with_offset(sent: object) -> None:
    errors_of(Envelope, {**vitals_env(), "sent": sent}, loc=("sent",))


def test_naive_timestamp_message_says_so() -> None:
    assert "naive" in errors_of(
        Envelope, {**vitals_env(), "sent": "2026-11-23T17:02:03"}, loc=("sent",)
    )
    with pytest.raises(ValidationError, match="naive"):
        Envelope.create(
            site="s",
            device="d",
            seq=1,
            body=Envelope.model_validate(vitals_env()).body,
            sent=datetime(2026, 1, 1),
        )


def test_z_offset_accepted() -> None:
    env = Envelope.model_validate({**vitals_env(), "sent": "2026-11-23T16:02:03Z"})
    assert env.sent.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("site", ""),
        ("site", "a/b"),
        ("site", "a+b"),
        ("site", "#"),
        ("site", "x" * 65),
        ("site", "café"),
        ("device", "a b"),
        ("device", "dev\n"),
        ("id", "not-a-uuid"),
        ("seq", -1),
        ("seq", "42"),
        ("seq", 42.0),
        ("seq", True),
        ("seq", 2**53),
        ("v", 2),
        ("v", True),
        ("kind", "alarm"),
        ("mac", "short"),
    ],
)
def test_bad_envelope_fields_refused(field: str, value: object) -> None:
    errors_of(Envelope, {**vitals_env(), field: value}, loc=(field,))


def test_unknown_fields_refused_everywhere() -> None:
    assert "Extra inputs" in errors_of(Envelope, {**vitals_env(), "prio": 1}, loc=("prio",))
    data = vitals_env()
    data["body"]["extra"] = 1
    assert "Extra inputs" in errors_of(Envelope, data, loc=("body", "extra"))
    data = vitals_env()
    data["body"]["observations"][0]["note"] = "x"
    msg = errors_of(Envelope, data, loc=("body", "observations", 0, "note"))
    assert "Extra inputs" in msg


def test_body_validated_against_model_of_its_kind() -> None:
    data = {**vitals_env(), "kind": "status"}
    msg = errors_of(Envelope, data, loc=("body", "state"))
    assert "Field required" in msg  # validated as a StatusBody, which needs `state`
    data["body"] = {"v": 1, "state": "ok"}
    Envelope.model_validate(data)


def test_body_error_points_inside_the_body() -> None:
    data = vitals_env()
    data["body"]["observations"][0]["unit"] = "mmHg"
    msg = errors_of(Envelope, data, loc=("body", "observations", 0))
    assert "wrong unit" in msg


def test_models_are_frozen() -> None:
    env = Envelope.model_validate(vitals_env())
    with pytest.raises(ValidationError):
        env.seq = 43  # type: ignore[misc]


# --- implant ---------------------------------------------------------------------------

IMPLANT = {
    "v": 1,
    "device": {"type": 753666, "model": "Evera", "serial": "ABC123"},
    "session": {"type": 754052, "time": T},
}


def test_implant_types_and_sessions_are_coded() -> None:
    ImplantBody.model_validate(IMPLANT)
    bad_device = {**IMPLANT, "device": {**IMPLANT["device"], "type": 753669}}
    errors_of(ImplantBody, bad_device, loc=("device", "type"))
    bad_session = {**IMPLANT, "session": {"type": 754050, "time": T}}
    errors_of(ImplantBody, bad_session, loc=("session", "type"))


def test_implant_observation_units_and_values() -> None:
    ok = [
        {"term": "MDC_IDC_MSMT_BATTERY_STATUS", "value": "RRT"},
        {"term": "MDC_IDC_MSMT_LEADCHNL_RV_IMPEDANCE_VALUE", "value": 2400, "unit": "Ohm"},
        {"term": "MDC_IDC_STAT_TACHYTHERAPY_SHOCKS_DELIVERED_RECENT", "value": 3, "unit": "1"},
        {"term": "MDC_IDC_STAT_ATAF_BURDEN_PERCENT", "value": 12.5, "unit": "%"},
    ]
    ImplantBody.model_validate({**IMPLANT, "observations": ok})
    at_obs: Loc = ("observations", 0)
    for bad, loc, fragment in (
        ({"term": "MDC_IDC_MSMT_BATTERY_STATUS", "value": "FULL"}, at_obs, "takes one of"),
        (
            {"term": "MDC_IDC_MSMT_LEADCHNL_RV_IMPEDANCE_VALUE", "value": 500, "unit": "kOhm"},
            at_obs,
            "wrong unit",
        ),
        (
            {
                "term": "MDC_IDC_STAT_TACHYTHERAPY_SHOCKS_DELIVERED_RECENT",
                "value": 2.5,
                "unit": "1",
            },
            at_obs,
            "is a count",
        ),
        (
            {"term": "MDC_IDC_STAT_ATAF_BURDEN_PERCENT", "value": 120, "unit": "%"},
            at_obs,
            "not plausible",
        ),
        ({"term": "MDC_IDC_UNKNOWN", "value": 1}, (*at_obs, "term"), "Input should be"),
    ):
        assert fragment in errors_of(ImplantBody, {**IMPLANT, "observations": [bad]}, loc=loc)
    dup = [ok[0], ok[0]]
    assert "one value per" in errors_of(ImplantBody, {**IMPLANT, "observations": dup}, loc=())


def test_lead_impedance_alert_must_be_out_of_range() -> None:
    base = {"code": "lead_impedance_out_of_range", "time": T}
    ImplantAlert.model_validate({**base, "lead": "RV", "ohms": 2400})
    ImplantAlert.model_validate({**base, "lead": "RV", "ohms": 150})
    ImplantAlert.model_validate({**base, "lead": "HV", "ohms": 15})
    ImplantAlert.model_validate({**base, "lead": "HV", "ohms": 250})
    assert "within range" in errors_of(ImplantAlert, {**base, "lead": "RV", "ohms": 2000}, loc=())
    assert "within range" in errors_of(ImplantAlert, {**base, "lead": "RV", "ohms": 200}, loc=())
    assert "within range" in errors_of(ImplantAlert, {**base, "lead": "HV", "ohms": 60}, loc=())
    assert "needs lead and ohms" in errors_of(ImplantAlert, {**base, "lead": "RV"}, loc=())
    shock = {"code": "shock_delivered", "time": T, "lead": "RV", "ohms": 3000}
    assert "belong to lead_impedance_out_of_range" in errors_of(ImplantAlert, shock, loc=())


def test_storm_and_af_alerts_carry_their_figures() -> None:
    ImplantAlert.model_validate({"code": "vt_vf_storm", "time": T, "episodes_24h": 3})
    storm = {"code": "vt_vf_storm", "time": T, "episodes_24h": 2}
    assert "needs episodes_24h" in errors_of(ImplantAlert, storm, loc=())
    af = {"code": "af_burden_over_threshold", "time": T}
    assert "needs af_burden_pct" in errors_of(ImplantAlert, af, loc=())


def test_episode_therapy_consistency() -> None:
    ep = {"id": "e1", "type": "VF", "time": T, "duration_s": 12, "result": "terminated_by_therapy"}
    ImplantEpisode.model_validate({**ep, "therapy": "shock", "shocks": 1})
    for therapy, shocks, fragment in (
        ("shock", 0, "disagree"),
        ("atp", 2, "disagree"),
        ("none", 0, "needs a therapy"),
    ):
        msg = errors_of(ImplantEpisode, {**ep, "therapy": therapy, "shocks": shocks}, loc=())
        assert fragment in msg


def test_pacemaker_cannot_shock() -> None:
    pm = {**IMPLANT, "device": {**IMPLANT["device"], "type": 753665}}
    ImplantBody.model_validate(pm)
    shock = {**pm, "alerts": [{"code": "shock_delivered", "time": T}]}
    assert "without defibrillator" in errors_of(ImplantBody, shock, loc=())
    hv = {"term": "MDC_IDC_MSMT_LEADHVCHNL_IMPEDANCE", "value": 50, "unit": "Ohm"}
    msg = errors_of(ImplantBody, {**pm, "observations": [hv]}, loc=())
    assert "without defibrillator" in msg


# --- video -----------------------------------------------------------------------------

VIDEO = {"v": 1, "session": "vs-1", "case": "fr.health.samu075.DRM-2026-0042", "time": T}
CONSENT = {"by": "FAMILLE", "name": "Élise Durand", "relation": "fille", "how": "verbal"}


def test_video_event_specific_fields() -> None:
    VideoBody.model_validate({**VIDEO, "event": "link_sent", "phone": "+33612345678"})
    assert "phone" in errors_of(VideoBody, {**VIDEO, "event": "link_sent"}, loc=())
    VideoBody.model_validate({**VIDEO, "event": "consent_granted", "consent": CONSENT})
    withdrawn = {**VIDEO, "event": "consent_withdrawn"}
    assert "needs consent" in errors_of(VideoBody, withdrawn, loc=())
    assert "consent belongs" in errors_of(
        VideoBody, {**VIDEO, "event": "stream_started", "consent": CONSENT}, loc=()
    )
    q = {"bitrate_kbps": 850, "fps": 24, "loss_pct": 1.5}
    VideoBody.model_validate({**VIDEO, "event": "stream_quality", "quality": q})
    msg = errors_of(VideoBody, {**VIDEO, "event": "stream_quality"}, loc=())
    assert "needs quality" in msg
    msg = errors_of(VideoBody, {**VIDEO, "event": "link_opened", "quality": q}, loc=())
    assert "quality belongs" in msg
    lossy = {**VIDEO, "event": "stream_quality", "quality": {**q, "loss_pct": 101}}
    errors_of(VideoBody, lossy, loc=("quality", "loss_pct"))


@pytest.mark.parametrize(
    "phone", ["0612345678", "+33 6 12 34 56 78", "+0612345678", "+1234567890123456", "+"]
)
def test_phone_must_be_e164(phone: str) -> None:
    errors_of(VideoBody, {**VIDEO, "event": "link_sent", "phone": phone}, loc=("phone",))


def test_consent_uses_hub_sante_caller_types() -> None:
    for by in ("SUJET", "FAMILLE", "TIERS", "SANTE.INF"):
        VideoBody.model_validate(
            {**VIDEO, "event": "consent_granted", "consent": {**CONSENT, "by": by}}
        )
    for by in ("OBJCONNC", "INCONNU", "NURSE", "famille"):
        errors_of(
            VideoBody,
            {**VIDEO, "event": "consent_granted", "consent": {**CONSENT, "by": by}},
            loc=("consent", "by"),
        )


def test_case_id_shape() -> None:
    errors_of(VideoBody, {**VIDEO, "event": "link_opened", "case": "DRM-42"}, loc=("case",))


# --- bilan -----------------------------------------------------------------------------

INS_BODY = "2450375123456"
INS = f"{INS_BODY}{nir_key(INS_BODY):02d}"

BILAN: dict[str, Any] = {
    "v": 1,
    "nurse": {"rpps": "10001234567", "name": "Élise Martin"},
    "resident": {
        "birth_name": "DUPONT",
        "first_names": ["Jeanne", "Marie"],
        "birth_date": "1945-03-12",
        "sex": "F",
        "birthplace": "75112",
        "ins": INS,
    },
    "dlu": {"palliative_care": False, "allergies": ["pénicilline"]},
    "complaint": "Chute dans la chambre, douleur hanche droite",
    "flags": {
        "fall": True,
        "chest_pain": False,
        "new_confusion": False,
        "cardiac_arrest": False,
        "pain": 6,
    },
    "observations": [obs("8867-4", 96, "/min", method="manual")],
    "attachments": [{"sha256": "a" * 64, "size": 1024, "media_type": "image/jpeg"}],
}


def test_bilan_valid() -> None:
    b = BilanBody.model_validate(BILAN)
    assert b.resident.first_names == ("Jeanne", "Marie")


def with_(path: list[object], value: object) -> dict[str, Any]:
    data = copy.deepcopy(BILAN)
    node: Any = data
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["nurse", "rpps"], "1000123456"),
        (["nurse", "rpps"], "1000123456a"),
        (["resident", "ins"], INS[:13] + f"{(int(INS[13:]) % 97) + 1:02d}"),
        (["resident", "ins"], INS[:14]),
        (["resident", "sex"], "X"),
        (["resident", "birth_date"], "12/03/1945"),
        (["resident", "birth_date"], "1945-03-12T00:00:00"),
        (["resident", "birthplace"], "7511"),
        (["resident", "first_names"], []),
        (["flags", "pain"], 11),
        (["flags", "fall"], "yes"),
        (["attachments", 0, "sha256"], "A" * 64),
        (["attachments", 0, "size"], 0),
        (["complaint"], ""),
    ],
)
def test_bilan_bad_values_refused(path: list[object], value: object) -> None:
    errors_of(BilanBody, with_(path, value), loc=tuple(path))


def test_bilan_flags_are_explicit() -> None:
    data = copy.deepcopy(BILAN)
    del data["flags"]["chest_pain"]
    assert "Field required" in errors_of(BilanBody, data, loc=("flags", "chest_pain"))


def test_bilan_corsica_ins_and_duplicate_attachments() -> None:
    body = "145032A123456"
    ok = with_(["resident", "ins"], f"{body}{nir_key(body):02d}")
    BilanBody.model_validate(ok)
    dup = with_(["attachments"], BILAN["attachments"] * 2)
    assert "twice" in errors_of(BilanBody, dup, loc=("attachments",))
