"""A case by hand on a call, and the finished cases still to validate or close.

* :class:`CallScreen` — someone calls the centre about a resident: site, resident, the
  Hub Santé *motif* and who calls, from the official lists (no free text: the timeline
  is clear text, and what the caller says belongs in the decision's reason). The
  service joins the resident's open case if there is one, never a second.
* :class:`FinishedScreen` — cases whose compte rendu is signed (``ACHEVE``) or that
  are validated (``VALIDE``): ``v`` validates, ``c`` closes, one step at a time. Off the
  board, they would otherwise be out of reach of the keyboard.

Both are thin: every rule (who may, in what order) is the service's
(:mod:`console.cases._lifecycle`); the screens say what it refused.
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Header, Input, Label, Select, Static

from console.cases import ManualCaseRequest, StatusRequest
from console.services import BoardRow
from console.tui._case import _SamuScreen
from console.tui._fit import Col
from console.tui._format import MASK, short_case
from console.tui._widgets import FitFooter, FitTable


class CallScreen(_SamuScreen, ModalScreen[str | None]):
    """The call form; dismisses with the case id the call was recorded on."""

    CSS = """
    CallScreen { align: center middle; }
    #form { width: 90; max-width: 100%; max-height: 100%; height: auto; border: thick $accent;
            padding: 0 2; background: $panel; }
    #fields { grid-size: 2; grid-columns: 22 1fr; grid-rows: 1; grid-gutter: 1 1;
              height: auto; margin: 1 0; }
    #fields Label { color: $text-muted; }
    #error { color: $error; height: auto; }
    #form Horizontal { height: auto; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Annuler", id="call.cancel"),
        Binding("ctrl+s", "record", "Enregistrer", id="call.record", tooltip="Record the call"),
        Binding("f1", "app.toggle_help", "Aide", id="app.help"),
    ]

    HELP = (
        "A call about a resident: site, resident reference, the Hub Santé motif and who"
        " calls; ctrl+s records it on the resident's open case, or opens one."
    )

    def __init__(self, codes: dict[str, tuple[tuple[str, str], ...]], site: str = "") -> None:
        super().__init__()
        self.codes = codes
        self.site = site

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Label("[b]Appel[/b] — ouvrir une affaire à la main", id="title")
            with Grid(id="fields"):
                yield Label("Site (EHPAD)")
                yield Input(self.site, placeholder="ehpad-…", id="site", compact=True)
                yield Label("Résident (référence)")
                yield Input(placeholder="res-…", id="resident", compact=True)
                yield Label("Motif")
                yield Select(
                    [(f"{c} — {label}", c) for c, label in self.codes["motif"]],
                    prompt="choisir…",
                    id="motif",
                    compact=True,
                )
                yield Label("Appelant (optionnel)")
                yield Select(
                    [(f"{c} — {label}", c) for c, label in self.codes["caller"]],
                    prompt="choisir…",
                    id="caller",
                    compact=True,
                )
            yield Static("", id="error")
            with Horizontal():
                yield Button("Enregistrer (ctrl+s)", id="record", variant="primary")
                yield Button("Annuler (Esc)", id="cancel")
        yield FitFooter()

    def on_mount(self) -> None:
        self.query_one("#resident" if self.site else "#site", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "record":
            self.action_record()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _select(self, wid: str) -> str | None:
        value = self.query_one(f"#{wid}", Select).value
        return None if value is Select.NULL else str(value)

    def action_record(self) -> None:
        error = self.query_one("#error", Static)
        site = self.query_one("#site", Input).value.strip()
        resident = self.query_one("#resident", Input).value.strip()
        motif = self._select("motif")
        missing = [n for n, v in (("le site", site), ("le résident", resident),
                                  ("le motif", motif)) if not v]  # fmt: skip
        if missing:
            error.update(f"À remplir : {', '.join(missing)}.")
            return
        try:
            request = ManualCaseRequest(
                site=site, resident=resident, motif=str(motif), caller=self._select("caller")
            )
        except ValueError as exc:
            errors: list[Any] = getattr(exc, "errors", lambda: [])()
            field = errors[0]["loc"][0] if errors else "call"
            error.update(f"{field}: letters, digits, '.', '_' or '-' only (at most 64)")
            return
        self._record(request)

    @work(exclusive=True, exit_on_error=False)
    async def _record(self, request: ManualCaseRequest) -> None:
        samu = self.samu
        api = await samu.wait_api()
        assert samu.session is not None
        try:
            reply = await api.open_case(samu.session, request)
        except Exception as exc:
            self.query_one("#error", Static).update(f"Refused: {exc}")
            return
        said = "Affaire ouverte" if reply.opened else "Appel ajouté à l'affaire ouverte"
        self.notify(f"{said} : {short_case(reply.case_id)}.")
        self.dismiss(reply.case_id)


#: The finished cases' columns: which case, its state, where, when it last changed.
FINISHED_COLUMNS = (
    Col("case", "Affaire", 14),
    Col("status", "État", 8),
    Col("priority", "Prio.", 5),
    Col("site", "Site", 18, drop=2),
    Col("patients", "Résident", 12, flex=True, drop=1),
    Col("updated", "Mis à jour", 19, drop=1),
)


class FinishedScreen(_SamuScreen, Screen[None]):
    """Finished cases (``ACHEVE``, ``VALIDE``), newest first, with their next step."""

    CSS = "#finished { height: 1fr; }"
    BINDINGS = [
        Binding("v", "validate", "Valider", id="finished.validate", tooltip="ACHEVE → VALIDE"),
        Binding("c", "close_case", "Clore", id="finished.close", tooltip="VALIDE → CLOTURE"),
        Binding("enter,o", "open_case", "Ouvrir", id="finished.open"),
        Binding("f5", "reload", "Actualiser", id="finished.reload"),
        Binding("escape", "app.pop_screen", "Retour", id="finished.back"),
    ]
    HELP = (
        "Cases whose compte rendu is signed (ACHEVE) or validated (VALIDE). v validates"
        " (régulateur), c closes a validated case (régulateur or ARM), Enter opens it."
    )

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[BoardRow] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="message")
        yield FitTable(FINISHED_COLUMNS, id="finished")
        yield FitFooter()

    def on_mount(self) -> None:
        self.action_reload()

    def refresh_masking(self) -> None:
        self._show()

    def _show(self) -> None:
        locked = self.samu.locked
        self.query_one("#finished", FitTable).show_rows(
            {"case": short_case(r.case_id), "status": r.status,
             "priority": r.decided_priority or r.suggested_priority, "site": r.site,
             "patients": MASK if locked else ", ".join(p.split("/", 1)[-1] for p in r.patients),
             "updated": r.updated_at[:19].replace("T", " ")}
            for r in self.rows
        )  # fmt: skip
        self.query_one("#message", Static).update(
            f"{len(self.rows)} affaire(s) terminée(s) à valider ou clore"
            if self.rows
            else "Aucune affaire terminée à valider ou clore."
        )

    @work(exclusive=True, exit_on_error=False, group="finished")
    async def action_reload(self) -> None:
        samu = self.samu
        api = await samu.wait_api()
        assert samu.session is not None
        try:
            self.rows = await api.finished(samu.session)
        except Exception as exc:
            self.notify(f"Finished cases: {exc}", severity="error")
            return
        self._show()

    def _current(self) -> BoardRow | None:
        table = self.query_one("#finished", FitTable)
        if not self.rows or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    def on_data_table_row_selected(self, event: FitTable.RowSelected) -> None:
        event.stop()  # Enter on the table: the table's own binding, then this
        self.action_open_case()

    def action_open_case(self) -> None:
        row = self._current()
        if row is not None:
            self.samu.open_case(row.case_id)

    def action_validate(self) -> None:
        self._step("VALIDE")

    def action_close_case(self) -> None:
        self._step("CLOTURE")

    def _step(self, to: str) -> None:
        row = self._current()
        if row is None:
            return
        if self.samu.locked:
            self.notify("The console is locked: unlock it first.", severity="warning")
            return
        self._advance(StatusRequest(case_id=row.case_id, to=to))

    @work(exclusive=True, exit_on_error=False, group="step")
    async def _advance(self, request: StatusRequest) -> None:
        samu = self.samu
        api = await samu.wait_api()
        assert samu.session is not None
        try:
            status = await api.advance_case(samu.session, request)
        except Exception as exc:
            self.query_one("#message", Static).update(f"Refused: {exc}")
            self.notify(f"Refused: {exc}", severity="error")
            return
        self.notify(f"{short_case(request.case_id)} : {status}.")
        self.action_reload()
