"""Patient models: determinism, scripted courses, correlations, device accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.physiology import (
    LIMITS,
    ArtefactProcess,
    ArtefactRates,
    Baseline,
    Channel,
    ChannelSpec,
    Course,
    NoiseSource,
    PatientModel,
    Ramp,
    Window,
    atrial_fibrillation,
    fall,
    hypoxaemia,
    measure,
    quantise,
    ramp,
    sepsis,
    shock_storm,
)


def model(seed: int = 1, course: Course | None = None, **means: float) -> PatientModel:
    base = Baseline.draw(np.random.default_rng(seed))
    if means:
        base = base.with_means(**means)
    return PatientModel(base, course, np.random.default_rng(seed + 1000))


def test_same_seed_same_values_and_query_order_does_not_matter() -> None:
    a, b = model(7), model(7)
    times = [0.0, 1.5, 60.0, 300.0, 1200.0, 3600.0]
    first = [a.at(t) for t in times]
    # b is asked at many more instants in between: the values at `times` must not change.
    for t in range(0, 3601, 7):
        b.at(float(t))
    c = model(7)
    assert [c.at(t) for t in times] == first
    assert model(8).at(60.0) != first[2]


def test_spontaneous_variability_has_the_baseline_sd() -> None:
    base = Baseline().with_means(heart_rate=70.0)
    m = PatientModel(base, None, np.random.default_rng(3))
    hr = np.array([m.at(float(t)).heart_rate for t in range(0, 6 * 3600, 5)])
    # OU with tau 120 s sampled over 6 h: mean and SD close to the declared ones.
    assert abs(hr.mean() - 70.0) < 1.5
    assert 3.0 < hr.std() < 5.0
    # ...and autocorrelated: consecutive 5 s samples are close, far apart ones are not.
    lag1 = np.corrcoef(hr[:-1], hr[1:])[0, 1]
    lag_far = np.corrcoef(hr[:-200], hr[200:])[0, 1]
    assert lag1 > 0.9
    assert abs(lag_far) < 0.3


def test_hypoxaemia_reaches_its_target_at_its_rate_and_drives_heart_rate_up() -> None:
    course = hypoxaemia(at=120.0, rate_per_min=1.0, to=84.0)
    m = model(2, course, spo2=96.0, heart_rate=72.0)
    assert m.mean_at(Channel.SPO2, 100.0) == pytest.approx(96.0)
    assert m.mean_at(Channel.SPO2, 120.0 + 6 * 60) == pytest.approx(90.0)
    assert m.mean_at(Channel.SPO2, 120.0 + 60 * 60) == pytest.approx(84.0)

    def avg(attr: str, t0: float) -> float:
        return float(np.mean([getattr(m.at(t0 + k), attr) for k in range(0, 120, 2)]))

    before_hr, after_hr = avg("heart_rate", 0.0), avg("heart_rate", 1200.0)
    before_spo2, after_spo2 = avg("spo2", 0.0), avg("spo2", 1200.0)
    assert after_spo2 < before_spo2 - 8
    # 12 points of desaturation × 1.5 bpm per point of coupling ≈ +18 bpm.
    assert after_hr > before_hr + 10


def test_sepsis_gives_the_qsofa_picture_with_new_confusion() -> None:
    m = model(4, sepsis(at=0.0, over_s=1800.0), systolic=130.0, resp_rate=16.0)
    v = m.at(2000.0)
    assert v.resp_rate >= 22
    assert v.systolic <= 100
    assert v.temperature > 38.0
    assert v.consciousness == "C"
    assert m.at(100.0).consciousness == "A"


def test_af_and_shock_storm_set_rhythms_and_a_fall_shakes_sensors() -> None:
    m = model(5, atrial_fibrillation(600.0) + shock_storm(1000.0, episodes=2, interval_s=100.0))
    assert m.at(500.0).rhythm == "SR"
    assert m.at(700.0).rhythm == "AF"
    assert m.at(1005.0).rhythm == "VT"
    assert m.at(1105.0).rhythm == "VF"
    assert m.at(1105.0).perfusion_index == pytest.approx(0.02)
    assert m.at(1150.0).rhythm == "AF"
    f = model(6, fall(50.0))
    assert "motion" in f.at(60.0).artefacts
    assert not f.at(10.0).artefacts


@given(
    target=st.floats(-500, 1000, allow_nan=False),
    rate=st.floats(0.01, 100.0),
    vital=st.sampled_from(["heart_rate", "spo2", "systolic", "temperature", "glucose"]),
)
def test_values_always_stay_within_physiological_limits(
    target: float, rate: float, vital: str
) -> None:
    m = model(9, ramp(vital, 0.0, to=target, rate_per_min=rate))
    for t in (0.0, 30.0, 600.0, 7200.0):
        v = m.at(t)
        for ch in Channel:
            lo, hi = LIMITS[ch]
            value = getattr(v, ch.name.lower())
            assert lo <= value <= hi, (ch, value)
        assert v.diastolic <= v.systolic - 15.0


def test_later_ramps_take_over_from_where_earlier_ones_got() -> None:
    m = model(
        1, ramp("spo2", 0.0, to=80.0, over_s=100.0) + ramp("spo2", 50.0, delta=0.0, over_s=50.0)
    )
    resting = float(m.baseline.mean[Channel.SPO2])
    halfway = resting + (80.0 - resting) / 2
    assert m.mean_at(Channel.SPO2, 50.0) == pytest.approx(halfway)
    assert m.mean_at(Channel.SPO2, 100.0) == pytest.approx(resting)


def test_ramp_validation() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Ramp(Channel.SPO2, 0.0)
    with pytest.raises(ValueError, match="not both"):
        Ramp(Channel.SPO2, 0.0, to=90.0, rate_per_s=1.0, duration_s=10.0)
    with pytest.raises(ValueError, match="unknown vital"):
        ramp("pulse", 0.0, to=1.0)


@given(
    value=st.floats(-1000, 1000, allow_nan=False), res=st.sampled_from([1.0, 0.1, 0.01, 0.005, 0.5])
)
def test_quantise_rounds_to_the_nearest_step(value: float, res: float) -> None:
    q = quantise(value, res)
    assert abs(q - value) <= res / 2 + 1e-9
    steps = q / res
    assert math.isclose(steps, round(steps), abs_tol=1e-6)


def test_measure_adds_device_noise_within_its_range() -> None:
    spec = ChannelSpec(noise_sd=2.0, resolution=1.0, lo=50.0, hi=100.0)
    noise = NoiseSource(np.random.default_rng(0))
    readings = np.array([measure(97.0, spec, noise) for _ in range(4000)])
    assert readings.max() == 100.0  # clipped, not 103
    assert set(np.unique(readings)) <= set(np.arange(50.0, 101.0))
    assert 1.3 < readings[readings < 100].std() < 2.5


def test_artefact_episodes_are_seeded_and_follow_their_rates() -> None:
    rates = ArtefactRates(
        motion_per_h=6.0, motion_s=20.0, low_perfusion_per_h=0, finger_out_per_h=0
    )
    a = ArtefactProcess(rates, np.random.default_rng(11))
    b = ArtefactProcess(rates, np.random.default_rng(11))
    sa = [a.active(float(t)) for t in range(0, 20 * 3600, 10)]
    assert sa == [b.active(float(t)) for t in range(0, 20 * 3600, 10)]
    fraction = sum("motion" in s for s in sa) / len(sa)
    # 6 episodes/h × ~21 s ≈ 3.5 % of the time.
    assert 0.01 < fraction < 0.08
    assert not ArtefactProcess(ArtefactRates.none(), np.random.default_rng(1)).active(100.0)


def test_window_semantics() -> None:
    w = Window(10.0, 20.0, "motion")
    assert w.contains(10.0) and not w.contains(20.0)
