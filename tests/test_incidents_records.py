"""Incidents: status workflow, append-only follow-up, every change and read audited."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from console.cli import main
from console.records import (
    AuditContext,
    IncidentError,
    Store,
    get_incident,
    list_incidents,
    open_incident,
    update_incident,
    verify_trail,
)

SAMU = str(Path(sys.executable).parent / "samu")
NURSE = AuditContext(actor="user:auditrice", role="auditeur", terminal="audit-01")


def actions(store: Store) -> list[tuple[str, str, dict]]:
    rows = store.conn.execute("SELECT action, object, detail FROM audit_events ORDER BY seq")
    return [(a, o, json.loads(d)) for a, o, d in rows][1:]  # skip the key registration


def test_workflow_and_audit(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        incident = open_incident(
            store,
            NURSE,
            kind="security",
            category="failed-login-burst",
            title="12 failures on regul-03",
            severity="high",
            object="terminal:regul-03",
            note="seen at 03:12",
        )
        assert (incident.status, len(incident.notes)) == ("open", 1)
        update_incident(store, NURSE, incident.id, status="acknowledged")
        with pytest.raises(IncidentError, match="say why"):
            update_incident(store, NURSE, incident.id, status="closed")
        closed = update_incident(
            store,
            NURSE,
            incident.id,
            status="closed",
            note="user locked out by back-off; password reset",
        )
        assert closed.status == "closed"
        assert [(n.status_from, n.status_to) for n in closed.notes] == [
            (None, "open"),
            ("open", "acknowledged"),
            ("acknowledged", "closed"),
        ]
        with pytest.raises(IncidentError, match="cannot go from closed to acknowledged"):
            update_incident(store, NURSE, incident.id, status="acknowledged")
        with pytest.raises(IncidentError, match="no incident 99"):
            get_incident(store, NURSE, 99)
        reopened = update_incident(store, NURSE, incident.id, status="open", note="again at 04:00")
        assert reopened.status == "open"
        assert [i.id for i in list_incidents(store, NURSE, status="open")] == [incident.id]
        assert list_incidents(store, NURSE, kind="technical") == []
        got = actions(store)
        assert [a for a, _, _ in got] == [
            "incident.open",
            "incident.update",
            "incident.update",
            "incident.update",
            "incident.list",
            "incident.list",
        ]
        assert all(o in (f"incident:{incident.id}", "incidents") for _, o, _ in got)
        assert got[2][2]["status_to"] == "closed"
        trail = b"".join(
            bytes(r[0]) for r in store.conn.execute("SELECT canonical FROM audit_events")
        )
        assert b"regul-03 " not in trail and b"password reset" not in trail  # free text stays out
        with pytest.raises(sqlite3.IntegrityError, match="append-only"), store.transaction() as c:
            c.execute("UPDATE incident_notes SET note = 'nothing happened'")
    assert verify_trail(tmp_path / "s.db").exit_code == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "gossip"}, "kind must be"),
        ({"category": "Not A Slug"}, "category"),
        ({"title": "   "}, "title"),
        ({"severity": "apocalyptic"}, "severity"),
    ],
)
def test_bad_incidents_are_refused(tmp_path: Path, kwargs: dict, message: str) -> None:
    fields = {"kind": "technical", "category": "broker-loss", "title": "broker down", **kwargs}
    with Store.open(tmp_path / "s.db") as store:
        with pytest.raises(IncidentError, match=message):
            open_incident(store, NURSE, **fields)  # type: ignore[arg-type]
        assert actions(store) == []


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "s.db")
    Store.open(db).close()  # incidents are recorded in an existing installation only

    def samu(*args: str) -> tuple[int, str]:
        code = main(["incidents", *args, "--db", db])
        return code, capsys.readouterr().out

    assert (
        samu(
            "add",
            "--kind",
            "technical",
            "--category",
            "video-failure",
            "--title",
            "video dropped during bilan",
            "--object",
            "device:cam-2",
        )[0]
        == 0
    )
    assert samu("update", "1", "--status", "closed")[0] == 2  # needs a note
    assert samu("update", "1", "--status", "closed", "--note", "codec fixed")[0] == 0
    assert json.loads(samu("show", "1", "--json")[1])["status"] == "closed"
    assert "#1 closed" in samu("list")[1]
    conn = sqlite3.connect(db)
    actors = {
        r[0] for r in conn.execute("SELECT actor FROM audit_events WHERE action LIKE 'incident.%'")
    }
    conn.close()
    assert len(actors) == 1 and actors.pop().startswith("local:")
    real = subprocess.run(
        [SAMU, "incidents", "list", "--db", db],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert real.returncode == 0 and "#1 closed" in real.stdout
