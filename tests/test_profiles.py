"""Device profiles: every shipped one loads and is usable; bad ones say file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import serial

import hardware
from hardware import DeviceProfile, ProfileError, list_profiles, load_profile, load_profile_file
from protocols import CODEC_NAMES, get_codec
from protocols.vocab import LOINC, SERIAL_FORMATS, VALUE_KEYS

PROFILES = list_profiles()

GOOD = """\
model = "Test oximeter"
manufacturer = "ACME"
kind = "pulse_oximeter"
format = "nonin-df8"
sampling_period_s = 1.0
mdc = [150456, 149530]

[port]
baudrate = 9600
bytesize = 8
parity = "N"
stopbits = 1
timeout = 1.0

[ranges]
spo2_pct = { min = 0, max = 100 }
pulse_bpm = { min = 18, max = 300 }
"""


def test_profile_formats_are_the_codec_names() -> None:
    """The models' format vocabulary and the codec registry must not drift apart."""
    assert tuple(SERIAL_FORMATS) == tuple(CODEC_NAMES)
    assert set(CODEC_NAMES) == {"sbf1", "masimo-ascii1", "nonin-df8", "contec-cms50d"}


def test_the_required_models_are_shipped() -> None:
    required = {
        "masimo-rad97",
        "contec-cms50d-plus",
        "sbf1-plx-spot-check",
        "sbf1-plx-continuous",
        "sbf1-bp-cuff",
        "sbf1-thermometer",
        "sbf1-ecg-patch",
        "sbf1-glucometer",
        "sbf1-scale",
    }
    assert required <= set(PROFILES)
    assert {"nonin-3150", "nonin-7500"} & set(PROFILES)


@pytest.mark.parametrize("name", PROFILES)
def test_every_shipped_profile_loads(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    assert profile.format in CODEC_NAMES
    get_codec(profile.format)  # a codec exists for it
    assert profile.ranges and profile.mdc
    for key in profile.ranges:
        assert key in VALUE_KEYS


@pytest.mark.parametrize("name", PROFILES)
def test_serial_kwargs_are_accepted_by_pyserial(name: str) -> None:
    kwargs = load_profile(name).serial_kwargs()
    port = serial.serial_for_url("loop://", **kwargs)
    try:
        assert port.baudrate == kwargs["baudrate"]
        assert port.parity == kwargs["parity"]
        assert port.bytesize == kwargs["bytesize"]
        assert port.stopbits == kwargs["stopbits"]
    finally:
        port.close()


def test_port_settings_from_the_contract() -> None:
    assert load_profile("masimo-rad97").port.framing == "8N1"
    assert load_profile("masimo-rad97").port.baudrate == 9600
    assert load_profile("masimo-rad97").format == "masimo-ascii1"
    nonin = load_profile("nonin-7500")
    assert (nonin.format, nonin.port.baudrate, nonin.port.framing) == ("nonin-df8", 9600, "8N1")
    contec = load_profile("contec-cms50d-plus")
    assert (contec.format, contec.port.baudrate, contec.port.framing) == (
        "contec-cms50d",
        19200,
        "8O1",
    )
    for name in PROFILES:
        p = load_profile(name)
        if p.format == "sbf1":
            assert (p.port.baudrate, p.port.framing) == (115200, "8N1")
            assert p.characteristic is not None


def test_sbf1_profiles_cover_each_characteristic() -> None:
    chars = {load_profile(n).characteristic for n in PROFILES if load_profile(n).format == "sbf1"}
    assert chars == {0x2A5E, 0x2A5F, 0x2A35, 0x2A1C, 0x2A37, 0x2A18, 0x2A9D}


@pytest.mark.parametrize("name", PROFILES)
def test_device_ranges_lie_inside_plausible_ranges(name: str) -> None:
    for key, rng in load_profile(name).ranges.items():
        loinc = VALUE_KEYS[key].loinc
        if loinc:
            assert LOINC[loinc].low <= rng.min < rng.max <= LOINC[loinc].high  # type: ignore[operator]


def test_in_range() -> None:
    p = load_profile("masimo-rad97")
    assert p.in_range("spo2_pct", 97) and not p.in_range("spo2_pct", 101)
    assert not p.in_range("pulse_bpm", 10)
    assert p.in_range("glucose_mg_dl", 9999)  # no range for the key: not this device's concern


def test_load_by_name_errors() -> None:
    with pytest.raises(ProfileError, match=r"known: .*masimo-rad97"):
        load_profile("no-such-device")
    for bad in ("../pyproject", "Masimo", "a/b", ""):
        with pytest.raises(ProfileError):
            load_profile(bad)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_profile_file(tmp_path: Path) -> None:
    p = load_profile_file(write(tmp_path, "test-ox", GOOD))
    assert isinstance(p, DeviceProfile) and p.name == "test-ox"
    assert p.serial_kwargs()["baudrate"] == 9600


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (("baudrate = 9600", "baudrate = 9601"), "port.baudrate", ""),
        (('parity = "N"', 'parity = "X"'), "port.parity", ""),
        (("stopbits = 1", "stopbits = 3"), "port.stopbits", "1, 1.5 or 2"),
        (("bytesize = 8", "bytesize = 9"), "port.bytesize", ""),
        (('format = "nonin-df8"', 'format = "nonin-df7"'), "format", ""),
        (('kind = "pulse_oximeter"', 'kind = "toaster"'), "kind", ""),
        (("spo2_pct = {", "sp02_pct = {"), "ranges.sp02_pct", ""),
        (("max = 100 }", "max = 0 }"), "ranges.spo2_pct", "below max"),
        (("max = 300 }", "max = 400 }"), "(profile)", "plausible"),
        (("mdc = [150456, 149530]", "mdc = [1234]"), "(profile)", "unknown IEEE"),
        (("sampling_period_s = 1.0", "sampling_period_s = 0"), "sampling_period_s", ""),
        (("timeout = 1.0", 'timeout = "1s"'), "port.timeout", ""),
        (('model = "Test oximeter"', 'model = "Test oximeter"\ncolour = "red"'), "colour", ""),
        (('format = "nonin-df8"', 'format = "sbf1"'), "(profile)", "characteristic"),
    ],
)
def test_bad_profile_names_file_and_field(
    tmp_path: Path, change: tuple[str, str], field: str, message: str
) -> None:
    assert change[0] in GOOD
    path = write(tmp_path, "bad", GOOD.replace(change[0], change[1], 1))
    with pytest.raises(ProfileError) as exc:
        load_profile_file(path)
    text = str(exc.value)
    assert str(path) in text
    assert f"field {field}" in text
    assert message in text


def test_toml_syntax_and_name_errors(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="not valid TOML"):
        load_profile_file(write(tmp_path, "broken", GOOD + "\n[port\n"))
    with pytest.raises(ProfileError, match="field name"):
        load_profile_file(write(tmp_path, "one-name", 'name = "other-name"\n' + GOOD))
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile_file(tmp_path / "missing.toml")


def test_non_sbf1_profile_cannot_claim_a_characteristic(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="characteristic"):
        load_profile_file(write(tmp_path, "x", "characteristic = 0x2A5E\n" + GOOD))


def test_public_surface() -> None:
    assert set(hardware.__all__) >= {
        "load_profile",
        "list_profiles",
        "DeviceProfile",
        "ProfileError",
    }
