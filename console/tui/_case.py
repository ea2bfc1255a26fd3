"""A case: tabs Vitals, Implant, Bilan & DLU, Video, Triage, Trail; the decision form;
the compte rendu (preview, sign, export).

Everything is read through the service (each read audited there); free text (the
nurse's words, the DLU) is masked while the console is locked.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    Button,
    DataTable,
    Header,
    Input,
    Label,
    Markdown,
    Select,
    Sparkline,
    Static,
    TabbedContent,
    TabPane,
    Tabs,
)

from console.cases import DecisionRequest
from console.services import BoardRow, CaseDetail, VideoEntry, VitalPoint
from console.tui._board_model import priority_of
from console.tui._format import MASK, age, badge, news2_text, short_case
from console.tui._widgets import FitFooter

if TYPE_CHECKING:
    from console.tui._app import RegulationApp

#: What the Vitals tab plots: LOINC code → label, unit.
VITALS = (
    ("59408-5", "SpO₂", "%"),
    ("8867-4", "Fréquence cardiaque", "/min"),
    ("9279-1", "Fréquence respiratoire", "/min"),
    ("8480-6", "PA systolique", "mmHg"),
    ("8310-5", "Température", "°C"),
    ("41653-7", "Glycémie", "mg/dL"),
)

#: The case's tabs: pane id, title, the key that shows it and that key's place on a
#: French AZERTY keyboard, where the top row types & é " ' ( - without Shift.
TABS = (
    ("tab-vitals", "Vitals", "1", "ampersand"),
    ("tab-implant", "Implant", "2", "é"),
    ("tab-bilan", "Bilan & DLU", "3", "quotation_mark"),
    ("tab-video", "Video", "4", "apostrophe"),
    ("tab-triage", "Triage", "5", "left_parenthesis"),
    ("tab-trail", "Trail", "6", "minus"),
)


class _SamuScreen:
    @property
    def samu(self) -> RegulationApp:
        from console.tui._app import RegulationApp

        app = self.app  # type: ignore[attr-defined]
        assert isinstance(app, RegulationApp)
        return app


class CaseScreen(_SamuScreen, Screen[None]):
    """One case (see the module docstring)."""

    CSS = """
    #head { height: auto; padding: 0 1; background: $boost; }
    #tabs { height: 1fr; }
    TabPane { height: 1fr; }
    .vital { height: 3; }
    .vital Label { width: 48; }
    .vital Sparkline { width: 1fr; }
    #video-actions Button { margin-right: 1; }
    """

    BINDINGS = [
        Binding("d", "decide", "Décider", id="case.decide"),
        Binding("r", "report", "Compte rendu", id="case.report"),
        Binding("h", "span", "1 h / 24 h", id="case.span", tooltip="Vitals over 1 h or 24 h"),
        Binding(
            "c",
            "consent",
            "Consentement",
            id="case.consent",
            tooltip="Record the caller's consent to video (who, relation, how)",
        ),
        Binding("l", "send_link", "Lien vidéo", id="case.link", tooltip="Record a link sent"),
        Binding("w", "withdraw", "Retrait", id="case.withdraw", tooltip="Consent withdrawn"),
        Binding("f5", "reload", "Actualiser", id="case.reload"),
        Binding("escape", "app.pop_screen", "Retour", id="case.back"),
        # The tabs' keys: digits, which no other key of this screen uses and which no
        # text field sees (the case has none; the consent and decision forms are modal
        # screens, whose fields get every key). Not alt+letter: a terminal sends it as
        # Esc then the letter, and Esc is "back" here. Shown on the tabs themselves.
        *(
            Binding(
                f"{digit},{azerty}",
                f"show_tab('{pane}')",
                f"Onglet {title}",
                key_display=digit,
                show=False,
                id=f"case.{pane}",
            )
            for pane, title, digit, azerty in TABS
        ),
    ]
    #: What a narrow footer shortens or leaves out (see FitFooter): the decision, the
    #: compte rendu and Esc stay; the video keys are also buttons on the Video tab.
    FOOTER = {
        "case.report": ("CR", 0),
        "case.span": ("1h/24h", 1),
        "case.consent": ("Consent.", 2),
        "case.link": ("Lien", 3),
        "case.withdraw": ("", 4),
        "case.reload": ("", 5),
    }

    HELP = """\
