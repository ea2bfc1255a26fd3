"""The EHPAD nurse station (``samu station``): pick the resident, see the live readings
of the devices plugged into the station, add the flags and observations, send the bilan,
and see the SAMU's acknowledgement and decision when they come back (console.md).

Serial devices are read in thread workers (pyserial, the same streaming codecs as the
hub); readings and errors are posted to the screen as messages. The bilan is a
:class:`~protocols.models.BilanBody` sealed by :class:`~console.services.BilanOutbox`
(the station's enrolled key) and delivered over MQTT or into the local core. The
résident list is the site's known residents (bound devices, observations); identities
come from the EHPAD's roster file when given (``--roster``), else the nurse types them.
"""

from __future__ import annotations

import threading
import time
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    Select,
    Static,
    TextArea,
)

from console.auth import Action, Session, Target
from console.services import BilanOutbox
from console.tui._app import SamuApp
from console.tui._backend import Backend
from console.tui._format import age, short_case
from protocols import has_control

#: UCUM units as a nurse reads them.
_UNIT_SHOWN = {"mm[Hg]": "mmHg", "Cel": "°C", "%": "%", "/min": "/min"}
#: What a decoded reading carries → LOINC code, UCUM unit, label.
READING_CODES = {
    "spo2_pct": ("59408-5", "%", "SpO₂"),
    "pulse_bpm": ("8867-4", "/min", "Pouls"),
    "systolic_mmhg": ("8480-6", "mm[Hg]", "PAS"),
    "diastolic_mmhg": ("8462-4", "mm[Hg]", "PAD"),
    "temperature_c": ("8310-5", "Cel", "Température"),
    "glucose_mgdl": ("41653-7", "mg/dL", "Glycémie"),
    "weight_kg": ("29463-7", "kg", "Poids"),
}


@dataclass(frozen=True)
class SerialPort:
    """``--serial PORT:FORMAT`` (the port may be a pyserial URL: split on the last ``:``)."""

    url: str
    fmt: str

    @classmethod
    def parse(cls, text: str) -> SerialPort:
        from protocols.codecs import get_codec

        url, sep, fmt = text.rpartition(":")
        if not sep or not url or not fmt:
            raise ValueError(f"--serial {text!r}: expected PORT:FORMAT (e.g. /dev/ttyUSB0:sbf1)")
        try:
            get_codec(fmt)
        except (KeyError, ValueError):
            raise ValueError(f"--serial {text!r}: unknown format {fmt!r}") from None
        return cls(url, fmt)


@dataclass
class RosterEntry:
    """One resident of the EHPAD's roster (identity and DLU, as the EHPAD keeps them)."""

    resident: str
    identity: dict[str, Any] = field(default_factory=dict)
    dlu: dict[str, Any] | None = None


def load_roster(path: Path) -> dict[str, RosterEntry]:
    """``[[residents]] id = "res-0142", birth_name, first_names, birth_date, sex[, dlu]``.

    Raises:
        ValueError: unreadable file or entry (the message names it).
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"--roster {path}: {exc}") from None
    out: dict[str, RosterEntry] = {}
    for i, entry in enumerate(data.get("residents", [])):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise ValueError(f"--roster {path}: residents[{i}] needs an id")
        _check_text(entry, f"--roster {path}: residents[{i}]")
        ident = {k: v for k, v in entry.items() if k not in ("id", "dlu")}
        names = ident.get("first_names")
        if isinstance(names, str):
            ident["first_names"] = names.split()  # "Jeanne Marie" → ["Jeanne", "Marie"]
        elif names is not None and not (
            isinstance(names, list) and all(isinstance(n, str) for n in names)
        ):
            raise ValueError(f"--roster {path}: residents[{i}].first_names: a list of names")
        out[entry["id"]] = RosterEntry(entry["id"], ident, entry.get("dlu"))
    return out


def _check_text(value: Any, where: str) -> None:
    """A roster is the EHPAD's own file: a control character in it is a mistake (or an
    attack on the terminal), refused with where it is."""
    if isinstance(value, str):
        if has_control(value):
            raise ValueError(f"{where}: a control character in {value[:40]!r}")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_text(v, f"{where}.{k}")
    elif isinstance(value, list):
        for k, v in enumerate(value):
            _check_text(v, f"{where}[{k}]")


class Reading(Message):
    """A decoded reading from one of the station's ports (posted by a thread worker)."""

    def __init__(self, port: str, kind: str, values: dict[str, Any], error: str | None) -> None:
        super().__init__()
        self.port = port
        self.kind = kind
        self.values = values
        self.error = error
        self.at = time.time()


