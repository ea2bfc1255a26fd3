"""``samu triage score``: CSV in, CSV out, per the contract in design note triage.md.

Streaming in chunks of rows (default 32 Ki) so ten million rows run in bounded memory:
the ``csv`` module reads a chunk, each column is parsed through a per-column cache
(vital signs repeat a lot, so almost every cell is one dictionary lookup; a miss is
parsed exactly in :mod:`decimal` and rounded half up), the chunk becomes a
``VitalsArrays`` and is scored by the numpy engine, and the output rows are assembled
from per-value string tables and cached reason texts. Caches are bounded (cleared when
full), so memory does not grow with the input.

A bad row (unparseable number, value outside the accepted range, unknown code, wrong
number of fields) is not fatal: its scores are empty, its reasons start with ``error:``,
and the run goes on; the caller exits 1. Only an unusable input (no header, a required
column missing, malformed CSV quoting) is a usage error, exit 2, in one line: a file
separated by ``;`` (what a French spreadsheet exports), tabs or ``|`` is told so —
"the file is separated by ';': use ','" — rather than reported as lacking every
column, and a missing column is named once.

Output columns are exactly the contract's (triage.md: ``id`` … ``reasons``): tests
outside this repository read them as such. The policy that produced the rows is named
with its version and SHA-256 on stderr after the run (``samu triage score``), and
every stored triage result of the console records both.
"""

from __future__ import annotations

import csv
import itertools
import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from console.triage._arrays import ALL_PRESENT, MISSING_U8, MISSING_U16, VitalsArrays
from console.triage._news2 import (
    PRIORITY_NAMES,
    RISK_NAMES,
    format_centi,
    score_vitals,
    shock_index_centi,
)
from console.triage._policy import CONSCIOUSNESS_LEVELS, Policy
from console.triage._reasons import SEPARATOR, ReasonTexts, vital_reason_keys
from console.triage._rounding import half_up_units, parse_decimal

INPUT_COLUMNS: tuple[str, ...] = (
    "id",
    "resp_rate",
    "spo2",
    "spo2_scale",
    "on_oxygen",
    "systolic_bp",
    "heart_rate",
    "consciousness",
    "temperature",
)
OUTPUT_COLUMNS: tuple[str, ...] = (
    "id",
    "news2",
    "news2_complete",
    "news2_risk",
    "qsofa",
    "shock_index",
    "priority",
    "reasons",
)
#: Other delimiters recognised in a header, with how the message names them.
_OTHER_DELIMITERS: tuple[tuple[str, str], ...] = ((";", "';'"), ("\t", "tabs"), ("|", "'|'"))
#: Accepted ranges (inclusive, checked on the value as written) and decimals kept.
LIMITS: dict[str, tuple[int, int, int]] = {
    "resp_rate": (0, 80, 0),
    "spo2": (0, 100, 0),
    "systolic_bp": (0, 300, 0),
    "heart_rate": (0, 300, 0),
    "temperature": (25, 45, 1),
}
DEFAULT_CHUNK_ROWS = 1 << 15

# Parsed-cell codes (valid values are ≥ 0, in units of the column's resolution).
_MISSING, _NOT_A_NUMBER, _OUT_OF_RANGE, _BAD_CODE = -1, -2, -3, -4
_CACHE_LIMIT = 100_000

_CODES: dict[str, dict[str, int]] = {
    # Empty: scale 1 (scale 2 is never inferred). "1.0"/"2.0" are the same codes as
    # spreadsheet or pandas exports write them (a column with an empty cell becomes
    # float); refusing them would turn whole files into error rows for no clinical reason.
    "spo2_scale": {"": 1, "1": 1, "2": 2, "1.0": 1, "2.0": 2},
    "on_oxygen": {"": MISSING_U8, "0": 0, "1": 1, "0.0": 0, "1.0": 1},
    "consciousness": {"": MISSING_U8, **{c: i for i, c in enumerate(CONSCIOUSNESS_LEVELS)}},
}
_CODE_ERRORS = {
    "spo2_scale": "is not 1 or 2",
    "on_oxygen": "is not 0 or 1",
    "consciousness": "is not one of A C V P U",
}


class CsvInputError(ValueError):
    """The input cannot be scored at all (no header, a required column missing, bad CSV)."""


@dataclass
class ScoreReport:
    """What a run did: rows scored and rows reported as errors."""

    rows: int = 0
    bad_rows: int = 0


class _NumberCells(dict[str, int]):
    """Raw cell → rounded units, or a negative code; parsed once per distinct text."""

    def __init__(self, low: int, high: int, decimals: int) -> None:
        super().__init__()
        self.low, self.high, self.decimals = low, high, decimals

    def __missing__(self, cell: str) -> int:
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        value = self[cell] = self.parse(cell)
        return value

    def parse(self, cell: str) -> int:
        if not cell.strip():
            return _MISSING
        try:
            number = parse_decimal(cell)
        except ValueError:
            return _NOT_A_NUMBER
        if not self.low <= number <= self.high:
            return _OUT_OF_RANGE
        return half_up_units(number, self.decimals)