**Case**: tabs 1 Vitals (trend over 1 h, h for 24 h), 2 Implant, 3 Bilan & DLU,
4 Video, 5 Triage (score breakdown and reasons), 6 Trail (who accessed this record):
the digit shows its tab (on AZERTY, the same keys without Shift: & é " ' ( -).
d: decision, r: compte rendu, c/l/w: the caller's video consent, link sent,
withdrawal; F5 reads the case again; Esc: back. A narrow footer leaves some keys out:
all are listed below and in the command palette (ctrl+p).
"""

    def __init__(self, case_id: str) -> None:
        super().__init__()
        self.case_id = case_id
        self.detail: CaseDetail | None = None
        self.points: list[VitalPoint] = []
        self.span_s = 3600.0
        self._seen_update: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Affaire {self.case_id} — chargement…", id="head")
        titles = {pane: f"{digit} {title}" for pane, title, digit, _ in TABS}
        with TabbedContent(id="tabs"):
            with TabPane(titles["tab-vitals"], id="tab-vitals"), VerticalScroll():
                for code, label, unit in VITALS:
                    with Horizontal(classes="vital"):
                        yield Label(f"{label} ({unit})", id=f"lbl-{code.replace('-', '_')}")
                        yield Sparkline([], id=f"spark-{code.replace('-', '_')}")
            with TabPane(titles["tab-implant"], id="tab-implant"):
                yield DataTable(id="implant", cursor_type="row")
            with TabPane(titles["tab-bilan"], id="tab-bilan"), VerticalScroll():
                yield Static("", id="bilan")
            with TabPane(titles["tab-video"], id="tab-video"):
                yield Static("", id="video", markup=False)
                with Horizontal(id="video-actions"):
                    yield Button("Lien envoyé (l)", id="btn-link")
                    yield Button("Consentement (c)", id="btn-consent")
                    yield Button("Retrait (w)", id="btn-withdraw")
            with TabPane(titles["tab-triage"], id="tab-triage"), VerticalScroll():
                yield Static("", id="triage", markup=False)
            with TabPane(titles["tab-trail"], id="tab-trail"):
                yield DataTable(id="trail", cursor_type="row")
        yield FitFooter()

    def on_mount(self) -> None:
        self.query_one("#implant", DataTable).add_columns("Heure", "Événement", "Détail")
        self.query_one("#trail", DataTable).add_columns("Heure", "Qui", "Rôle", "Action", "Issue")
        self._reload_if_changed()
        self.set_interval(5.0, self._reload_if_changed)

    def _reload_if_changed(self) -> None:
        """Re-read the case only when the board says it changed. Every read is an
        audited access (case.read, case.vitals, case.trail): reading an unchanged case
        every 5 s filled its trail with the same reader, hiding who really looked."""
        board = self.samu._board()
        rows = getattr(board, "model", None)
        row = rows.rows.get(self.case_id) if rows is not None else None
        seen = row.updated_at if row is not None else None
        if seen is not None and seen == self._seen_update:
            return
        self._seen_update = seen
        self.load()

    @work(exclusive=True, exit_on_error=False, group="case-load")
    async def load(self) -> None:
        samu = self.samu
        api = await samu.wait_api()
        session = samu.session
        assert session is not None
        try:
            self.detail = await api.case(session, self.case_id)
            self.points = await api.vitals(session, self.case_id, since_s=86_400.0)
            trail = await api.trail(session, self.case_id)
        except Exception as exc:
            self.query_one("#head", Static).update(f"Affaire {self.case_id}: {exc}")
            return
        self._render_all()
        table = self.query_one("#trail", DataTable)
        table.clear()
        for t in trail:
            table.add_row(*(Text(v) for v in (t.time[11:19], t.actor, t.role, t.action, t.outcome)))

    def refresh_masking(self) -> None:
        if self.detail is not None:
            self._render_all()

    def _render_all(self) -> None:
        detail = self.detail
        if detail is None:
            return
        row = detail.row
        locked = self.samu.locked
        # Two lines, who then how bad, each within 80 columns: the site is beside the
        # patient, so a resident of this site is named without it.
        here = f"{row.site}/"
        patients = ", ".join(p.removeprefix(here) for p in row.patients)
        residents = escape(MASK if locked else patients)
        news2 = news2_text(row.news2, row.news2_complete).markup
        head = (
            f"{badge(priority_of(row)).markup} Affaire {short_case(row.case_id)}  "
            f"{escape(row.site)}  patient {residents}\nNEWS2 {news2}  "
            f"qSOFA {row.qsofa if row.qsofa is not None else '–'}  statut {row.status}  "
            f"ouverte il y a {age(row.opened_at, self.samu.backend.clock())}"
        )
        self.query_one("#head", Static).update(head)
        self._render_vitals()
        self._render_implant(detail)
        self._render_bilan(detail, locked)
        self._render_video(detail)
        self._render_triage(detail)

    def _render_vitals(self) -> None:
        newest = max((p.at for p in self.points), default=0.0)
        since = newest - self.span_s
        for code, label, unit in VITALS:
            values = [p.value for p in self.points if p.code == code and p.at >= since
                      and p.value is not None]  # fmt: skip
            key = code.replace("-", "_")
            last = next((p for p in reversed(self.points) if p.code == code), None)
            when = ""
            if last is not None:
                when = age(
                    datetime.fromtimestamp(last.at, UTC).isoformat(), self.samu.backend.clock()
                )
            text = (
                f"{label}: {last.value:g} {unit} ({when})"
                if last and last.value is not None
                else (f"{label}: –")
            )
            span = "1 h" if self.span_s <= 3600 else "24 h"
            self.query_one(f"#lbl-{key}", Label).update(f"{text} [{span}]")
            # No value: an empty sparkline (a flat [0.0] drew a full bar, as if measured).
            self.query_one(f"#spark-{key}", Sparkline).data = [float(v) for v in values]

    def _render_implant(self, detail: CaseDetail) -> None:
        table = self.query_one("#implant", DataTable)
        table.clear()
        for t in detail.timeline:
            if t.kind.startswith("implant"):
                what = json.dumps(t.detail, ensure_ascii=False)[:120]
                table.add_row(Text(t.at[11:19]), Text(t.kind), Text(what))
        if table.row_count == 0:
            table.add_row("–", "no implant transmission on this case", "")

    def _render_bilan(self, detail: CaseDetail, locked: bool) -> None:
        """The nurse's words first (why she called), then flags, then the DLU. Free
        text and the DLU are masked while the console is locked."""
        lines: list[str] = []

        def text(value: str) -> str:
            return MASK if locked else escape(value)

        for b in detail.bilans:
            lines.append(f"[b]Bilan {b.at[11:19]}[/b] — {escape(b.nurse)} ({escape(b.site)})")
            lines.append(f"  Motif : {text(b.complaint)}")
            if b.notes:
                lines.append(f"  Notes : {text(b.notes)}")
            lines.append(f"  Signes : {escape(', '.join(b.flags)) or 'aucun signalé'}")
            if b.on_oxygen is not None:
                lines.append(f"  Oxygène : {'oui' if b.on_oxygen else 'non (air ambiant)'}")
            for title, items in (("Antécédents", b.history), ("Traitements", b.treatments),
                                 ("Allergies", b.allergies)):  # fmt: skip
                if items:
                    lines.append(f"  DLU {title} : {text('; '.join(items))}")
            if b.advance_directives:
                lines.append(f"  DLU Directives anticipées : {text(b.advance_directives)}")
            if b.palliative_care:
                lines.append("  DLU : soins palliatifs")
            lines.append("")
        if not detail.bilans:
            for t in detail.timeline:  # a bilan received from another centre (Hub Santé)
                if t.kind == "bilan":
                    lines.append(f"[b]Bilan {t.at[11:19]}[/b] (reçu: voir le compte rendu)")
        self.query_one("#bilan", Static).update("\n".join(lines) or "No bilan on this case.")

    def _render_video(self, detail: CaseDetail) -> None:
        lines = [
            f"{v['at'][11:19] if v.get('at') else ''}  {v['event']}"
            + (f"  by {v['by']} ({v.get('relation') or '–'})" if v.get("by") else "")
            for v in detail.video
        ]
        self.query_one("#video", Static).update(
            "\n".join(lines) or "No video link for this case (nothing is recorded)."
        )

    def _render_triage(self, detail: CaseDetail) -> None:
        row = detail.row
        lines = [
            f"Suggested priority: {row.suggested_priority}"
            + (f"   decided: {row.decided_priority}" if row.decided_priority else ""),
            f"NEWS2: {row.news2 if row.news2 is not None else '–'}"
            + ("" if row.news2_complete else " (incomplete: a parameter is missing)"),
            f"qSOFA: {row.qsofa if row.qsofa is not None else '–'}",
            "Reasons:",
            *(f"  • {r}" for r in row.reasons),
        ]
        t = detail.triage
        if t is not None:
            lines += ["", f"Score breakdown (result of {t.at[:19]}, {t.priority}):"]
            for p in t.parameters:
                value = "–" if p.value is None else p.value
                lines.append(f"  {p.label:<18} {value:>8}   {p.points} pt")
            if t.note:
                lines.append(f"  ({t.note})")
            lines.append(f"Policy: version {t.policy_version}, SHA-256 {t.policy_sha256}")
        for d in detail.decisions:
            lines.append(
                f"Decision {d['signed_at'][11:19]} by {d['author']}: {d['priority']} "
                f"{d['care_level']} {d['decision_type']} {d.get('resource') or ''} "
                f"{d.get('orientation') or ''}"
            )
        self.query_one("#triage", Static).update("\n".join(lines))

    def action_show_tab(self, pane: str) -> None:
        """Show one tab (its key: 1 to 6), the focus on the tab bar."""
        tabs = self.query_one("#tabs", TabbedContent)
        tabs.active = pane
        tabs.query_one(Tabs).focus()

    def action_span(self) -> None:
        self.span_s = 86_400.0 if self.span_s <= 3600 else 3600.0
        self._render_vitals()

    def action_reload(self) -> None:
        self.load()

    def action_decide(self) -> None:
        if self.detail is not None:
            self.samu.decide(self.detail.row)

    def action_report(self) -> None:
        self.samu.report(self.case_id)

    def action_consent(self) -> None:
        self.app.push_screen(ConsentScreen(self.case_id), self._reload_after)

    def action_withdraw(self) -> None:
        self.app.push_screen(ConsentScreen(self.case_id, withdraw=True), self._reload_after)

    def _reload_after(self, _: bool | None) -> None:
        self.load()

    def action_send_link(self) -> None:
        self._video(VideoEntry(case_id=self.case_id, event="link_sent"))

    @work(exit_on_error=False, group="video")
    async def _video(self, entry: VideoEntry) -> None:
        samu = self.samu
        api = await samu.wait_api()
        assert samu.session is not None
        try:
            await api.video_entry(samu.session, entry)
        except Exception as exc:
            self.notify(f"Video: {exc}", severity="error")
            return
        self.notify("Recorded: video link sent.")
        self.load()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {"btn-consent": self.action_consent, "btn-link": self.action_send_link,
                   "btn-withdraw": self.action_withdraw}  # fmt: skip
        if event.button.id in actions:
            actions[event.button.id]()


class ConsentScreen(_SamuScreen, ModalScreen[bool]):
    """The caller's consent to video: who, their relation to the patient, how it was
    given; or its withdrawal. Nothing of the stream is recorded, only these entries."""

    CSS = """
    ConsentScreen { align: center middle; }
    #consent { width: 80; max-width: 100%; height: auto; max-height: 100%;
               border: thick $accent; padding: 1 2; background: $panel; }
    #consent Input, #consent Select { margin-bottom: 1; }
    #consent-error { color: $error; height: auto; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Annuler", id="consent.cancel"),
        Binding("ctrl+s", "save", "Enregistrer", id="consent.save"),
        # A modal screen stops the app's keys: F1 again, for the help of this form.
        Binding("f1", "app.toggle_help", "Aide", id="app.help"),
    ]
    HELP = "Who consents (or withdraws), their relation to the patient, how; ctrl+s records."

    def __init__(self, case_id: str, *, withdraw: bool = False) -> None:
        super().__init__()
        self.case_id = case_id
        self.withdraw = withdraw

    def compose(self) -> ComposeResult:
        with Vertical(id="consent"):
            title = "Retrait du consentement" if self.withdraw else "Consentement à la vidéo"
            yield Label(f"[b]{title}[/b] — affaire {short_case(self.case_id)}")
            if not self.withdraw:
                choices = [("accordé", "consent_granted"), ("refusé", "consent_refused")]
                yield Select(choices, value="consent_granted", id="consent-event",
                             allow_blank=False)  # fmt: skip
            yield Input(placeholder="qui (nom de la personne)", id="consent-by")
            yield Input(placeholder="lien avec le patient (lui-même, fille, IDE…)",
                        id="consent-relation")  # fmt: skip
            yield Select([("oral", "oral"), ("écrit", "written"), ("par SMS", "sms")],
                         value="oral", id="consent-how", allow_blank=False)  # fmt: skip
            yield Static("", id="consent-error")
        yield FitFooter()  # this form's keys, not those of the case beneath

    def action_cancel(self) -> None:
        self.dismiss(False)

    def action_save(self) -> None:
        event = (
            "consent_withdrawn"
            if self.withdraw
            else str(self.query_one("#consent-event", Select).value)
        )
        try:
            entry = VideoEntry(
                case_id=self.case_id,
                event=event,
                by=self.query_one("#consent-by", Input).value.strip() or None,
                relation=self.query_one("#consent-relation", Input).value.strip() or None,
                how=str(self.query_one("#consent-how", Select).value),
            )
        except ValueError as exc:
            self.query_one("#consent-error", Static).update(_first_error(exc))
            return
        self._save(entry)

    @work(exclusive=True, exit_on_error=False)
    async def _save(self, entry: VideoEntry) -> None:
        samu = self.samu
        api = await samu.wait_api()
        assert samu.session is not None
        try:
            await api.video_entry(samu.session, entry)
        except Exception as exc:
            self.query_one("#consent-error", Static).update(f"Refused: {exc}")
            return
        self.dismiss(True)