class StationScreen(Screen[None]):
    """Resident list, live readings, the bilan form, the SAMU's replies."""

    CSS = """
    #left { width: 36; }
    #residents { height: 1fr; }
    #dlu { height: auto; max-height: 12; border-top: solid $accent; padding: 0 1; }
    #right { width: 1fr; }
    #live { height: 9; }
    #form { height: 1fr; }
    #form Input, #form Select { width: 1fr; }
    .row { height: auto; }
    .row Label { width: 18; padding-top: 1; }
    #notes { height: 5; }
    #status { height: auto; background: $boost; padding: 0 1; }
    #replies { height: 6; }
    """

    BINDINGS = [
        Binding("ctrl+s", "send", "Envoyer le bilan", id="station.send"),
        Binding("ctrl+r", "reset", "Nouveau bilan", id="station.reset"),
        Binding("ctrl+d", "app.logout", "Déconnexion", id="app.logout"),
    ]

    HELP = """\
**Nurse station**: pick the resident on the left (their DLU shows below), check the
live readings, fill in the flags, respiration rate, consciousness and oxygen, the
complaint and free text, then ctrl+s sends the bilan to the SAMU. The SAMU's
acknowledgement and decision appear at the bottom.
"""

    def __init__(self, site: str, roster: dict[str, RosterEntry]) -> None:
        super().__init__()
        self.site = site
        self.roster = roster
        self.resident: str | None = None
        self.latest: dict[str, tuple[float, float, str]] = {}  # code → (value, at, port)
        self.sent: list[tuple[str, str]] = []  # (resident, message id)

    @property
    def station(self) -> StationApp:
        assert isinstance(self.app, StationApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="left"):
                yield DataTable(id="residents", cursor_type="row")
                yield Static("", id="dlu")
            with Vertical(id="right"):
                yield DataTable(id="live", cursor_type="none")
                with VerticalScroll(id="form"):
                    yield Static("Choisir un résident à gauche.", id="who")
                    for key, title in (("birth_name", "Nom de naissance"),
                                       ("first_names", "Prénom(s)"),
                                       ("birth_date", "Né(e) le (AAAA-MM-JJ)")):  # fmt: skip
                        with Horizontal(classes="row"):
                            yield Label(title)
                            yield Input(id=f"id-{key}")
                    with Horizontal(classes="row"):
                        yield Label("Sexe")
                        yield Select([("F", "F"), ("M", "M"), ("Autre", "O"), ("Inconnu", "UN")],
                                     id="id-sex", prompt="sexe")  # fmt: skip
                    with Horizontal(classes="row"):
                        yield Label("Motif d'appel")
                        yield Input(id="complaint", placeholder="obligatoire")
                    with Horizontal(classes="row"):
                        yield Checkbox("Chute", id="fall")
                        yield Checkbox("Douleur thoracique", id="chest_pain")
                        yield Checkbox("Confusion nouvelle", id="new_confusion")
                        yield Checkbox("Arrêt cardiaque", id="cardiac_arrest")
                    with Horizontal(classes="row"):
                        yield Label("FAST")
                        yield Checkbox("Visage", id="fast_face")
                        yield Checkbox("Bras", id="fast_arm")
                        yield Checkbox("Parole", id="fast_speech")
                    with Horizontal(classes="row"):
                        yield Label("Douleur (0-10)")
                        yield Input(id="pain", placeholder="non évaluée", max_length=2)
                        yield Label("FR (/min)")
                        yield Input(id="resp_rate", placeholder="fréquence respiratoire")
                    with Horizontal(classes="row"):
                        yield Label("Conscience")
                        yield Select([("A — alerte", "A"), ("C — confusion", "C"),
                                      ("V — voix", "V"), ("P — douleur", "P"),
                                      ("U — aucune", "U")], id="consciousness",
                                     prompt="ACVPU")  # fmt: skip
                        yield Checkbox("Sous oxygène", id="on_oxygen")
                    yield Label("Texte libre")
                    yield TextArea(id="notes")
                    yield Button("Envoyer le bilan (ctrl+s)", id="send", variant="primary")
                yield Static("", id="status")
                yield DataTable(id="replies", cursor_type="none")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#residents", DataTable).add_columns("Résident", "Nom")
        self.query_one("#live", DataTable).add_columns("Port", "Mesure", "Valeur", "Il y a")
        self.query_one("#replies", DataTable).add_columns(
            "Résident", "Affaire", "Priorité", "Statut", "Décision"
        )
        self._load_residents()
        self.set_interval(2.0, self._follow_replies)
        self.set_interval(1.0, self._render_live)

    @work(exclusive=True, exit_on_error=False, group="residents")
    async def _load_residents(self) -> None:
        station = self.station
        api = await station.wait_api()
        assert station.session is not None
        try:
            refs = await api.residents(station.session, self.site)
        except Exception as exc:
            self.query_one("#status", Static).update(f"Residents: {exc}")
            return
        table = self.query_one("#residents", DataTable)
        table.clear()
        for ref in sorted(set(refs) | set(self.roster)):
            entry = self.roster.get(ref)
            name = ""
            if entry is not None:
                first = entry.identity.get("first_names") or []
                name = f"{entry.identity.get('birth_name', '')} {' '.join(first)}".strip()
            table.add_row(ref, name, key=ref)
        if table.row_count == 0:
            self.query_one("#who", Static).update(
                "No resident known at this site yet: type the identity below."
            )

    @on(DataTable.RowHighlighted, "#residents")
    def _pick(self, event: DataTable.RowHighlighted) -> None:
        ref = None if event.row_key.value is None else str(event.row_key.value)
        if ref is None:
            return
        self.resident = ref
        entry = self.roster.get(ref)
        self.query_one("#who", Static).update(f"Bilan pour [b]{ref}[/b] — site {self.site}")
        ident = entry.identity if entry else {}
        self.query_one("#id-birth_name", Input).value = str(ident.get("birth_name", ""))
        self.query_one("#id-first_names", Input).value = " ".join(ident.get("first_names", []))
        self.query_one("#id-birth_date", Input).value = str(ident.get("birth_date", ""))
        sex = ident.get("sex")
        self.query_one("#id-sex", Select).value = (
            sex if sex in ("F", "M", "O", "UN") else Select.NULL
        )
        dlu = entry.dlu if entry else None
        if dlu:
            # Free text is shown as text: "<img src=x onerror=…>" or "[b]" in a DLU is
            # what the EHPAD wrote, not markup to interpret (it once crashed the station).
            lines = [f"[b]DLU[/b] de {escape(ref)}"]
            for key, title in (("history", "Antécédents"), ("allergies", "Allergies"),
                               ("treatments", "Traitements")):  # fmt: skip
                if dlu.get(key):
                    items = dlu[key] if isinstance(dlu[key], list) else [dlu[key]]
                    lines.append(f"{title}: {escape(', '.join(str(v) for v in items))}")
            if dlu.get("advance_directives"):
                lines.append(f"Directives: {escape(str(dlu['advance_directives']))}")
            self.query_one("#dlu", Static).update("\n".join(lines))
        else:
            self.query_one("#dlu", Static).update(f"No DLU on the roster for {ref}.")

    # ------------------------------------------------------------------ live readings

    def on_reading(self, message: Reading) -> None:
        if message.error:
            self.query_one("#status", Static).update(
                f"{message.port}: frame refused ({message.error})"
            )
            return
        for key, value in message.values.items():
            if key in READING_CODES and isinstance(value, int | float):
                code = READING_CODES[key][0]
                self.latest[code] = (float(value), message.at, message.port)

    def _render_live(self) -> None:
        table = self.query_one("#live", DataTable)
        labels = {code: (label, unit) for code, unit, label in READING_CODES.values()}
        with self.app.batch_update():
            table.clear()
            for code, (value, at, port) in sorted(self.latest.items()):
                label, unit = labels[code]
                when = age(datetime.fromtimestamp(at, UTC).isoformat())
                shown = _UNIT_SHOWN.get(unit, unit)  # UCUM on the wire, the usual sign here
                table.add_row(Text(port), Text(label), Text(f"{value:g} {shown}"), Text(when))
            if not self.latest:
                ports = ", ".join(p.url for p in self.station.ports) or "none (--serial)"
                table.add_row("–", f"no reading yet (ports: {ports})", "", "")

    # ------------------------------------------------------------------ the bilan

    def _flag(self, wid: str) -> bool:
        return bool(self.query_one(f"#{wid}", Checkbox).value)

    def build_bilan(self) -> Any:
        """The form as a :class:`BilanBody` (raises ValueError with what is wrong)."""
        from protocols.models import BilanBody

        nurse = self.station.nurse
        first = self.query_one("#id-first_names", Input).value.split()
        sex = self.query_one("#id-sex", Select).value
        complaint = self.query_one("#complaint", Input).value.strip()
        if not complaint:
            raise ValueError("the complaint (motif d'appel) is required")
        pain_text = self.query_one("#pain", Input).value.strip()
        pain = None
        if pain_text:
            if not pain_text.isdigit() or not 0 <= int(pain_text) <= 10:
                raise ValueError(f"pain {pain_text!r}: a whole number from 0 to 10")
            pain = int(pain_text)
        now = datetime.now(UTC)
        observations: list[dict[str, Any]] = []
        rr = self.query_one("#resp_rate", Input).value.strip()
        if rr:
            try:
                observations.append({"code": "9279-1", "value": float(rr), "unit": "/min",
                                     "time": now, "method": "manual"})  # fmt: skip
            except ValueError:
                raise ValueError(f"respiration rate {rr!r}: a number per minute") from None
        acvpu = self.query_one("#consciousness", Select).value
        if acvpu is not Select.NULL:
            observations.append({"code": "67775-7", "value": str(acvpu), "time": now,
                                 "method": "manual"})  # fmt: skip
        units = {code: unit for code, unit, _ in READING_CODES.values()}
        for code, (value, at, _) in self.latest.items():
            if time.time() - at <= 300:  # a reading older than 5 min is not "now"
                observations.append({"code": code, "value": value, "unit": units[code],
                                     "time": datetime.fromtimestamp(at, UTC),
                                     "method": "device"})  # fmt: skip
        face, arm, speech = (self._flag("fast_face"), self._flag("fast_arm"),
                             self._flag("fast_speech"))  # fmt: skip
        fast_assessed = face or arm or speech
        entry = self.roster.get(self.resident or "")
        data = {
            "v": 1,
            "nurse": nurse,
            "resident": {
                "resident": self.resident,
                "birth_name": self.query_one("#id-birth_name", Input).value.strip(),
                "first_names": first,
                "birth_date": self.query_one("#id-birth_date", Input).value.strip(),
                "sex": None if sex is Select.NULL else sex,
            },
            "dlu": ({"palliative_care": False, **entry.dlu} if entry and entry.dlu else None),
            "complaint": complaint,
            "flags": {
                "fall": self._flag("fall"),
                "chest_pain": self._flag("chest_pain"),
                "fast": {"face": face, "arm": arm, "speech": speech} if fast_assessed else None,
                "pain": pain,
                "new_confusion": self._flag("new_confusion"),
                "cardiac_arrest": self._flag("cardiac_arrest"),
            },
            "observations": observations,
            "on_oxygen": self._flag("on_oxygen"),
            "notes": self.query_one("#notes", TextArea).text.strip() or None,
        }
        try:
            return BilanBody.model_validate(data)
        except ValidationError as exc:
            first_error = exc.errors()[0]
            where = ".".join(str(p) for p in first_error["loc"])
            raise ValueError(f"{where}: {first_error['msg']}") from None

    @on(Button.Pressed, "#send")
    def action_send(self) -> None:
        status = self.query_one("#status", Static)
        if self.resident is None and not self.query_one("#id-birth_name", Input).value:
            status.update("Choose the resident first (or type the identity).")
            return
        try:
            body = self.build_bilan()
        except ValueError as exc:
            status.update(f"[b red]Not sent[/]: {exc}")
            return
        self._send(body)

    @work(exclusive=True, exit_on_error=False, group="send")
    async def _send(self, body: Any) -> None:
        status = self.query_one("#status", Static)
        station = self.station
        assert station.session is not None and station.outbox is not None
        status.update("Sending…")
        try:
            sent = await station.outbox.send(station.session, body)
        except Exception as exc:
            status.update(f"[b red]Not sent[/]: {exc} (nothing was lost: the form is kept)")
            return
        self.sent.append((str(body.resident.resident or ""), sent.message_id))
        status.update(
            f"Bilan sent at {sent.sent_at[11:19]} (message {sent.message_id[:8]}…); "
            "waiting for the SAMU's acknowledgement below."
        )

    def action_reset(self) -> None:
        for wid in ("complaint", "pain", "resp_rate"):
            self.query_one(f"#{wid}", Input).value = ""
        for cb in self.query(Checkbox):
            cb.value = False
        self.query_one("#consciousness", Select).value = Select.NULL
        self.query_one("#notes", TextArea).text = ""

    @work(exclusive=True, exit_on_error=False, group="replies")
    async def _follow_replies(self) -> None:
        station = self.station
        if station.session is None:
            return
        api = await station.wait_api()
        try:
            board = await api.board(station.session)
        except Exception as exc:
            self.query_one("#status", Static).update(f"SAMU replies: {exc}")
            return
        table = self.query_one("#replies", DataTable)
        rows = []
        for row in board.rows:
            decision = "—"
            try:
                detail = await api.case(station.session, row.case_id)
                if detail.decisions:
                    d = detail.decisions[-1]
                    decision = f"{d['priority']} {d['decision_type']} {d.get('resource') or ''}"
            except Exception:
                decision = "(not visible)"
            ack = "reçu" if row.status in ("ACTIF", "PROGRAM") else row.status
            rows.append((", ".join(p.split("/", 1)[-1] for p in row.patients),
                         short_case(row.case_id), row.decided_priority or row.suggested_priority,
                         ack, decision))  # fmt: skip
        with self.app.batch_update():
            table.clear()
            for r in rows:
                table.add_row(*r)


