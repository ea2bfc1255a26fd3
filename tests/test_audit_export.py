"""``samu audit export``: FHIR R4 AuditEvent JSON lines, and the export is itself audited."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

from console.records import AuditEvent, Store, write_fhir_lines

SAMU = str(Path(sys.executable).parent / "samu")


def test_fhir_lines_carry_the_event_and_its_hashes(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        store.append_audit(
            AuditEvent(
                actor="user:dr",
                role="regulateur",
                terminal="r1",
                action="patient.read",
                object="patient:42",
                purpose="break-glass: unconscious caller",
                outcome="denied",
                detail={"case": "c-1"},
            )
        )
        out = io.StringIO()
        count, first, last = write_fhir_lines(store.conn, out, store.log_id, since=2)
        rows = {
            r[0]: (bytes(r[1]), bytes(r[2]))
            for r in store.conn.execute("SELECT seq, canonical, chain_hash FROM audit_events")
        }
    assert (count, first, last) == (1, 2, 2)
    resource = json.loads(out.getvalue())
    assert resource["resourceType"] == "AuditEvent"
    assert resource["type"]["code"] == "110110"  # patient record
    assert resource["subtype"][0]["code"] == "patient.read"
    assert resource["action"] == "R" and resource["outcome"] == "4"
    assert resource["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"
    assert resource["agent"][0]["who"]["identifier"]["value"] == "user:dr"
    assert resource["entity"][0]["what"]["identifier"]["value"] == "patient:42"
    chain = {e["url"]: e for e in resource["extension"][0]["extension"]}
    canonical, chain_hash = rows[2]
    assert chain["leafHash"]["valueString"] == hashlib.sha256(b"\x00" + canonical).hexdigest()
    assert chain["chainHash"]["valueString"] == chain_hash.hex()
    assert resource["recorded"] == json.loads(canonical)["time"]


def test_cli_export_is_audited(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with Store.open(db) as store:
        store.append_audit_many(
            [
                AuditEvent(
                    actor="a", role="arm", terminal="t", action="case.create", object=f"case:{i}"
                )
                for i in range(5)
            ]
        )
    out = tmp_path / "export.ndjson"
    done = subprocess.run(
        [SAMU, "audit", "export", "--db", str(db), "--out", str(out), "--since", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    lines = out.read_text().splitlines()
    assert len(lines) == 5 and all(
        json.loads(line)["resourceType"] == "AuditEvent" for line in lines
    )
    with Store.open(db, readonly=True) as store:
        action, actor, detail = store.conn.execute(
            "SELECT action, actor, detail FROM audit_events ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    assert action == "audit.export" and actor.startswith("local:")
    assert json.loads(detail)["count"] == 5
    bad = subprocess.run(
        [SAMU, "audit", "export", "--db", str(db), "--since", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2