class _CodeCells(dict[str, int]):
    def __init__(self, codes: dict[str, int]) -> None:
        super().__init__()
        self.codes = codes

    def __missing__(self, cell: str) -> int:
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        value = self[cell] = self.codes.get(cell.strip(), _BAD_CODE)
        return value


class _ShockIndexTexts(dict[int, str]):
    """Hundredths → ``"1.12"`` (``""`` when not computable)."""

    def __missing__(self, value: int) -> str:
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        text = self[value] = format_centi(value)
        return text


def _header(reader: Iterator[list[str]]) -> tuple[int, list[int]]:
    try:
        header = next(reader)
    except StopIteration:
        raise CsvInputError("empty input: a header row is required") from None
    names = [h.strip() for h in header]
    duplicates = sorted({n for n in names if names.count(n) > 1 and n})
    if duplicates:
        raise CsvInputError(f"duplicate column(s) in header: {', '.join(duplicates)}")
    missing = [c for c in INPUT_COLUMNS if c not in names]
    if missing:
        shown = _other_delimiter(header, len(INPUT_COLUMNS) - len(missing))
        if shown is not None:
            raise CsvInputError(
                f"the file is separated by {shown}: use ',' (and '.' as the decimal mark)"
            )
        present = [n for n in names if n]
        found = ", ".join(repr(n[:40]) for n in present[:20])
        found += ", …" if len(present) > 20 else ""
        raise CsvInputError(
            f"header lacks required column(s): {', '.join(missing)} "
            f"(the header has: {found or 'no named column'})"
        )
    return len(header), [names.index(c) for c in INPUT_COLUMNS]


def _other_delimiter(fields: list[str], found_with_comma: int) -> str | None:
    """How to name the delimiter ``fields`` (as split on ``,``) really use, if another
    one finds more of the required columns; else ``None``."""
    line = ",".join(fields)
    best, best_found = None, found_with_comma
    for delimiter, shown in _OTHER_DELIMITERS:
        if delimiter not in line:
            continue
        names = {n.strip() for n in next(csv.reader([line], delimiter=delimiter))}
        found = sum(c in names for c in INPUT_COLUMNS)
        if found > best_found:
            best, best_found = shown, found
    return best


