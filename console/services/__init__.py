"""The one service API every caller (TUI, CLI, hub, replay) goes through.

:func:`open_services` is the composition root: it turns :class:`~console.settings.Settings`
into the assembled system (:class:`Services`), in one place and one order, so no front
end wires a store, a key or a broker by itself.
"""

from console.services._api import (
    MAX_BACKLOG,
    Alarm,
    AuditStatus,
    BilanView,
    BoardDelta,
    BoardRow,
    BoardSnapshot,
    CaseDetail,
    CompteRenduReply,
    DeviceRow,
    ExportReply,
    LockPolicy,
    ManualCaseReply,
    ParameterView,
    RegulationService,
    TimelineEntry,
    TrailEntry,
    TriageView,
    VideoEntry,
    VitalPoint,
)
from console.services._bilan import (
    STATION_DEVICE,
    BilanError,
    BilanOutbox,
    SentBilan,
    incoming,
)
from console.services._compose import (
    Services,
    ServicesError,
    broker_config,
    check_database_path,
    open_services,
)
from console.services._core import Received, RegulationCore
from console.services._hub import Hub

__all__ = [
    "MAX_BACKLOG",
    "STATION_DEVICE",
    "Alarm",
    "AuditStatus",
    "BilanError",
    "BilanOutbox",
    "BilanView",
    "BoardDelta",
    "BoardRow",
    "BoardSnapshot",
    "CaseDetail",
    "CompteRenduReply",
    "DeviceRow",
    "ExportReply",
    "Hub",
    "LockPolicy",
    "ManualCaseReply",
    "ParameterView",
    "Received",
    "RegulationCore",
    "RegulationService",
    "SentBilan",
    "Services",
    "ServicesError",
    "TimelineEntry",
    "TrailEntry",
    "TriageView",
    "VideoEntry",
    "VitalPoint",
    "broker_config",
    "check_database_path",
    "incoming",
    "open_services",
]
