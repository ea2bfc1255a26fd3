"""Turning a scenario file into a running simulation.

This lives in :mod:`scenarios`, not in :mod:`firmware_sim`, so the import graph stays a
tree: the simulator knows nothing of scenario files, scenarios build on its public API,
and the replay engine (which also drives the console core) sits above both.

Everything a scenario describes becomes simulator objects here: residents (baseline and
course), bedside devices with their faults, implants and their transmitters, video
sessions, nurse bilans, the ``[load]`` fleet. Transports are injected (a byte sink per
serial device, a message link per MQTT sender), so the same scenario runs in process on
a virtual clock, on ptys for a console, or through a real broker. Bedside devices with
``transport = "mqtt"`` are read by an in-process EHPAD gateway per site that publishes
their envelopes, as a real EHPAD would.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from firmware_sim import (
    ByteSink,
    Clock,
    DeviceSpec,
    EnvelopeSender,
    FaultKind,
    FaultPlan,
    FaultWindow,
    KeyStore,
    Simulation,
    death_will,
    profile_for,
    rng_for,
)
from firmware_sim.gateway import GatewayCore, GatewayPort, first_will
from firmware_sim.implants import EpisodePlan, Implant, LeadChange, Transmitter
from firmware_sim.implants import Window as OfflineWindow
from firmware_sim.physiology import (
    PRESETS,
    Baseline,
    Course,
    NoiseSource,
    Window,
    ramp,
)
from firmware_sim.transports import InprocBus, InprocLink, InprocPort, MessageLink, OutMessage
from firmware_sim.video import VIDEO_GATEWAY, VideoSession, VideoStep
from protocols import (
    BilanBody,
    BilanFlags,
    DluSummary,
    FastSigns,
    Nurse,
    Observation,
    ResidentIdentity,
    TrustedPerson,
)
from protocols.models import LoincCodeStr
from scenarios._model import Bilan, Scenario
from scenarios._model import Patient as ScenarioPatient

#: (site, sender id, Last Will factory or None) → the link that sender publishes on.
LinkFactory = Callable[[str, str, Callable[[], OutMessage] | None], MessageLink]
#: A serial device's spec → its byte sink (pty, socket, in-process).
SinkFactory = Callable[[DeviceSpec], ByteSink]

NURSE_STATION = "nurse-station"


@dataclass
class ScenarioRun:
    """A built scenario, ready to :meth:`start`."""

    scenario: Scenario
    sim: Simulation
    keys: KeyStore
    gateways: dict[str, GatewayCore] = field(default_factory=dict)
    transmitters: list[Transmitter] = field(default_factory=list)
    videos: list[VideoSession] = field(default_factory=list)
    bilans_sent: list[BilanBody] = field(default_factory=list)
    mqtt_topics: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        self.sim.start()
        for tx in self.transmitters:
            tx.start()
        for v in self.videos:
            v.start()


def fault_windows(faults: list) -> tuple[FaultWindow, ...]:  # type: ignore[type-arg]
    """Scenario faults → runtime fault windows."""
    return tuple(
        FaultWindow(
            FaultKind(f.kind), f.start, math.inf if f.end is None else f.end, f.rate, f.value
        )
        for f in faults
    )


def course_of(patient: ScenarioPatient, extra: Course | None = None) -> Course:
    """A resident's scripted course from the scenario's ``[[patients.course]]`` steps."""
    course = extra or Course()
    for step in patient.course:
        if step.vital is not None:
            course += ramp(
                step.vital,
                step.at,
                to=step.to,
                delta=step.delta,
                rate_per_min=step.rate_per_min,
                over_s=step.over,
            )
        elif step.preset is not None:
            course += PRESETS[step.preset](step.at, **step.params)  # type: ignore[operator]
        elif step.consciousness is not None:
            course += Course(consciousness=((step.at, step.consciousness),))
        elif step.rhythm is not None:
            end = math.inf if step.until is None else step.until
            course += Course(rhythms=(Window(step.at, end, step.rhythm),))
        if step.event is not None:
            course += Course(markers=((step.at, step.event),))
            if step.event == "new_confusion":
                course += Course(consciousness=((step.at, "C"),))
    return course


def build_scenario(
    scenario: Scenario,
    clock: Clock,
    *,
    sink_for: SinkFactory | None = None,
    link_for: LinkFactory | None = None,
    keys: KeyStore | None = None,
    transport: str | None = None,
    keep_log: bool = False,
    artefacts: bool = True,
) -> ScenarioRun:
    """Build ``scenario`` on ``clock``.

    Args:
        sink_for: byte sink of each serial device (default: in-process buffers).
        link_for: message link of each MQTT sender (required when the scenario has
            implants, video, bilans or gatewayed devices).
        keys: sender keys (default: derived from the scenario seed).
        transport: override every device's transport (``inproc``, ``serial``, ``mqtt``).
        keep_log: devices keep every record they send (tests).
        artefacts: spontaneous sensor artefacts.
    """
    head = scenario.scenario
    seed = head.seed
    keys = keys or KeyStore.from_seed(seed)
    sim = Simulation(clock, seed=seed, keep_log=keep_log, artefacts=artefacts)
    run = ScenarioRun(scenario, sim, keys)
    sink_for = sink_for or (lambda spec: InprocPort())

    def need_link(
        site: str, sender: str, will: Callable[[], OutMessage] | None = None
    ) -> MessageLink:
        if link_for is None:
            raise ValueError("this scenario publishes over MQTT: a message link is needed")
        return link_for(site, sender, will)

    # Implant episodes are rhythm windows of the patient: collect them before the patients.
    implant_rhythms: dict[str, Course] = {}
    for imp in scenario.implants:
        for ev in imp.events:
            kind = {"vt_episode": "VT", "vf_episode": "VF", "af_episode": "AF"}.get(ev.kind)
            if kind is not None:
                window = Window(ev.at, ev.at + (ev.duration or 20.0), kind)
                implant_rhythms[imp.patient] = implant_rhythms.get(imp.patient, Course()) + Course(
                    rhythms=(window,)
                )
    for p in scenario.patients:
        base = Baseline.draw(rng_for(seed, "baseline", p.id))
        if p.baseline:
            base = base.with_means(**p.baseline)
        if p.variability:
            base = base.with_sds(**p.variability)
        sim.patient(p.id, baseline=base, course=course_of(p, implant_rhythms.get(p.id)))

    # Bedside devices (and the [load] fleet).
    specs: list[tuple[DeviceSpec, str]] = []
    for d in scenario.devices:
        spec = DeviceSpec(
            device_id=d.id,
            kind=d.kind,
            fmt=d.format,
            patient=d.patient,
            site=d.site or head.site,
            period_s=d.period,
            profile=d.profile,
            spot_check=d.spot_check,
            battery_pct=d.battery,
            faults=fault_windows(d.faults),
            transport=d.transport,
        )
        specs.append((spec, transport or d.transport))
    if scenario.load is not None:
        load = scenario.load
        for s in range(load.sites):
            site = f"{load.site_prefix}{s:03d}"
            for j in range(load.devices_per_site):
                kind = load.kinds[j % len(load.kinds)]
                fmt = load.formats[j % len(load.formats)]
                spec = DeviceSpec(
                    # Unique across the fleet: the simulation addresses devices by id.
                    device_id=f"{kind}-{s:03d}-{j + 1:02d}",
                    kind=kind,
                    fmt=fmt,
                    patient=f"{site}-r{j + 1:02d}",
                    site=site,
                    period_s=load.period,
                    transport=load.transport,
                )
                specs.append((spec, transport or load.transport))
    for spec, how in specs:
        if how == "mqtt":
            core = run.gateways.get(spec.site)
            if core is None:
                core = _gateway(run, spec.site, need_link, seed)
            sink: ByteSink = InprocPort(on_bytes=functools.partial(core.feed, spec.device_id))
            device = sim.add_serial(spec, sink)
            core.add_port(
                GatewayPort(
                    spec.device_id, "inproc://", profile_for(spec), spec.patient, device.hal.faults
                )
            )
            run.mqtt_topics[spec.device_id] = core.topics()[spec.device_id]
        else:
            sim.add_serial(spec, sink_for(spec))

    # Implants and their transmitters.
    for imp in scenario.implants:
        site = imp.site or head.site
        rng = rng_for(seed, "implant", site, imp.id)
        implant = Implant(
            imp.id,
            imp.type,
            sim.patient(imp.patient),
            NoiseSource(rng),
            model=imp.model,
            serial=imp.serial,
            longevity_years=imp.battery_longevity_years,
        )
        offline: list[OfflineWindow] = []
        down: float | None = None
        for ev in sorted(imp.events, key=lambda e: e.at):
            kind_map = {"vt_episode": "VT", "vf_episode": "VF", "af_episode": "AT-AF"}
            if ev.kind in kind_map:
                success = ev.result == "success"
                implant.plan_episode(
                    EpisodePlan(ev.at, kind_map[ev.kind], ev.duration or 20.0, ev.therapy, success)  # type: ignore[arg-type]
                )
            elif ev.kind in ("battery_rrt", "battery_eos"):
                status: Literal["RRT", "EOS"] = "RRT" if ev.kind == "battery_rrt" else "EOS"
                clock.call_later(ev.at, functools.partial(implant.battery_milestone, status, ev.at))
            elif ev.kind in ("lead_impedance", "lead_failure"):
                lead = ev.lead or "RV"
                to = ev.to_ohm if ev.to_ohm is not None else 4000.0
                over = (ev.over or 0.0) if ev.kind == "lead_impedance" else 0.0
                implant.change_lead(LeadChange(lead, ev.at, to, over))
            elif ev.kind == "transmitter_disconnect":
                down = ev.at if down is None else down
            elif ev.kind == "transmitter_reconnect" and down is not None:
                offline.append(OfflineWindow(down, ev.at))
                down = None
        if down is not None:
            offline.append(OfflineWindow(down, math.inf))
        windows = fault_windows(imp.faults)
        offline += [
            OfflineWindow(w.start, w.end) for w in windows if w.kind is FaultKind.DISCONNECT
        ]
        holder: list[EnvelopeSender] = []
        link = need_link(site, imp.id, functools.partial(death_will, holder))
        sender = EnvelopeSender(
            site,
            imp.id,
            keys.key(site, imp.id),
            clock,
            link,
            rng=rng_for(seed, "envelopes", site, imp.id),
            faults=FaultPlan(list(windows), rng_for(seed, "faults", site, imp.id)),
        )
        holder.append(sender)
        tx = Transmitter(
            implant,
            sender,
            clock,
            every_s=imp.transmissions.every,
            first_at=imp.transmissions.first_at,
            offline=offline,
            on_offline=getattr(link, "set_offline", None),
        )
        for ev in imp.events:
            if ev.kind == "transmission":
                tx.request_remote(ev.at)
        run.transmitters.append(tx)
        run.mqtt_topics[imp.id] = sender.topic("implant")

    # Video sessions, sent by the centre's video-link gateway.
    for v in scenario.video:
        link = need_link(head.site, VIDEO_GATEWAY, None)
        sender = EnvelopeSender(
            head.site,
            VIDEO_GATEWAY,
            keys.key(head.site, VIDEO_GATEWAY),
            clock,
            link,
            rng=rng_for(seed, "envelopes", "video", v.session),
        )
        steps = [
            VideoStep(e.at, e.event, e.who, e.duration, e.bitrate_kbps, e.frame_rate, e.loss_pct)
            for e in v.events
        ]
        session = VideoSession(
            v.session,
            v.case,
            v.phone,
            steps,
            sender,
            clock=clock,
            noise=NoiseSource(rng_for(seed, "video", v.session)),
            quality_every_s=v.quality_every,
        )
        run.videos.append(session)
        run.mqtt_topics[v.session] = f"samu/v1/video/{v.session}"

    # Nurse bilans.
    patients = {p.id: p for p in scenario.patients}
    for b in scenario.bilans:
        site = b.site or head.site
        link = need_link(site, NURSE_STATION, None)
        sender = EnvelopeSender(
            site,
            NURSE_STATION,
            keys.key(site, NURSE_STATION),
            clock,
            link,
            rng=rng_for(seed, "envelopes", site, NURSE_STATION, str(b.at)),
        )

        def send_bilan(b: object = b, sender: EnvelopeSender = sender) -> None:
            body = bilan_body(b, patients, sim, sender)
            sender.send(body)
            run.bilans_sent.append(body)

        clock.call_later(b.at, send_bilan)
    return run


def inproc_links(bus: InprocBus) -> LinkFactory:
    """A link factory publishing every sender onto ``bus`` (fastest replays), wills included."""

    def factory(site: str, sender: str, will: Callable[[], OutMessage] | None) -> MessageLink:
        return InprocLink(bus, will=will)

    return factory


def _gateway(
    run: ScenarioRun, site: str, need_link: Callable[..., MessageLink], seed: int
) -> GatewayCore:
    gateway_id = f"gateway-{site}"[:64]
    holder: list[GatewayCore] = []
    link = need_link(site, gateway_id, functools.partial(first_will, holder))
    core = GatewayCore(site, gateway_id, [], link, run.keys, clock=run.sim.clock, seed=seed)
    holder.append(core)
    run.gateways[site] = core
    return core


#: Manual observations of a bilan: scenario key → LOINC code and UCUM unit.
_BILAN_CODES: tuple[tuple[str, LoincCodeStr, str | None], ...] = (
    ("heart_rate", "8867-4", "/min"),
    ("spo2", "59408-5", "%"),
    ("resp_rate", "9279-1", "/min"),
    ("systolic", "8480-6", "mm[Hg]"),
    ("diastolic", "8462-4", "mm[Hg]"),
    ("temperature", "8310-5", "Cel"),
    ("glucose", "41653-7", "mg/dL"),
    ("weight", "29463-7", "kg"),
    ("consciousness", "67775-7", None),
)


def bilan_body(
    b: object, patients: dict[str, ScenarioPatient], sim: Simulation, sender: EnvelopeSender
) -> BilanBody:
    """The nurse's bilan: identity and DLU from the scenario, vitals she measured now."""

    assert isinstance(b, Bilan)
    p = patients[b.patient]
    ident = p.identity
    if ident is not None:
        resident = ResidentIdentity(
            resident=p.id,
            birth_name=ident.birth_name,
            first_names=tuple(ident.first_names),
            used_name=ident.used_name,
            birth_date=ident.birth_date,
            sex=ident.sex,
            birthplace=ident.birthplace_code,
            ins=ident.ins,
        )
    else:  # a scenario may leave the identity out: a clearly synthetic one is used
        resident = ResidentIdentity(
            resident=p.id,
            birth_name="RESIDENT",
            first_names=(p.id,),
            birth_date=date(1940, 1, 1),
            sex="UN",
        )
    dlu = p.dlu
    trusted = None
    if dlu.trusted_person is not None:
        tp = dlu.trusted_person
        trusted = TrustedPerson(name=tp.name, relation=tp.relation, phone=tp.phone)
    summary = DluSummary(
        history=tuple(dlu.history),
        allergies=tuple(dlu.allergies),
        treatments=tuple(dlu.treatments),
        advance_directives=dlu.advance_directives,
        trusted_person=trusted,
        palliative_care=dlu.palliative,
        baseline_confusion=dlu.baseline_confusion,
        hypercapnic_respiratory_failure=p.news2_scale == 2,
    )
    flags = b.flags
    fast = None
    if flags.fast is not None:
        fast = FastSigns(face=flags.fast, arm=flags.fast, speech=flags.fast)
    now = sender.now()
    measured: dict[str, float | str] = {}
    if b.with_vitals:
        v = sim.patient(p.id).at(sim.clock.now())
        measured = {
            "heart_rate": float(round(v.heart_rate)),
            "spo2": float(round(v.spo2)),
            "resp_rate": float(round(v.resp_rate)),
            "systolic": float(round(v.systolic)),
            "diastolic": float(round(v.diastolic)),
            "temperature": round(v.temperature, 1),
            "consciousness": v.consciousness,
        }
    on_oxygen: bool | None = None
    for key, value in b.observations.items():  # what the nurse measured herself
        if key == "on_oxygen":
            on_oxygen = bool(value)
        elif isinstance(value, str):
            measured[key] = value
        else:
            measured[key] = round(float(value), 1) if key == "temperature" else float(value)
    observations = tuple(
        Observation(code=code, value=measured[key], unit=unit, time=now, method="manual")
        for key, code, unit in _BILAN_CODES
        if key in measured
    )
    return BilanBody(
        v=1,
        nurse=Nurse(rpps=b.nurse.rpps, name=b.nurse.name),
        resident=resident,
        dlu=summary,
        complaint=b.complaint,
        flags=BilanFlags(
            fall=flags.fall,
            chest_pain=flags.chest_pain,
            fast=fast,
            pain=flags.pain,
            new_confusion=flags.new_confusion,
            cardiac_arrest=flags.cardiac_arrest,
        ),
        observations=observations,
        on_oxygen=on_oxygen,
        notes=b.text or None,
    )


@dataclass(frozen=True)
class SimPlan:
    """A scenario handed to ``samu sim``'s runner (``firmware_sim.ScenarioPlan``)."""

    scenario: Scenario
    #: ``"mqtt"``: every bedside device is read by its site's gateway and published over
    #: MQTT, as an EHPAD sends them (``samu sim --scenario … --mqtt URL --gateway``).
    transport: str | None = None

    def serial_transports(self) -> dict[str, str]:
        """Serial device id → its transport (``serial`` or ``socket``)."""
        if self.transport == "mqtt":
            return {}
        return {d.id: d.transport for d in self.scenario.devices if d.transport != "mqtt"}

    def build(
        self,
        clock: Clock,
        *,
        sink_for: SinkFactory,
        link_for: LinkFactory,
        keys: KeyStore,
    ) -> ScenarioRun:
        return build_scenario(
            self.scenario,
            clock,
            sink_for=sink_for,
            link_for=link_for,
            keys=keys,
            transport=self.transport,
        )