class StationApp(SamuApp):
    """The EHPAD nurse station (see the module docstring)."""

    TITLE = "EHPAD — station infirmière"

    def __init__(
        self,
        backend: Backend,
        *,
        site: str,
        outbox: BilanOutbox | None,
        ports: list[SerialPort] | None = None,
        roster: dict[str, RosterEntry] | None = None,
        quit_after_s: float | None = None,
    ) -> None:
        super().__init__(backend, quit_after_s=quit_after_s)
        self.site = site
        self.outbox = outbox
        self.ports = list(ports or [])
        self.roster = roster or {}
        self.nurse: dict[str, str] = {}
        self._stop_ports = threading.Event()

    def on_mount(self) -> None:
        # No super().on_mount(): Textual itself calls every class's on_mount along the
        # MRO, so calling it here too started the system (hub, simulator) twice.
        self.show_login()

    def show_login(self) -> None:
        from console.tui._login import LoginScreen

        self.push_screen(LoginScreen(f"EHPAD {self.site} — station infirmière"), self._signed_in)

    def _signed_in(self, session: Session | None) -> None:
        if session is None:
            return
        accounts = self.backend.services.accounts
        if session.site != self.site or not accounts.permits(
            session, Action.BILAN_SEND, Target(f"site:{self.site}", site=self.site)
        ):
            self.notify(
                f"{session.user_id} is not a nurse of {self.site}: the station is for "
                "this EHPAD's ide_ehpad accounts.",
                severity="error",
                timeout=10,
            )
            self.session = session
            self.run_worker(self._logout(), exit_on_error=False)
            return
        self.session = session
        self.nurse = {"rpps": "00000000000", "name": session.user_id}
        self.sub_title = f"{session.user_id} — {self.site}"
        self.push_screen(StationScreen(self.site, self.roster))
        for port in self.ports:
            self._read_port(port)

    @work(thread=True, exit_on_error=False, group="serial")
    def _read_port(self, port: SerialPort) -> None:
        """One port, blocking reads in a thread; every reading posted as a message."""
        import serial

        from console.ingest import DEFAULT_BAUD
        from protocols.codecs import DecodeError, get_codec

        decoder = get_codec(port.fmt).decoder()
        label = f"{port.url}:{port.fmt}"
        while not self._stop_ports.is_set():
            try:
                link = serial.serial_for_url(
                    port.url, baudrate=DEFAULT_BAUD.get(port.fmt, 9600), timeout=0.5
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                self.post_message(Reading(label, "", {}, f"cannot open: {exc}"))
                self._stop_ports.wait(2.0)  # retry an unplugged device every 2 s
                continue
            with link:
                while not self._stop_ports.is_set():
                    try:
                        data = link.read(256)
                    except (serial.SerialException, OSError) as exc:
                        self.post_message(Reading(label, "", {}, f"disconnected: {exc}"))
                        break
                    for item in decoder.feed(data) if data else []:
                        if isinstance(item, DecodeError):
                            self.post_message(Reading(label, "", {}, item.reason))
                        else:
                            values = dict(getattr(item, "values", {}) or {})
                            self.post_message(Reading(label, getattr(item, "kind", ""), values,
                                                      None))  # fmt: skip

    def on_reading(self, message: Reading) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, StationScreen):
                screen.on_reading(message)

    async def action_quit(self) -> None:
        self._stop_ports.set()
        await super().action_quit()

    def exit(self, *args: Any, **kwargs: Any) -> None:
        # A thread worker blocked in a read loop would keep the process alive after
        # the app closed (style.md): every way out stops the port readers first.
        self._stop_ports.set()
        super().exit(*args, **kwargs)

    def on_unmount(self) -> None:
        self._stop_ports.set()