def _first_error(exc: ValueError) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return str(exc.errors()[0]["msg"])
    return str(exc).splitlines()[0]


class DecisionScreen(_SamuScreen, ModalScreen[bool]):
    """The decision form: Hub Santé codes with their French labels; a reason is required
    when the priority differs from the suggestion; signed with the session's key."""

    CSS = """
    DecisionScreen { align: center middle; }
    #form { width: 96; max-width: 100%; max-height: 100%; height: auto; border: thick $accent;
            padding: 0 2; background: $panel; }
    #fields { grid-size: 2; grid-columns: 26 1fr; grid-rows: 1; grid-gutter: 1 1;
              height: auto; margin: 1 0; }
    #title { width: 1fr; }
    #fields Label { color: $text-muted; }
    #error { color: $error; height: auto; }
    #form Horizontal { height: auto; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Annuler", id="decision.cancel"),
        Binding("ctrl+s", "sign", "Signer", id="decision.sign", tooltip="Sign the decision"),
        # A modal screen stops the app's keys: F1 again, for the help of this form.
        Binding("f1", "app.toggle_help", "Aide", id="app.help"),
    ]

    HELP = "Choose each code, give a reason when you differ from the suggestion, ctrl+s signs."

    def __init__(self, row: BoardRow, codes: dict[str, tuple[tuple[str, str], ...]]) -> None:
        super().__init__()
        self.row = row
        self.codes = codes

    def compose(self) -> ComposeResult:
        row = self.row
        with Vertical(id="form"):
            yield Label(
                f"[b]Décision[/b] — affaire {short_case(row.case_id)} ({escape(row.site)}); "
                f"priorité suggérée {row.suggested_priority}",
                id="title",
            )
            # One line per field (compact widgets, labels beside them) so the whole form,
            # buttons included, fits an 80x24 terminal: nothing a physician must fill in
            # may scroll out of sight.
            with Grid(id="fields"):
                for field, title in (
                    ("priority", "Priorité"),
                    ("care_level", "Niveau de soins"),
                    ("decision_type", "Type de décision"),
                    ("resource", "Ressource (optionnel)"),
                    ("orientation", "Orientation (optionnel)"),
                ):
                    options = [(f"{code} — {label}", code) for code, label in self.codes[field]]
                    value: Any = Select.NULL
                    if field == "priority":
                        value = row.decided_priority or row.suggested_priority
                        if value not in dict(self.codes[field]):
                            value = Select.NULL
                    yield Label(title)
                    yield Select(
                        options, prompt="choisir…", id=f"sel-{field}", value=value, compact=True
                    )
                yield Label("Motif")
                yield Input(
                    placeholder="obligatoire si la priorité diffère", id="reason", compact=True
                )
            yield Static("", id="error")
            with Horizontal():
                yield Button("Signer (ctrl+s)", id="sign", variant="primary")
                yield Button("Annuler (Esc)", id="cancel")
        yield FitFooter()  # this form's keys, not those of the case beneath

    def _value(self, field: str) -> str | None:
        value = self.query_one(f"#sel-{field}", Select).value
        return None if value is Select.NULL else str(value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "sign":
            self.action_sign()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(False)

    def action_sign(self) -> None:
        error = self.query_one("#error", Static)
        if self.samu.locked:
            error.update("The console is locked: unlock it before signing.")
            return
        missing = [f for f in ("priority", "care_level", "decision_type") if not self._value(f)]
        if missing:
            names = {"priority": "la priorité", "care_level": "le niveau de soins",
                     "decision_type": "le type de décision"}  # fmt: skip
            error.update(f"À choisir : {', '.join(names[m] for m in missing)}.")
            return
        reason = self.query_one("#reason", Input).value.strip() or None
        if self._value("priority") != self.row.suggested_priority and not reason:
            error.update(
                f"A reason is required: {self._value('priority')} differs from the suggested "
                f"{self.row.suggested_priority}."
            )
            self.query_one("#reason", Input).focus()
            return
        try:
            request = DecisionRequest(
                case_id=self.row.case_id,
                priority=str(self._value("priority")),
                care_level=str(self._value("care_level")),
                decision_type=str(self._value("decision_type")),
                resource=self._value("resource"),
                orientation=self._value("orientation"),
                reason=reason,
            )
        except ValueError as exc:
            error.update(_first_error(exc))
            return
        self._sign(request)

    @work(exclusive=True, exit_on_error=False)
    async def _sign(self, request: DecisionRequest) -> None:
        error = self.query_one("#error", Static)
        samu = self.samu
        api = await samu.wait_api()
        assert samu.session is not None
        try:
            decision = await api.decide(samu.session, request)
        except Exception as exc:
            error.update(f"Refused: {exc}")
            return
        self.notify(f"Decision signed ({decision.priority}, key {decision.key_id[:12]}…).")
        self.dismiss(True)


class ReportScreen(_SamuScreen, Screen[None]):
    """The compte rendu: preview, sign (s), export as Markdown (e), FHIR (f), RS-EDA (x)."""

    BINDINGS = [
        Binding("s", "sign", "Signer", id="report.sign"),
        Binding("e", "export", "Exporter (Markdown)", id="report.export"),
        Binding("f", "export_as('fhir')", "FHIR", id="report.export_fhir"),
        Binding("x", "export_as('rs-eda')", "RS-EDA", id="report.export_rs_eda"),
        Binding("escape", "app.pop_screen", "Retour", id="report.back"),
    ]
    FOOTER = {"report.export": ("Markdown", 0)}

    HELP = (
        "Preview of the compte rendu. s signs it (needs an unlocked session and a decision);"
        " e exports it as Markdown, f as a FHIR R4 Bundle, x as a Hub Santé RS-EDA message"
        " (no identity traits in either), into exports/ beside the database."
    )

    def __init__(self, case_id: str) -> None:
        super().__init__()
        self.case_id = case_id
        self.markdown = ""
        self.report_id: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Compte rendu — affaire {short_case(self.case_id)}", id="report-status")
        with VerticalScroll():
            yield Markdown("Chargement…", id="report")
        yield FitFooter()

    def on_mount(self) -> None:
        self._load(sign=False)

    @work(exclusive=True, exit_on_error=False)
    async def _load(self, sign: bool) -> None:
        samu = self.samu
        api = await samu.wait_api()
        assert samu.session is not None
        status = self.query_one("#report-status", Static)
        try:
            reply = await api.compte_rendu(samu.session, self.case_id, sign=sign)
        except Exception as exc:
            status.update(f"Compte rendu — {'signing' if sign else 'preview'} refused: {exc}")
            return
        markdown = reply.markdown
        if sign and reply.report_id:
            # What is exported says it was signed, by whom and when, as the CLI prints.
            when = datetime.now(UTC).isoformat(timespec="seconds")
            markdown += (
                f"\n\n---\n\nSigné : {reply.report_id} par {samu.session.user_id} ({when})\n"
            )
        self.markdown = markdown
        await self.query_one("#report", Markdown).update(markdown)
        if sign:
            self.report_id = reply.report_id
            status.update(f"Compte rendu signé — {reply.report_id}")
            self.notify("Compte rendu signed.")
        else:
            status.update(f"Compte rendu — affaire {short_case(self.case_id)} (preview; s signs)")

    def action_sign(self) -> None:
        if self.samu.locked:
            self.notify("The console is locked: unlock it before signing.", severity="error")
            return
        self._load(sign=True)

    def _save(self, name: str, text: str) -> Path:
        folder = Path(self.samu.backend.services.db_path).resolve().parent / "exports"
        folder.mkdir(mode=0o700, exist_ok=True)
        path = folder / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
        return path

    def action_export(self) -> None:
        if not self.markdown:
            self.notify("Nothing to export yet.", severity="warning")
            return
        path = self._save(f"compte-rendu-{short_case(self.case_id)}.md", self.markdown)
        self.notify(f"Exported to {path}")

    @work(exclusive=True, exit_on_error=False, group="report-export")
    async def action_export_as(self, fmt: str) -> None:
        samu = self.samu
        api = await samu.wait_api()
        assert samu.session is not None
        try:
            reply = await api.export_compte_rendu(samu.session, self.case_id, fmt)
        except Exception as exc:
            self.notify(f"Export {fmt} refused: {exc}", severity="error", markup=False)
            return
        suffix = "fhir.json" if fmt == "fhir" else "rs-eda.json"
        path = self._save(f"compte-rendu-{short_case(self.case_id)}.{suffix}", reply.text)
        self.notify(f"Exported to {path}", markup=False)
