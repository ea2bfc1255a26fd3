"""Devices (every device seen: state, battery, last frame, errors, quarantine) and Audit
(auditeur only: trail search, verification status, incidents to review)."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Header, Input, Static

from console.tui._case import _SamuScreen
from console.tui._fit import Col
from console.tui._format import age
from console.tui._widgets import FitFooter, FitTable

#: The devices' columns: which device, where, its state and its faults first (battery,
#: last frame, errors, quarantine); a narrow terminal shortens the headers, ends long
#: device ids in an ellipsis and leaves out the frame count and the type.
DEVICE_COLUMNS = (
    Col("site", "Site", 20),
    Col("device", "Dispositif", 12, drop=2, flex=True, wants=14),
    Col("kind", "Type", 22, drop=3),
    Col("state", "État", 12),
    Col("battery", "Batterie", 5, drop=1, short="Batt."),
    Col("last", "Dernière trame", 6, drop=1, short="Il y a"),
    Col("frames", "Trames", 8, drop=2),
    Col("errors", "Erreurs", 6, drop=1, short="Err."),
    Col("quarantined", "Quarantaine", 6, drop=1, short="Quar."),
)

#: The trail's columns: when, who, what, on which record, the outcome; a narrow
#: terminal leaves out the role and ends long record names in an ellipsis.
TRAIL_COLUMNS = (
    Col("seq", "#", 7),
    Col("time", "Heure", 19),
    Col("actor", "Acteur", 20),
    Col("role", "Rôle", 12, drop=1),
    Col("action", "Action", 24),
    Col("object", "Objet", 10, flex=True),
    Col("outcome", "Issue", 8),
)


class DevicesScreen(_SamuScreen, Screen[None]):
    BINDINGS = [
        Binding("f5", "reload", "Actualiser", id="devices.reload"),
        Binding("escape", "app.pop_screen", "Retour", id="devices.back"),
    ]
    HELP = (
        "Every enrolled device: state, battery, last frame, frames, errors, quarantined."
        " A narrow terminal leaves out the frame count and the type."
    )

    def compose(self) -> ComposeResult:
        yield Header()
        yield FitTable(DEVICE_COLUMNS, id="devices")
        yield FitFooter()

    def on_mount(self) -> None:
        self.action_reload()
        self.set_interval(5.0, self.action_reload)

    @work(exclusive=True, exit_on_error=False)
    async def action_reload(self) -> None:
        samu = self.samu
        api = await samu.wait_api()
        assert samu.session is not None
        try:
            rows = await api.devices(samu.session)
        except Exception as exc:
            self.notify(f"Devices: {exc}", severity="error")
            return
        now = samu.backend.clock()
        self.query_one("#devices", FitTable).show_rows(
            {"site": d.site, "device": d.device, "kind": d.kind, "state": d.state,
             "battery": "–" if d.battery_pct is None else f"{d.battery_pct} %",
             "last": age(d.last_seen, now), "frames": str(d.frames), "errors": str(d.errors),
             "quarantined": str(d.quarantined)}
            for d in rows
        )  # fmt: skip


class AuditScreen(_SamuScreen, Screen[None]):
    CSS = "#trail { height: 1fr; }"  # the trail scrolls, not the screen (nor its footer)
    BINDINGS = [
        Binding("f5", "verify", "Vérifier", id="audit.verify"),
        Binding("escape", "app.pop_screen", "Retour", id="audit.back"),
    ]
    HELP = (
        "Type in the search field to filter the trail (actor, action, object); F5"
        " re-verifies. A narrow terminal leaves out the role and cuts long objects (…)."
    )

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Vérification…", id="verify")
        yield Static("", id="incidents")
        yield Input(placeholder="rechercher dans la trace (acteur, action, objet)", id="search")
        yield FitTable(TRAIL_COLUMNS, id="trail")
        yield FitFooter()

    def on_mount(self) -> None:
        self.action_verify()
        self._search("")

    def on_input_changed(self, event: Input.Changed) -> None:
        self._search(event.value)

    @work(exclusive=True, exit_on_error=False, group="audit-search")
    async def _search(self, text: str) -> None:
        samu = self.samu
        api = await samu.wait_api()
        assert samu.session is not None
        try:
            entries = await api.audit_search(samu.session, text)
        except Exception as exc:
            self.query_one("#verify", Static).update(f"Audit: {exc}")
            return
        self.query_one("#trail", FitTable).show_rows(
            {"seq": str(e.seq), "time": e.time[:19], "actor": e.actor, "role": e.role,
             "action": e.action, "object": e.object, "outcome": e.outcome}
            for e in entries
        )  # fmt: skip

    @work(exclusive=True, exit_on_error=False, group="audit-verify")
    async def action_verify(self) -> None:
        samu = self.samu
        api = await samu.wait_api()
        assert samu.session is not None
        try:
            status = await api.audit_status(samu.session)
        except Exception as exc:
            self.query_one("#verify", Static).update(f"Audit: {exc}")
            return
        style = "green" if status.status == "intact" else "bold red"
        self.query_one("#verify", Static).update(
            f"Trace: [{style}]{status.status}[/] — {status.events} events, "
            f"{status.checkpoints} checkpoints, {status.uncovered} not yet covered"
            + (f" — {status.error}" if status.error else "")
        )
        lines = [f"#{i['id']} {i['severity']} {i['kind']}/{i['category']}: {i['title']}"
                 f" ({i['status']})" for i in status.incidents[:8]]  # fmt: skip
        self.query_one("#incidents", Static).update(
            "Incidents to review:\n" + "\n".join(lines) if lines else "No open incident."
        )
