"""Hub Santé code lists with their French labels (the official nomenclature CSVs).

The lists are read from the official files (``HubSante.<list>.csv``: ``code``, then the
label of its level in ``label_n1``/``label_n2``/…), never retyped: a decision must carry
the national codes exactly, and the labels are what the physician reads. The directory
is a setting (``SAMU_HUB_SANTE_DIR``); by default the reference copy beside a checkout
(``../shared/reference/hub-sante``) is used when it exists. Without the files, decisions
are refused with a message naming the setting: a decision with made-up codes would be
worse than none.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

#: Lists a decision (and a case opened by hand) uses: field → official list name.
LISTS = {
    "priority": "priorite",
    "care_level": "niveauSoin",
    "decision_type": "typeDecision",
    "resource": "typeRessource",
    "orientation": "typeOrientation",
    "motif": "motif",
    "caller": "typeAppelant",
}

_DEFAULT = Path(__file__).resolve().parents[3] / "shared" / "reference" / "hub-sante"


class CodesError(ValueError):
    """The nomenclatures are missing or a code is not in its list."""


@dataclass(frozen=True)
class CodeList:
    name: str
    labels: dict[str, str]

    def label(self, code: str) -> str:
        try:
            return self.labels[code]
        except KeyError:
            shown = ", ".join(list(self.labels)[:12])
            more = "…" if len(self.labels) > 12 else ""
            raise CodesError(f"{code!r} is not a {self.name} code (one of {shown}{more})") from None


def default_dir() -> Path:
    return _DEFAULT


@cache
def load_codes(directory: Path | None = None) -> dict[str, CodeList]:
    """field → its code list (see :data:`LISTS`).

    Raises:
        CodesError: the directory or a file is missing or not the official format.
    """
    base = (directory or _DEFAULT) / "nomenclatures"
    if not base.is_dir():
        raise CodesError(
            f"Hub Santé nomenclatures not found in {base}: set SAMU_HUB_SANTE_DIR to the "
            "directory holding nomenclatures/HubSante.*.csv"
        )
    out: dict[str, CodeList] = {}
    for field, name in LISTS.items():
        path = base / f"HubSante.{name}.csv"
        try:
            with path.open(encoding="utf-8", newline="") as fh:
                rows = list(csv.DictReader(fh))
        except OSError as exc:
            raise CodesError(f"{path}: {exc.strerror or exc}") from None
        labels: dict[str, str] = {}
        for row in rows:
            code = (row.get("code") or "").strip()
            if not code:
                continue
            label = next(
                (
                    v.strip()
                    for k, v in row.items()
                    if k
                    and (k.startswith("label_n") or k.startswith("Libellé niveau"))
                    and v
                    and v.strip()
                    and not v.startswith("#")
                ),
                code,
            )
            labels[code] = label
        if not labels:
            raise CodesError(f"{path}: no codes (not the official nomenclature format)")
        out[field] = CodeList(name, labels)
    return out
