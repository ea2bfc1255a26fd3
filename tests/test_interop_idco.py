"""``samu idco import`` on what ``samu sim --idco-out`` writes (HL7 v2 ORU^R01, IHE PCD-09).

The messages take the MQTT implant path (same ingest, triage and cases); bad ones are
quarantined with their reason while the rest of the file goes on (exit 1); importing the
same file twice adds nothing. No reference files needed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import hl7
import pytest

from console.cli import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, main
from console.interop import IdcoError, parse_idco, split_messages
from protocols import ImplantBody
from protocols.idco import encode_idco, mllp_frame


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict], str]:  # type: ignore[type-arg]
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, [json.loads(x) for x in out.splitlines() if x.startswith("{")], err


@pytest.fixture(scope="module")
def storm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    """The ICD storm's transmitters enrolled, and the vendor's HL7 file (plain and MLLP)."""
    tmp = tmp_path_factory.mktemp("idco")
    db, keys = tmp / "samu.db", tmp / "keys.json"
    assert (
        main(
            [
                "devices",
                "enrol",
                "--db",
                str(db),
                "--scenario",
                "icd-shock-storm",
                "--keys-out",
                str(keys),
            ]
        )
        == EXIT_OK
    )
    plain, framed = tmp / "storm.hl7", tmp / "storm.mllp"
    for path, extra in ((plain, []), (framed, ["--mllp"])):
        assert (
            main(
                [
                    "sim",
                    "--scenario",
                    "icd-shock-storm",
                    "--idco-out",
                    str(path),
                    "--duration",
                    "7200",
                    "--keys",
                    str(keys),
                    *extra,
                ]
            )
            == EXIT_OK
        )
    yield db, plain, framed


def test_sim_output_is_deterministic_hl7(storm, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    _, plain, framed = storm
    capsys.readouterr()
    messages = split_messages(plain.read_bytes())
    assert len(messages) >= 3
    parsed = hl7.parse(messages[0].decode())
    assert str(parsed.segment("MSH")(9)) == "ORU^R01^ORU_R01"
    assert "IHE_PCD_009" in str(parsed.segment("MSH")(21))
    assert split_messages(framed.read_bytes()) == messages
    again = tmp_path / "again.hl7"
    keys = plain.parent / "keys.json"
    assert (
        main(
            [
                "sim",
                "--scenario",
                "icd-shock-storm",
                "--idco-out",
                str(again),
                "--duration",
                "7200",
                "--keys",
                str(keys),
            ]
        )
        == EXIT_OK
    )
    assert again.read_bytes() == plain.read_bytes()


def test_import_opens_the_case_like_mqtt_and_is_idempotent(storm, capsys) -> None:  # type: ignore[no-untyped-def]
    db, _, framed = storm
    code, lines, err = run(capsys, "idco", "import", str(framed), "--db", str(db))
    assert code == EXIT_OK, err
    assert all(set(x) >= {"control_id", "device", "alerts", "status"} for x in lines)
    assert {x["status"] for x in lines} == {"accepted"}
    alerted = [x for x in lines if x["alerts"]]
    assert alerted and any("vt_vf_storm" in x["alerts"] for x in alerted)
    case_ids = {x["case_id"] for x in alerted}
    assert len(case_ids) == 1 and None not in case_ids
    code, cases, _ = run(capsys, "records", "cases", "--db", str(db), "--json")
    (case,) = cases
    assert case["sources"] == ["implant"] and case["suggested_priority"] == "P0"
    assert "vt_vf_storm" in case["implant_alerts"]
    code, lines, _ = run(capsys, "idco", "import", str(framed), "--db", str(db))
    assert code == EXIT_OK and {x["status"] for x in lines} == {"duplicate"}


def _body() -> ImplantBody:
    return ImplantBody.model_validate(
        {
            "v": 1,
            "device": {"type": 753666, "model": "VR|200^x", "serial": "S-1"},
            "session": {"type": 754052, "time": "2026-11-23T17:00:00+01:00"},
            "observations": [
                {"term": "MDC_IDC_MSMT_BATTERY_STATUS", "value": "RRT"},
                {"term": "MDC_IDC_MSMT_LEADCHNL_RV_IMPEDANCE_VALUE", "value": 560, "unit": "Ohm"},
                {"term": "MDC_IDC_STAT_ATAF_BURDEN_PERCENT", "value": 12.5, "unit": "%"},
            ],
            "episodes": [
                {
                    "id": "e1",
                    "type": "VF",
                    "time": "2026-11-23T16:55:00+01:00",
                    "duration_s": 12,
                    "therapy": "shock",
                    "shocks": 1,
                    "result": "terminated_by_therapy",
                }
            ],
            "alerts": [
                {"code": "battery_rrt", "time": "2026-11-23T17:00:00+01:00"},
                {
                    "code": "lead_impedance_out_of_range",
                    "time": "2026-11-23T17:00:00+01:00",
                    "lead": "HV",
                    "ohms": 250,
                    "detail": "HV & coil|check",
                },
            ],
        }
    )


def _message(control: str = "C1", **replace: str) -> str:
    text = encode_idco(
        _body(),
        site="ehpad-a",
        device="icd-1",
        control_id=control,
        sent=datetime(2026, 11, 23, 16, 1, tzinfo=UTC),
    )
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def test_encode_parse_round_trip() -> None:
    parsed = parse_idco(_message().encode())
    assert (parsed.site, parsed.device, parsed.control_id) == ("ehpad-a", "icd-1", "C1")
    assert parsed.body == _body()


@pytest.mark.parametrize(
    ("replace", "reason"),
    [
        ({"560|Ohm^Ohm^UCUM": "560|kOhm^kOhm^UCUM"}, "unit"),
        ({"12.5|%^%^UCUM": "12.5|1^1^UCUM"}, "unit"),
        ({"560|Ohm^Ohm^UCUM": "56000|Ohm^Ohm^UCUM"}, "range"),
        (
            {"722433^MDC_IDC_MSMT_LEADCHNL_RV_IMPEDANCE_VALUE": "799999^MDC_IDC_MSMT_X"},
            "unknown_code",
        ),
        ({"^MDC_IDC_DEV_MODEL^MDC": "^MDC_IDC_DEV_COLOUR^MDC"}, "unknown_code"),
        ({"ORU^R01^ORU_R01": "ADT^A01^ADT_A01"}, "hl7"),
        ({"754052^MDC_IDC_ENUM": "999999^MDC_IDC_ENUM"}, "schema"),
    ],
)
def test_bad_messages_have_their_reason(replace: dict[str, str], reason: str) -> None:
    with pytest.raises(IdcoError) as caught:
        parse_idco(_message(**replace).encode())
    assert caught.value.reason == reason


def test_a_bad_file_quarantines_the_bad_and_keeps_the_good(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "samu.db"
    key = tmp_path / "icd.key"
    assert (
        main(
            [
                "devices",
                "enrol",
                "--db",
                str(db),
                "--site",
                "ehpad-a",
                "--device",
                "icd-1",
                "--kind",
                "icd",
                "--patient",
                "res-9",
                "--key-out",
                str(key),
            ]
        )
        == EXIT_OK
    )
    wrong_unit = _message("C2", **{"560|Ohm^Ohm^UCUM": "560|kOhm^kOhm^UCUM"})
    unknown = _message("C3", **{"icd-1^ehpad-a": "icd-9^ehpad-a"})
    good = _message("C4")
    truncated = _message("C5")[:700]
    data = b"".join(mllp_frame(m) for m in (_message("C1"), wrong_unit, unknown, good))
    path = tmp_path / "mixed.hl7"
    path.write_bytes(data + truncated.encode())
    capsys.readouterr()
    code, lines, _ = run(capsys, "idco", "import", str(path), "--db", str(db))
    assert code == EXIT_CHECK_FAILED
    got = [(x["control_id"], x["status"], x.get("reason")) for x in lines]
    assert got == [
        ("C1", "accepted", None),
        ("C2", "quarantined", "unit"),
        ("C3", "quarantined", "unknown_device"),
        ("C4", "accepted", None),
        ("C5", "quarantined", "hl7"),
    ]
    assert "truncated" in lines[-1]["detail"]
    code, rows, _ = run(capsys, "records", "quarantine", "--db", str(db), "--json")
    assert sorted(r["reason"] for r in rows) == ["hl7", "unit", "unknown_device"]
    conn = sqlite3.connect(db)
    (alerts,) = conn.execute("SELECT implant_alerts FROM cases").fetchone()
    assert json.loads(alerts) == ["battery_rrt", "lead_impedance_out_of_range"]


def test_idco_import_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "idco", "import", str(tmp_path / "none.hl7"), "--db", str(tmp_path / "x.db")
    )
    assert code == EXIT_USAGE and "no such file" in err and not (tmp_path / "x.db").exists()


def test_sim_idco_out_refuses_non_implants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.hl7"
    code = main(["sim", "--site", "s", "--devices", "spo2:masimo-ascii1", "--idco-out", str(out)])
    assert code == EXIT_USAGE and not out.exists()
    assert "implant" in capsys.readouterr().err
    code = main(
        [
            "sim",
            "--site",
            "s",
            "--devices",
            "icd:mqtt",
            "--idco-out",
            str(out),
            "--duration",
            "7200",
            "--seed",
            "1",
        ]
    )
    assert code == EXIT_OK
    assert len(split_messages(out.read_bytes())) == 2  # scheduled sessions at 30 s and 1 h 30 s