class _ChunkScorer:
    def __init__(self, policy: Policy, width: int, positions: list[int]) -> None:
        self.policy = policy
        self.width = width
        self.positions = positions
        self.pick = operator.itemgetter(*positions)
        self.blank = [""] * width
        self.numbers = {name: _NumberCells(*LIMITS[name]) for name in LIMITS}
        self.codes = {name: _CodeCells(table) for name, table in _CODES.items()}
        self.reasons = ReasonTexts()
        self.shock = _ShockIndexTexts()
        self.no_data_priority = policy.priority.no_data.vital_signs_only
        self.ints = np.array([str(i) for i in range(256)], dtype=object)
        self.bools = np.array(["false", "true"], dtype=object)
        self.risks = np.array(RISK_NAMES, dtype=object)
        self.priorities = np.array(PRIORITY_NAMES, dtype=object)

    def score(self, rows: list[list[str]]) -> tuple[Iterator[tuple[str, ...]], int, int]:
        """Score one chunk: the output rows (same order), how many, how many were bad."""
        width = self.width
        if all(map(width.__eq__, map(len, rows))):  # the common case, at C speed
            shape_ok: list[bool] | None = None
            transposed = list(zip(*rows, strict=True))
            picked = [transposed[p] for p in self.positions]
        else:
            rows = [r for r in rows if len(r) != 1 or r[0].strip()]  # blank-only lines
            if not rows:
                return iter(()), 0, 0
            shape_ok = [len(r) == width for r in rows]
            fixed = [r if ok else self.blank for r, ok in zip(rows, shape_ok, strict=True)]
            picked = list(zip(*map(self.pick, fixed), strict=True))
        n = len(rows)
        columns = dict(zip(INPUT_COLUMNS, picked, strict=True))
        parsed: dict[str, NDArray[np.int32]] = {}
        bad = (
            np.zeros(n, np.bool_)
            if shape_ok is None
            else ~np.fromiter(shape_ok, dtype=np.bool_, count=n)
        )
        for name, cells in self.numbers.items():
            parsed[name] = np.fromiter(map(cells.__getitem__, columns[name]), np.int32, n)
            bad |= parsed[name] < _MISSING
        for name, code_cells in self.codes.items():
            parsed[name] = np.fromiter(map(code_cells.__getitem__, columns[name]), np.int32, n)
            bad |= parsed[name] == _BAD_CODE

        def stored(name: str, sentinel: int, dtype: type[np.unsignedinteger[Any]]) -> NDArray[Any]:
            values = parsed[name]
            return np.where(values < 0, sentinel, values).astype(dtype)

        vitals = VitalsArrays(
            resp_rate=stored("resp_rate", MISSING_U8, np.uint8),
            spo2=stored("spo2", MISSING_U8, np.uint8),
            on_oxygen=stored("on_oxygen", MISSING_U8, np.uint8),
            spo2_scale=np.where(parsed["spo2_scale"] == 2, 2, 1).astype(np.uint8),
            systolic_bp=stored("systolic_bp", MISSING_U16, np.uint16),
            heart_rate=stored("heart_rate", MISSING_U16, np.uint16),
            consciousness=stored("consciousness", MISSING_U8, np.uint8),
            temperature=stored("temperature", MISSING_U16, np.uint16),
        )
        scores = score_vitals(vitals, self.policy, breakdown=True)
        priority = scores.priority.copy()
        no_data = vitals.missing_mask() == ALL_PRESENT
        priority[no_data] = PRIORITY_NAMES.index(self.no_data_priority)

        news2 = self.ints[scores.news2].tolist()
        complete = self.bools[scores.complete.view(np.uint8)].tolist()
        risk = self.risks[scores.risk].tolist()
        qsofa = self.ints[scores.qsofa].tolist()
        shock = list(map(self.shock.__getitem__, shock_index_centi(vitals).tolist()))
        prio = self.priorities[priority].tolist()
        reasons = self.reasons.texts(vital_reason_keys(vitals, scores, self.policy))

        bad_rows = np.flatnonzero(bad).tolist()
        ids: tuple[str, ...] | list[str] = columns["id"]
        if bad_rows:
            ids = list(ids)
            id_at = self.positions[0]
            for i in bad_rows:
                news2[i] = complete[i] = risk[i] = qsofa[i] = shock[i] = prio[i] = ""
                shaped = shape_ok is None or shape_ok[i]
                reasons[i] = SEPARATOR.join(self._errors(rows[i], shaped))
                if not shaped:
                    ids[i] = rows[i][id_at] if id_at < len(rows[i]) else ""
        out = zip(ids, news2, complete, risk, qsofa, shock, prio, reasons, strict=True)
        return out, n, len(bad_rows)

    def _errors(self, row: list[str], shape_ok: bool) -> list[str]:
        if not shape_ok:
            fields = f"{len(row)} field{'' if len(row) == 1 else 's'}"
            hint = ""
            if len(row) == 1:
                shown = _other_delimiter(row, 0) or _row_delimiter(row[0], self.width)
                if shown is not None:
                    hint = f" (the row is separated by {shown}: use ',')"
            return [f"error: {fields} where the header has {self.width}{hint}"]
        cells = dict(zip(INPUT_COLUMNS, self.pick(row), strict=True))
        errors: list[str] = []
        for name in INPUT_COLUMNS:
            cell = cells[name]
            if name in self.numbers:
                code = self.numbers[name].parse(cell)
                low, high, _ = LIMITS[name]
                if code == _NOT_A_NUMBER:
                    errors.append(f"error: {name} {cell.strip()!r} is not a number")
                elif code == _OUT_OF_RANGE:
                    errors.append(f"error: {name} {cell.strip()} outside {low}-{high}")
            elif name in self.codes and cell.strip() not in _CODES[name]:
                errors.append(f"error: {name} {cell.strip()!r} {_CODE_ERRORS[name]}")
        return errors


def _row_delimiter(cell: str, width: int) -> str | None:
    """The other delimiter that splits a one-field row into the header's width, if any."""
    for delimiter, shown in _OTHER_DELIMITERS:
        if len(next(csv.reader([cell], delimiter=delimiter))) == width:
            return shown
    return None


def score_csv(
    src: Iterable[str],
    dst: TextIO,
    policy: Policy,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ScoreReport:
    """Score a CSV stream into ``dst`` (header plus one row per input row, same order).

    Raises:
        CsvInputError: no header, a required column missing, or malformed CSV.
    """
    reader = csv.reader(src)
    writer = csv.writer(dst, lineterminator="\n")
    report = ScoreReport()
    try:
        width, positions = _header(reader)
        writer.writerow(OUTPUT_COLUMNS)
        scorer = _ChunkScorer(policy, width, positions)
        # Empty lines are not rows (as for csv.DictReader); nor are blank-only lines.
        rows = filter(None, reader)
        while chunk := list(itertools.islice(rows, chunk_rows)):
            out, scored, bad = scorer.score(chunk)
            writer.writerows(out)
            report.rows += scored
            report.bad_rows += bad
    except csv.Error as exc:
        raise CsvInputError(f"malformed CSV near line {reader.line_num}: {exc}") from exc
    return report
