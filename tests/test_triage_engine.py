"""The full engine: freshness, bilan flags, implant severity, deterioration, NR."""

from __future__ import annotations

import numpy as np
import pytest

from console.triage import (
    PARAMETERS,
    ImplantAlertName,
    ImplantCondition,
    ImplantStatus,
    News2History,
    TriageInputs,
    VitalsArrays,
    bilan_flags,
    default_policy,
    implant_severity,
    triage,
)

POLICY = default_policy()
NOW = 1_800_000_000.0
NORMAL: dict[str, object] = {
    "resp_rate": 16,
    "spo2": 98,
    "on_oxygen": 0,
    "systolic_bp": 120,
    "heart_rate": 70,
    "consciousness": "A",
    "temperature": 37.0,
}
MISSING: dict[str, object] = {k: None for k in NORMAL}


def vitals(*rows: dict[str, object]) -> VitalsArrays:
    merged = [{**NORMAL, **r} for r in rows]
    return VitalsArrays.from_values(**{k: [m[k] for m in merged] for k in NORMAL})  # type: ignore[arg-type]


def one(
    row: dict[str, object] | None = None,
    *,
    implant: int = 0,
    bilan: int = 0,
    observed_at: np.ndarray | None = None,
) -> tuple[str, list[str], set[str]]:
    inputs = TriageInputs(
        vitals=vitals(row or {}),
        observed_at=observed_at,
        implant=np.array([implant], np.uint16),
        bilan=np.array([bilan], np.uint8),
    )
    result = triage(inputs, POLICY, now=NOW)
    return result.priority_names()[0], result.reasons(0), set(result.fired(0))


def test_no_clinical_data_is_nr() -> None:
    priority, reasons, fired = one(MISSING)
    assert priority == "NR"
    assert fired == {"no_data"}
    assert reasons[0].startswith("no clinical data yet")


def test_stale_values_leave_the_score_and_are_reported() -> None:
    observed = np.full((len(PARAMETERS), 1), NOW - 60.0)
    observed[PARAMETERS.index("resp_rate"), 0] = NOW - 16 * 60  # older than 15 min
    priority, reasons, _ = one({"resp_rate": 30}, observed_at=observed)
    assert priority == "P3"  # the respiration rate of 30 (3 points) is stale
    assert "stale (left out of the score): respiration rate" in reasons
    assert any("NEWS2 incomplete" in r for r in reasons)
    observed[PARAMETERS.index("resp_rate"), 0] = NOW - 15 * 60  # exactly 15 min: still fresh
    assert one({"resp_rate": 30}, observed_at=observed)[0] == "P1"


def test_all_values_stale_and_nothing_else_is_nr_with_the_stale_list() -> None:
    observed = np.full((len(PARAMETERS), 1), NOW - 3600.0)
    priority, reasons, _ = one({}, observed_at=observed)
    assert priority == "NR"
    assert reasons[-1].startswith("stale (left out of the score): respiration rate/SpO2")


def test_freshness_window_comes_from_the_installation_setting() -> None:
    observed = np.full((len(PARAMETERS), 1), NOW - 600.0)
    inputs = TriageInputs(vitals=vitals({"resp_rate": 30}), observed_at=observed)
    assert triage(inputs, POLICY, now=NOW).priority_names() == ["P1"]
    assert triage(inputs, POLICY, now=NOW, freshness_s=300).priority_names() == ["NR"]


@pytest.mark.parametrize(
    ("flags", "priority", "rule", "text"),
    [
        ({"cardiac_arrest": True}, "P0", "bilan:cardiac_arrest", "bilan: cardiac arrest"),
        (
            {"fast_positive": True},
            "P1",
            "bilan:fast_positive",
            "bilan: FAST positive (stroke signs)",
        ),
        ({"chest_pain": True}, "P1", "bilan:chest_pain", "bilan: chest pain"),
        ({"fall": True}, "P2", "bilan:any_bilan", "bilan: fall"),
        ({"pain": 6}, "P2", "bilan:any_bilan", "bilan: pain"),
        ({}, "P2", "bilan:any_bilan", "bilan received"),
    ],
)
def test_bilan_flags(flags: dict[str, object], priority: str, rule: str, text: str) -> None:
    got, reasons, fired = one(bilan=bilan_flags(**flags))  # type: ignore[arg-type]
    assert got == priority
    assert rule in fired
    assert text in reasons


def test_bilan_without_vital_signs_is_not_nr() -> None:
    assert one(MISSING, bilan=bilan_flags(fall=True))[0] == "P2"


