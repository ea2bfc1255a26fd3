"""Devices (every device seen: state, battery, last frame, errors, quarantine) and Audit
(auditeur only: trail search, verification status, incidents to review)."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from console.tui._case import _SamuScreen
from console.tui._format import age


class DevicesScreen(_SamuScreen, Screen[None]):
    BINDINGS = [
        Binding("f5", "reload", "Actualiser", id="devices.reload"),
        Binding("escape", "app.pop_screen", "Retour", id="devices.back"),
    ]
    HELP = "Every enrolled device: state, battery, last frame, frames, errors, quarantined."

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="devices", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#devices", DataTable).add_columns(
            "Site", "Dispositif", "Type", "État", "Batterie", "Dernière trame", "Trames",
            "Erreurs", "Quarantaine",
        )  # fmt: skip
        self.action_reload()
        self.set_interval(5.0, self.action_reload)

    @work(exclusive=True, exit_on_error=False)
    async def action_reload(self) -> None:
        samu = self.samu
        api = await samu.wait_api()
        assert samu.session is not None
        table = self.query_one("#devices", DataTable)
        try:
            rows = await api.devices(samu.session)
        except Exception as exc:
            self.notify(f"Devices: {exc}", severity="error")
            return
        now = samu.backend.clock()
        with self.app.batch_update():
            table.clear()
            for d in rows:
                battery = "–" if d.battery_pct is None else f"{d.battery_pct} %"
                table.add_row(*(Text(v) for v in (
                    d.site, d.device, d.kind, d.state, battery, age(d.last_seen, now),
                    str(d.frames), str(d.errors), str(d.quarantined),
                )))  # fmt: skip


class AuditScreen(_SamuScreen, Screen[None]):
    BINDINGS = [
        Binding("f5", "verify", "Vérifier", id="audit.verify"),
        Binding("escape", "app.pop_screen", "Retour", id="audit.back"),
    ]
    HELP = "Type in the search field to filter the trail (actor, action, object); F5 re-verifies."

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Vérification…", id="verify")
        yield Static("", id="incidents")
        yield Input(placeholder="rechercher dans la trace (acteur, action, objet)", id="search")
        yield DataTable(id="trail", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#trail", DataTable).add_columns(
            "#", "Heure", "Acteur", "Rôle", "Action", "Objet", "Issue"
        )
        self.action_verify()
        self._search("")

    def on_input_changed(self, event: Input.Changed) -> None:
        self._search(event.value)

    @work(exclusive=True, exit_on_error=False, group="audit-search")
    async def _search(self, text: str) -> None:
        samu = self.samu
        api = await samu.wait_api()
        assert samu.session is not None
        table = self.query_one("#trail", DataTable)
        try:
            entries = await api.audit_search(samu.session, text)
        except Exception as exc:
            self.query_one("#verify", Static).update(f"Audit: {exc}")
            return
        with self.app.batch_update():
            table.clear()
            for e in entries:
                table.add_row(*(Text(v) for v in (str(e.seq), e.time[:19], e.actor, e.role,
                                                  e.action, e.object)),
                              Text(e.outcome))  # fmt: skip

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
