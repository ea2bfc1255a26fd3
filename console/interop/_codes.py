"""The nomenclature entries an RS-EDA export names, with their official labels.

Codes are chosen here (why each, in :data:`MOTIVES` and :func:`what_happened`); their
labels are read from the official CSVs of the reference directory at run time, like the
decision lists (:mod:`console.cases._codes`), so an export never carries a label typed
by hand and a code missing from the official list fails loudly instead of travelling.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

from console.cases import CodeList, CodesError

#: Location kind of an EHPAD (HubSante.lieu).
EHPAD = "L04.09.01"
#: Caller types: the EHPAD nurse, and a connected object (implant transmitter, monitor).
NURSE_CALLER = "SANTE.INF"
OBJECT_CALLER = "OBJCONNC"
#: What happened (HubSante.fait): a fall, else an illness ("Pathologie / maladie").
FALL = "C02.11.00"
ILLNESS = "C02.05.00"
#: Health motive (HubSante.motif) by bilan flag, in order of precedence.
MOTIVES: tuple[tuple[str, str], ...] = (
    ("cardiac_arrest", "M01.01"),  # suspicion d'arrêt cardiaque
    ("fast_positive", "M03.08"),  # signes d'AVC
    ("chest_pain", "M03.06"),  # douleur thoracique
    ("new_confusion", "M01.02"),  # altération de la conscience
    ("fall", "M06.03"),  # personne restant à terre suite à une chute
)
#: An implant alert without a bilan: "autre problème cardio-vasculaire".
IMPLANT_MOTIVE = "M03.13"
#: Nothing more specific: "autres motifs ou pas de motif identifié".
OTHER_MOTIVE = "M06.04"

_LISTS = {"lieu": "lieu", "fait": "fait", "motif": "motif", "appelant": "typeAppelant"}


@cache
def _load(directory: Path, name: str) -> CodeList:
    path = directory / "nomenclatures" / f"HubSante.{name}.csv"
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise CodesError(
            f"{path}: {exc.strerror or exc} (set SAMU_HUB_SANTE_DIR to the directory "
            "holding nomenclatures/HubSante.*.csv)"
        ) from None
    labels: dict[str, str] = {}
    for row in rows:
        code = (row.get("code") or "").strip()
        if not code:
            continue
        label = next(
            (
                v.strip()
                for k, v in row.items()
                if k and k.startswith("label_n") and v and v.strip()
            ),
            code,
        )
        labels.setdefault(code, label)
    return CodeList(name, labels)


def label(directory: Path, which: str, code: str) -> str:
    """The official label of ``code`` in list ``which`` (``lieu``, ``fait``, ``motif``…).

    Raises:
        CodesError: the file is missing or the code is not in it.
    """
    return _load(directory, _LISTS[which]).label(code)


def what_happened(flags: set[str]) -> str:
    return FALL if "fall" in flags else ILLNESS


def motive(flags: set[str], implant: bool) -> str:
    for flag, code in MOTIVES:
        if flag in flags:
            return code
    return IMPLANT_MOTIVE if implant else OTHER_MOTIVE