def test_new_confusion_in_the_bilan_scores_as_c() -> None:
    priority, reasons, fired = one(bilan=bilan_flags(new_confusion=True))
    assert priority == "P1"
    assert "single_parameter" in fired
    assert "consciousness C (new confusion) scores 3" in reasons
    # A worse observed level is kept.
    assert one({"consciousness": "U"}, bilan=bilan_flags(new_confusion=True))[0] == "P0"


def sev(**fields: object):
    return implant_severity(ImplantStatus(**fields), POLICY)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "condition", "level"),
    [
        ({"alerts": {ImplantAlertName.SHOCK_UNSUCCESSFUL}}, ImplantCondition.SHOCK_UNSUCCESSFUL, 0),
        (
            {"alerts": {ImplantAlertName.THERAPIES_EXHAUSTED}},
            ImplantCondition.THERAPIES_EXHAUSTED,
            0,
        ),
        ({"alerts": {ImplantAlertName.VT_VF_STORM}}, ImplantCondition.ELECTRICAL_STORM, 0),
        ({"vt_vf_episodes_24h": 3}, ImplantCondition.ELECTRICAL_STORM, 0),
        ({"shocks_24h": 3}, ImplantCondition.ELECTRICAL_STORM, 0),
        ({"shocks_24h": 1}, ImplantCondition.SHOCK_DELIVERED, 1),
        ({"alerts": {ImplantAlertName.SHOCK_DELIVERED}}, ImplantCondition.SHOCK_DELIVERED, 1),
        ({"last_vt_vf_age_s": 1800}, ImplantCondition.VT_VF_RECENT, 1),
        ({"alerts": {ImplantAlertName.VT_VF_EPISODE}}, ImplantCondition.VT_VF_RECENT, 1),
        (
            {"alerts": {ImplantAlertName.VT_VF_EPISODE}, "last_vt_vf_age_s": 3 * 3600},
            ImplantCondition.OTHER_IMPLANT_ALERT,
            2,
        ),
        ({"battery": "EOS"}, ImplantCondition.BATTERY_EOS, 1),
        ({"pacing_impedance_ohm": (2400.0,)}, ImplantCondition.LEAD_IMPEDANCE_OUT_OF_RANGE, 1),
        ({"pacing_impedance_ohm": (150.0,)}, ImplantCondition.LEAD_IMPEDANCE_OUT_OF_RANGE, 1),
        ({"high_voltage_impedance_ohm": (15.0,)}, ImplantCondition.LEAD_IMPEDANCE_OUT_OF_RANGE, 1),
        ({"high_voltage_impedance_ohm": (250.0,)}, ImplantCondition.LEAD_IMPEDANCE_OUT_OF_RANGE, 1),
        ({"battery": "RRT"}, ImplantCondition.BATTERY_RRT, 2),
        ({"battery": "ERI"}, ImplantCondition.BATTERY_RRT, 2),
        ({"atp_24h": 2}, ImplantCondition.ATP_DELIVERED, 2),
        (
            {"alerts": {ImplantAlertName.AF_BURDEN_OVER_THRESHOLD}},
            ImplantCondition.AF_BURDEN_OVER_THRESHOLD,
            2,
        ),
        (
            {"alerts": {ImplantAlertName.TRANSMITTER_DISCONNECTED}},
            ImplantCondition.TRANSMITTER_DISCONNECTED,
            2,
        ),
    ],
)
def test_implant_severity(
    status: dict[str, object], condition: ImplantCondition, level: int
) -> None:
    severity = sev(**status)
    assert condition in severity.conditions
    assert severity.level == level
    priority, reasons, fired = one(implant=severity.bits)
    assert priority == f"P{level}"
    assert f"implant:{condition.value}" in fired
    assert any(r.startswith("implant: ") for r in reasons)


def test_implant_values_in_range_raise_nothing() -> None:
    severity = sev(
        battery="OK",
        pacing_impedance_ohm=(200.0, 650.0, 2000.0),
        high_voltage_impedance_ohm=(20.0, 70.0, 200.0),
        vt_vf_episodes_24h=2,
        last_vt_vf_age_s=None,
    )
    assert severity.conditions == () and severity.level is None and severity.bits == 0


def test_implant_alert_with_no_vital_sign_is_not_nr() -> None:
    assert one(MISSING, implant=sev(shocks_24h=1).bits)[0] == "P1"


def test_most_urgent_source_wins_and_every_source_is_a_reason() -> None:
    priority, reasons, fired = one(
        {"temperature": 38.5}, implant=sev(battery="RRT").bits, bilan=bilan_flags(fall=True)
    )
    assert priority == "P2"
    assert {"news2:P2", "implant:battery_rrt", "bilan:any_bilan"} <= fired
    assert reasons[0] == "NEWS2 1 (low)"


def history_with(news2_then: int, minutes_ago: float) -> News2History:
    history = News2History(1)
    history.record(NOW - minutes_ago * 60, np.array([news2_then]))
    return history


def test_deterioration_escalates_p2_to_p1() -> None:
    row = {"resp_rate": 22, "heart_rate": 95, "temperature": 38.5}  # NEWS2 4: P2
    inputs = TriageInputs(vitals=vitals(row))
    assert triage(inputs, POLICY, now=NOW).priority_names() == ["P2"]
    result = triage(inputs, POLICY, now=NOW, history=history_with(1, 40))
    assert result.priority_names() == ["P1"]
    assert int(result.rise[0]) == 3 and bool(result.deteriorating[0])
    assert "NEWS2 risen by 3 within 60 min" in result.reasons(0)
    assert "deterioration" in result.fired(0)
    # A rise of 2 does not; neither does a low value older than the hour.
    assert triage(inputs, POLICY, now=NOW, history=history_with(2, 40)).priority_names() == ["P2"]
    assert triage(inputs, POLICY, now=NOW, history=history_with(1, 70)).priority_names() == ["P2"]


def test_history_records_each_minute_and_keeps_the_window() -> None:
    history = News2History(2)
    for minute, (a, b) in enumerate([(1, 5), (3, 4), (2, 2), (6, 0)]):
        history.record(NOW + minute * 60, np.array([a, b]))
    assert history.lowest(NOW + 3 * 60).tolist() == [1, 0]
    assert history.rise(NOW + 3 * 60, np.array([6, 0])).tolist() == [5, 0]
    assert [v for _, v in history.series(NOW + 3 * 60, 0)] == [1, 3, 2, 6]
    # Two hours later the old minutes are outside the window.
    assert history.lowest(NOW + 2 * 3600).tolist() == [-1, -1]
    assert history.rise(NOW + 2 * 3600, np.array([6, 0])).tolist() == [0, 0]
    history.clear(np.array([0]))
    assert history.lowest(NOW + 3 * 60).tolist() == [-1, 0]
    history.grow(3)
    assert history.capacity == 3
    assert history.lowest(NOW + 3 * 60).tolist() == [-1, 0, -1]


def test_history_sample_recorded_out_of_order_does_not_evict_a_newer_minute() -> None:
    # Regression: 29 and 90 minutes ago share a ring slot (61 one-minute slots); the older
    # sample recorded second used to overwrite the newer one, hiding a rise of 3.
    history = News2History(1)
    history.record(1_800_000_000 - 1741, np.array([0]))
    history.record(1_800_000_000 - 5401, np.array([0]))
    assert history.lowest(1_800_000_000).tolist() == [0]
    assert history.rise(1_800_000_000, np.array([3])).tolist() == [3]


def test_triage_records_into_the_history_after_measuring_the_rise() -> None:
    history = News2History(1)
    low = TriageInputs(vitals=vitals({}))
    high = TriageInputs(vitals=vitals({"resp_rate": 22, "heart_rate": 95, "temperature": 38.5}))
    assert triage(low, POLICY, now=NOW, history=history).priority_names() == ["P3"]
    result = triage(high, POLICY, now=NOW + 600, history=history)
    assert result.priority_names() == ["P1"] and int(result.rise[0]) == 4


def test_input_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="observed_at"):
        TriageInputs(vitals=vitals({}), observed_at=np.zeros((3, 1)))
    with pytest.raises(ValueError, match="implant"):
        TriageInputs(vitals=vitals({}), implant=np.zeros(2, np.uint16))


def test_vitals_arrays_refuse_bad_columns() -> None:
    good = vitals({})
    with pytest.raises(TypeError, match="uint8"):
        VitalsArrays(*(a.astype(np.float32) if i == 0 else a for i, a in enumerate(good.arrays())))
    with pytest.raises(ValueError, match="negative"):
        vitals({"heart_rate": -1})
    with pytest.raises(ValueError, match="consciousness"):
        vitals({"consciousness": "X"})
    with pytest.raises(ValueError, match="on_oxygen"):
        vitals({"on_oxygen": 2})
