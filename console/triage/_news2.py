"""The vectorised vital-sign engine: NEWS2, risk, qSOFA, shock index, vital priority.

How it is fast. Each NEWS2 chart row is compiled from the policy into a *step chain*,
``score = s0 + Σ_k δ_k·[x > u_k]`` over the band bounds ``u_k``: exact on rounded
integers, and each step is one SIMD compare plus one add over a uint8/uint16 column. A
table gather (``np.take``) costs as much per element as a whole chain, and a float
compare four times a uint8 one, hence integers in chart units. Every pass is
memory-bound, so the design counts passes: rows go through in blocks with a per-thread
workspace reused across calls (fresh pages cost a fault each on first touch), ``out``
given positionally everywhere, and only what triage *decides* on is computed in the hot
loop. What is merely shown (the per-parameter breakdown, which values are missing, the
shock index to two decimals, which rules fired) is derived on demand for the rows being
displayed or written: ``breakdown=True``, ``VitalsArrays.missing_mask``,
``shock_index_centi``, ``vital_rules``.

Scores are *encoded*: a parameter scoring 3 adds ``FLAG`` (32), so the sum of the seven
encoded scores carries the NEWS2 total in its low five bits and "some parameter scored
3" above them — one uint8, one pass each for total, flag and risk.

In the hot path every chain step adds straight into that one total (no per-parameter
array to fill, mask and sum); with ``breakdown=True`` each parameter gets its own row.

Missing values are masked explicitly: the sentinel (the type's maximum) lands in the top
band of a chain, so the compare that counts it missing also takes that band's score back
out (or, per parameter, zeroes the row). A missing value scores nothing, never 3 (the
``np.searchsorted``-with-NaN trap), and makes ``complete`` false.

SpO2 scale 2 applies only to the few patients a clinician flagged: it is computed on
those rows alone and written over the scale-1 result. On scale 2 a missing air/oxygen
flag scores as air (no oxygen was reported; the set is flagged incomplete anyway).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import IntFlag
from typing import Any

import numpy as np
from numpy.typing import NDArray

from console.triage._arrays import MISSING_U8, MISSING_U16, PARAMETERS, VitalsArrays
from console.triage._policy import CONSCIOUSNESS_LEVELS, Bands, Policy

#: Rows per block. Passes are memory-bound at about 0.07 ns a row once a block exceeds
#: ~32 Ki rows, and each numpy call costs 1-3 µs: 256 Ki rows keeps call overhead under
#: a tenth of the work with a working set (~30 bytes a row) inside the last-level cache.
DEFAULT_BLOCK = 1 << 18

RISK_NAMES: tuple[str, ...] = ("low", "low-medium", "medium", "high")
PRIORITY_NAMES: tuple[str, ...] = ("P0", "P1", "P2", "P3", "NR")
P0, P1, P2, P3, NR = range(5)

#: Added to a parameter's encoded score when it reaches the policy's single-parameter
#: score (3); seven encoded scores sum to at most 21 + 7·32 = 245, inside a uint8.
FLAG = 32
_LOW = np.uint8(FLAG - 1)
_U8 = [np.uint8(i) for i in range(256)]
_ONE16 = np.uint16(1)


class VitalRule(IntFlag):
    """Vital-sign priority rules other than the NEWS2 total (which is always reported)."""

    CONSCIOUSNESS = 1
    SINGLE_PARAMETER = 2
    QSOFA = 4
    SHOCK_INDEX = 8


@dataclass(frozen=True, slots=True)
class _Chain:
    """``encoded = start + Σ delta·[x > threshold]`` on stored integer units."""

    start: int
    steps: tuple[tuple[Any, Any], ...]  # (threshold as the column's dtype, delta as int8)


@dataclass(frozen=True, slots=True)
class _Runs:
    """Encoded score of small codes as runs ``(first, last, value)``; other codes score 0."""

    runs: tuple[tuple[int, int, int], ...]


def _encode(score: int, single: int) -> int:
    return score + (FLAG if score >= single else 0)


def _band_chain(
    bands: Bands, decimals: int, dtype: type[np.unsignedinteger[Any]], single: int
) -> _Chain:
    encoded = [_encode(s, single) for s in bands.scores]
    top = int(np.iinfo(dtype).max) - 1
    steps: list[tuple[Any, Any]] = []
    for k, upper in enumerate(bands.upper):
        # x ≤ upper on integers in 10^-decimals units ⇔ x ≤ floor(upper·10^decimals).
        threshold = min(math.floor(Decimal(repr(upper)).scaleb(decimals)), top)
        delta = encoded[k + 1] - encoded[k]
        if delta:
            steps.append((dtype(threshold), np.int8(delta)))
    return _Chain(encoded[0], tuple(steps))


def _spo2_tables(scales: tuple[Bands, ...], single: int) -> NDArray[np.int16]:
    values = np.arange(256)
    tables = np.zeros((len(scales), 256), np.int16)
    for row, bands in enumerate(scales):
        band = np.searchsorted(np.asarray(bands.upper), values, side="left")
        tables[row] = [_encode(bands.scores[b], single) for b in band]
        tables[row, MISSING_U8] = 0
    tables.flags.writeable = False
    return tables


def _code_runs(scores: tuple[int, ...], single: int) -> _Runs:
    """Runs of equal non-zero encoded scores over codes 0..k-1 (missing codes score 0)."""
    runs: list[tuple[int, int, int]] = []
    for code, score in enumerate(scores):
        value = _encode(score, single)
        if not value:
            continue
        if runs and runs[-1][1] == code - 1 and runs[-1][2] == value:
            runs[-1] = (runs[-1][0], code, value)
        else:
            runs.append((code, code, value))
    return _Runs(tuple(runs))


def _code_ranges(codes: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """A set of ACVPU letters as contiguous ranges of codes (usually one)."""
    ranges: list[tuple[int, int]] = []
    for code in sorted({CONSCIOUSNESS_LEVELS.index(c) for c in codes}):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return tuple(ranges)


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """A policy turned into step chains and integer thresholds, once per policy digest."""

    policy: Policy
    resp_rate: _Chain
    spo2_scale1: _Chain
    #: (3, 256) int16 encoded SpO2 scores by value on scale 1, scale 2 on air, scale 2 on
    #: oxygen (255, missing, scores 0): the few scale-2 rows are gathered, not chained.
    spo2_tables: NDArray[np.int16]
    oxygen: _Runs
    systolic_bp: _Chain
    heart_rate: _Chain
    consciousness: _Runs
    temperature: _Chain
    risk_high: int
    risk_medium: int
    single_parameter: int
    qsofa_rr_min: int
    qsofa_sbp_max: int
    qsofa_altered: tuple[tuple[int, int], ...]
    #: (news2 minimum, level), most urgent first.
    news2_levels: tuple[tuple[int, int], ...]
    consciousness_rule: tuple[tuple[int, int], ...]
    consciousness_level: int | None
    #: The P-rule's score; None when it equals the risk band's (the common case).
    single_parameter_score: int | None
    single_parameter_level: int | None
    qsofa_min: int | None
    qsofa_level: int | None
    shock_index_centi: int | None
    shock_index_level: int | None

    @classmethod
    def build(cls, policy: Policy) -> CompiledPolicy:
        n2 = policy.news2
        q = policy.qsofa
        single = n2.risk.single_parameter
        levels = policy.priority.levels()

        def where(attr: str) -> tuple[Any, int | None]:
            for level, lv in enumerate(levels):
                value = getattr(lv, attr)
                if value:
                    return value, level
            return None, None

        cons_codes, cons_level = where("consciousness")
        single_rule, single_level = where("single_parameter_score")
        qmin, qlevel = where("qsofa_min")
        si_min, si_level = where("shock_index_min")
        return cls(
            policy=policy,
            resp_rate=_band_chain(n2.resp_rate, 0, np.uint8, single),
            spo2_scale1=_band_chain(n2.spo2_scale1, 0, np.uint8, single),
            spo2_tables=_spo2_tables(
                (n2.spo2_scale1, n2.spo2_scale2_air, n2.spo2_scale2_oxygen), single
            ),
            oxygen=_code_runs((n2.oxygen.air, n2.oxygen.oxygen), single),
            systolic_bp=_band_chain(n2.systolic_bp, 0, np.uint16, single),
            heart_rate=_band_chain(n2.heart_rate, 0, np.uint16, single),
            consciousness=_code_runs(n2.consciousness.by_code(), single),
            temperature=_band_chain(n2.temperature, 1, np.uint16, single),
            risk_high=n2.risk.high,
            risk_medium=n2.risk.medium,
            single_parameter=single,
            qsofa_rr_min=math.ceil(q.resp_rate_min),
            qsofa_sbp_max=math.floor(q.systolic_bp_max),
            qsofa_altered=_code_ranges(q.altered_consciousness),
            news2_levels=tuple(
                (lv.news2_min, level) for level, lv in enumerate(levels) if lv.news2_min is not None
            ),
            consciousness_rule=_code_ranges(cons_codes or ()),
            consciousness_level=cons_level,
            single_parameter_score=None if single_rule == single else single_rule,
            single_parameter_level=single_level,
            qsofa_min=qmin,
            qsofa_level=qlevel,
            # shock index ≥ t ⇔ 100·hr ≥ round(100·t)·sbp, exact in integers.
            shock_index_centi=None if si_min is None else round(si_min * 100),
            shock_index_level=si_level,
        )


_COMPILED: dict[str, CompiledPolicy] = {}


def compile_policy(policy: Policy) -> CompiledPolicy:
    """The compiled form of ``policy``, cached by its SHA-256."""
    key = policy.sha256 or policy.model_dump_json()
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = _COMPILED[key] = CompiledPolicy.build(policy)
    return compiled


@dataclass(frozen=True, slots=True)
class VitalScores:
    """Scores of every row of a ``VitalsArrays`` (struct-of-arrays, same order).

    Attributes:
        news2: total over the parameters present.
        complete: every parameter present.
        risk: index in ``RISK_NAMES``.
        qsofa: 0-3 over the criteria present.
        shock_index_alert: heart rate / systolic BP at or above the policy threshold,
            decided exactly on the rounded integers (never on a float quotient).
        priority: vital-sign priority, index in ``PRIORITY_NAMES`` (0-3).
        parameter_scores: (7, n) uint8 NEWS2 points per parameter in ``PARAMETERS``
            order (0 when missing), or None unless asked for with ``breakdown=True``.
    """

    news2: NDArray[np.uint8]
    complete: NDArray[np.bool_]
    risk: NDArray[np.uint8]
    qsofa: NDArray[np.uint8]
    shock_index_alert: NDArray[np.bool_]
    priority: NDArray[np.uint8]
    parameter_scores: NDArray[np.uint8] | None
    policy_version: str
    policy_sha256: str

    def __len__(self) -> int:
        return len(self.news2)

    @classmethod
    def allocate(cls, n: int, policy: Policy, *, breakdown: bool = False) -> VitalScores:
        return cls(
            news2=np.empty(n, np.uint8),
            complete=np.empty(n, np.bool_),
            risk=np.empty(n, np.uint8),
            qsofa=np.empty(n, np.uint8),
            shock_index_alert=np.empty(n, np.bool_),
            priority=np.empty(n, np.uint8),
            parameter_scores=np.empty((len(PARAMETERS), n), np.uint8) if breakdown else None,
            policy_version=policy.version,
            policy_sha256=policy.sha256,
        )

    def _select(self, key: Any) -> VitalScores:
        ps = self.parameter_scores
        return VitalScores(
            news2=self.news2[key],
            complete=self.complete[key],
            risk=self.risk[key],
            qsofa=self.qsofa[key],
            shock_index_alert=self.shock_index_alert[key],
            priority=self.priority[key],
            parameter_scores=None if ps is None else ps[:, key],
            policy_version=self.policy_version,
            policy_sha256=self.policy_sha256,
        )

    def rows(self, start: int, stop: int) -> VitalScores:
        """A view of rows ``start:stop`` (no copy)."""
        return self._select(slice(start, stop))

    def take(self, index: NDArray[np.intp]) -> VitalScores:
        """A copy of the selected rows."""
        return self._select(np.asarray(index, dtype=np.intp))


class _Workspace:
    """Scratch arrays for one block, reused for every block and call."""

    N_BOOL = 16

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.bools = [np.empty(rows, np.bool_) for _ in range(self.N_BOOL)]
        self.i8 = np.empty(rows, np.int8)
        self.u8 = np.empty(rows, np.uint8)
        self.count = np.empty(rows, np.uint8)
        self.total = np.empty(rows, np.uint8)
        self.u32 = (np.empty(rows, np.uint32), np.empty(rows, np.uint32))

    def head(self, n: int) -> _Workspace:
        """The first ``n`` rows of every scratch array (for the last, shorter block)."""
        ws = object.__new__(_Workspace)
        ws.rows = n
        ws.bools = [a[:n] for a in self.bools]
        ws.i8, ws.u8 = self.i8[:n], self.u8[:n]
        ws.count, ws.total = self.count[:n], self.total[:n]
        ws.u32 = (self.u32[0][:n], self.u32[1][:n])
        return ws


_LOCAL = threading.local()


def _workspace(rows: int) -> _Workspace:
    """This thread's workspace with ``rows`` rows (kept: fresh pages fault on first touch).

    Per thread, so that concurrent scorers (a board worker, a CLI run) never share it.
    """
    ws: _Workspace | None = getattr(_LOCAL, "ws", None)
    if ws is None or ws.rows < rows:
        ws = _LOCAL.ws = _Workspace(rows)
    return ws if ws.rows == rows else ws.head(rows)


def _run_chain(
    x: NDArray[Any], chain: _Chain, acc: NDArray[np.int8], g: NDArray[np.bool_], t: NDArray[Any]
) -> None:
    acc.fill(chain.start)
    gi = g.view(np.int8)
    for threshold, delta in chain.steps:
        np.greater(x, threshold, g)
        if delta == 1:
            np.add(acc, gi, acc)
        elif delta == -1:
            np.subtract(acc, gi, acc)
        else:
            np.multiply(gi, delta, t)
            np.add(acc, t, acc)


def _in_range(
    x: NDArray[np.uint8], first: int, last: int, out: NDArray[np.bool_], u8: NDArray[np.uint8]
) -> None:
    """``first ≤ x ≤ last`` on uint8 codes, by unsigned wrap-around (two passes at most)."""
    if first == last:
        np.equal(x, _U8[first], out)
    else:
        np.subtract(x, _U8[first], u8)
        np.less(u8, _U8[last - first + 1], out)


def _in_ranges(
    x: NDArray[np.uint8],
    ranges: tuple[tuple[int, int], ...],
    out: NDArray[np.bool_],
    tmp: NDArray[np.bool_],
    u8: NDArray[np.uint8],
) -> None:
    if not ranges:
        out.fill(False)
        return
    _in_range(x, *ranges[0], out, u8)
    for first, last in ranges[1:]:
        _in_range(x, first, last, tmp, u8)
        np.logical_or(out, tmp, out)


def _run_runs(
    x: NDArray[np.uint8], runs: _Runs, acc: NDArray[np.int8], g: NDArray[np.bool_], ws: _Workspace
) -> None:
    if not runs.runs:
        acc.fill(0)
    for k, (first, last, value) in enumerate(runs.runs):
        _in_range(x, first, last, g, ws.u8)
        if k == 0:
            np.multiply(g.view(np.int8), np.int8(value), acc)
        else:
            np.multiply(g.view(np.int8), np.int8(value), ws.i8)
            np.add(acc, ws.i8, acc)


def _at_least_u8(
    x: NDArray[np.uint8], minimum: int, out: NDArray[np.bool_], u8: NDArray[np.uint8]
) -> None:
    """``minimum ≤ x`` and ``x`` present (not 255), in two passes by unsigned wrap-around."""
    if minimum <= 0:
        np.not_equal(x, _U8[MISSING_U8], out)
    elif minimum >= MISSING_U8:
        out.fill(False)
    else:
        np.subtract(x, _U8[minimum], u8)
        np.less(u8, _U8[MISSING_U8 - minimum], out)


def _scale2_scores(
    v: VitalsArrays, cp: CompiledPolicy, idx: NDArray[np.intp]
) -> tuple[NDArray[np.int16], NDArray[np.int16]]:
    """Encoded SpO2 scores of rows ``idx`` on scale 2, and what scale 1 gave them."""
    x = v.spo2[idx]
    table = (v.on_oxygen[idx] == 1).astype(np.intp) + 1  # 1: scale 2 on air, 2: on oxygen
    return cp.spo2_tables[table, x], cp.spo2_tables[0, x]


def _union(arrays: list[NDArray[np.bool_]], out: NDArray[np.bool_]) -> NDArray[np.bool_] | None:
    """OR of ``arrays`` (None when empty); never writes into an input array."""
    if not arrays:
        return None
    if len(arrays) == 1:
        return arrays[0]
    np.logical_or(arrays[0], arrays[1], out)
    for arr in arrays[2:]:
        np.logical_or(out, arr, out)
    return out


def _news2_per_parameter(
    v: VitalsArrays,
    cp: CompiledPolicy,
    *,
    breakdown: NDArray[np.uint8],
    scale2: NDArray[np.intp] | None,
    altered: NDArray[np.bool_],
    hr_missing: NDArray[np.bool_],
    ws: _Workspace,
) -> None:
    """Encoded score of each parameter into ``breakdown``; ``ws.total``/``ws.count`` summed.

    ``ws.count`` counts the *missing* parameters. Used when the breakdown is asked for.
    """
    g = ws.bools[0]
    gi, gu = g.view(np.int8), g.view(np.uint8)
    count, total = ws.count, ws.total
    rows = breakdown.view(np.int8)
    for row, x, chain, sentinel in (
        (0, v.resp_rate, cp.resp_rate, _U8[MISSING_U8]),
        (1, v.spo2, cp.spo2_scale1, _U8[MISSING_U8]),
        (3, v.systolic_bp, cp.systolic_bp, np.uint16(MISSING_U16)),
        (4, v.heart_rate, cp.heart_rate, np.uint16(MISSING_U16)),
        (6, v.temperature, cp.temperature, np.uint16(MISSING_U16)),
    ):
        enc = rows[row]
        _run_chain(x, chain, enc, g, ws.i8)
        if row == 1 and scale2 is not None:
            enc[scale2] = _scale2_scores(v, cp, scale2)[0]
        np.not_equal(x, sentinel, g)
        np.multiply(enc, gi, enc)
        np.logical_not(g, g)
        if row == 0:
            np.copyto(count, gu)
            np.copyto(total, enc.view(np.uint8))
        else:
            np.add(count, gu, count)
            np.add(total, enc.view(np.uint8), total)
    np.equal(v.heart_rate, np.uint16(MISSING_U16), hr_missing)
    for row, x, runs in ((2, v.on_oxygen, cp.oxygen), (5, v.consciousness, cp.consciousness)):
        enc = rows[row]
        if row == 5 and len(runs.runs) == 1 and cp.qsofa_altered == (runs.runs[0][:2],):
            np.multiply(altered.view(np.int8), np.int8(runs.runs[0][2]), enc)
        else:
            _run_runs(x, runs, enc, g, ws)
        np.equal(x, _U8[MISSING_U8], g)
        np.add(count, gu, count)
        np.add(total, enc.view(np.uint8), total)


def _add_scaled(
    total: NDArray[np.uint8], gu: NDArray[np.uint8], delta: int, t: NDArray[np.uint8]
) -> None:
    """``total += delta·g`` in uint8 modular arithmetic (the final sums fit a uint8)."""
    if delta == 1:
        np.add(total, gu, total)
    elif delta == -1:
        np.subtract(total, gu, total)
    elif delta > 0:
        np.multiply(gu, _U8[delta], t)
        np.add(total, t, total)
    elif delta < 0:
        np.multiply(gu, _U8[-delta], t)
        np.subtract(total, t, total)


def _news2_direct(
    v: VitalsArrays,
    cp: CompiledPolicy,
    *,
    scale2: NDArray[np.intp] | None,
    altered: NDArray[np.bool_],
    hr_missing: NDArray[np.bool_],
    ws: _Workspace,
) -> None:
    """Encoded NEWS2 total straight into ``ws.total``, missing count into ``ws.count``.

    The hot path: every chain step adds into the one total (no per-parameter array to
    fill, mask and sum), and the missing sentinel's top-band score is taken back out
    with the same compare that counts it.
    """
    g = ws.bools[0]
    gu = g.view(np.uint8)
    count, total, t = ws.count, ws.total, ws.u8
    chains = (cp.resp_rate, cp.spo2_scale1, cp.systolic_bp, cp.heart_rate, cp.temperature)
    total.fill(sum(c.start for c in chains) % 256)
    bands: tuple[tuple[NDArray[Any], _Chain, Any], ...] = (
        (v.resp_rate, cp.resp_rate, _U8[MISSING_U8]),
        (v.spo2, cp.spo2_scale1, _U8[MISSING_U8]),
        (v.systolic_bp, cp.systolic_bp, np.uint16(MISSING_U16)),
        (v.heart_rate, cp.heart_rate, np.uint16(MISSING_U16)),
        (v.temperature, cp.temperature, np.uint16(MISSING_U16)),
    )
    for k, (x, chain, sentinel) in enumerate(bands):
        for threshold, delta in chain.steps:
            np.greater(x, threshold, g)
            _add_scaled(total, gu, int(delta), t)
        missing = hr_missing if x is v.heart_rate else g
        np.equal(x, sentinel, missing)
        mu = missing.view(np.uint8)
        _add_scaled(total, mu, -(chain.start + sum(int(d) for _, d in chain.steps)), t)
        if k == 0:
            np.copyto(count, mu)
        else:
            np.add(count, mu, count)
    if scale2 is not None:
        on_scale2, on_scale1 = _scale2_scores(v, cp, scale2)
        total[scale2] = (total[scale2] + on_scale2 - on_scale1).astype(np.uint8)
    for x, runs in ((v.on_oxygen, cp.oxygen), (v.consciousness, cp.consciousness)):
        if x is v.consciousness and len(runs.runs) == 1 and cp.qsofa_altered == (runs.runs[0][:2],):
            np.multiply(altered.view(np.uint8), _U8[runs.runs[0][2]], t)
            np.add(total, t, total)
        else:
            for first, last, value in runs.runs:
                _in_range(x, first, last, g, t)
                _add_scaled(total, gu, value, t)
        np.equal(x, _U8[MISSING_U8], g)
        np.add(count, gu, count)


def _score_block(v: VitalsArrays, cp: CompiledPolicy, out: VitalScores, ws: _Workspace) -> None:
    """Score one block of rows into ``out`` (views of the caller's result arrays)."""
    pool = iter(ws.bools[1:])
    g = ws.bools[0]
    gu = g.view(np.uint8)
    total, u8 = ws.total, ws.u8
    breakdown = out.parameter_scores

    # SpO2 scale-2 rows (few): rescored on their own.
    np.equal(v.spo2_scale, _U8[2], g)
    scale2 = np.flatnonzero(g) if g.any() else None
    altered, hr_missing = next(pool), next(pool)
    _in_ranges(v.consciousness, cp.qsofa_altered, altered, g, u8)
    if breakdown is None:
        _news2_direct(v, cp, scale2=scale2, altered=altered, hr_missing=hr_missing, ws=ws)
    else:
        _news2_per_parameter(
            v,
            cp,
            breakdown=breakdown,
            scale2=scale2,
            altered=altered,
            hr_missing=hr_missing,
            ws=ws,
        )

    any3 = next(pool)
    np.greater_equal(total, _U8[FLAG], any3)
    news2 = out.news2
    np.bitwise_and(total, _LOW, news2)
    np.equal(ws.count, _U8[0], out.complete)
    if breakdown is not None:
        np.bitwise_and(breakdown, _LOW, breakdown)

    ge_cache: dict[int, NDArray[np.bool_]] = {}

    def news2_at_least(k: int) -> NDArray[np.bool_]:
        arr = ge_cache.get(k)
        if arr is None:
            arr = ge_cache[k] = next(pool)
            np.greater_equal(news2, _U8[min(max(k, 0), 255)], arr)
        return arr

    # Risk band: 0 low, 1 low-medium, 2 medium, 3 high.
    high, medium = news2_at_least(cp.risk_high), news2_at_least(cp.risk_medium)
    np.logical_or(medium, any3, g)
    np.add(high.view(np.uint8), medium.view(np.uint8), out.risk)
    np.add(out.risk, gu, out.risk)

    # qSOFA over the criteria present (missing sentinels never meet a criterion).
    rr_ok, sbp_ok = next(pool), next(pool)
    _at_least_u8(v.resp_rate, cp.qsofa_rr_min, rr_ok, u8)
    sbp_max = np.uint16(min(max(cp.qsofa_sbp_max, 0), MISSING_U16 - 1))
    np.less_equal(v.systolic_bp, sbp_max, sbp_ok)
    np.add(rr_ok.view(np.uint8), sbp_ok.view(np.uint8), out.qsofa)
    np.add(out.qsofa, altered.view(np.uint8), out.qsofa)

    # Shock index rule, exactly on integers: hr ≥ t·sbp, with hr present and sbp ≥ 1
    # (a missing sbp, 65535, is only reached by a missing hr).
    hr, sbp = v.heart_rate, v.systolic_bp
    alert = out.shock_index_alert
    if cp.shock_index_centi is None:
        alert.fill(False)
    else:
        if cp.shock_index_centi == 100:
            np.greater_equal(hr, sbp, alert)
        else:
            a, b = ws.u32
            np.multiply(hr, np.uint32(100), a)
            np.multiply(sbp, np.uint32(cp.shock_index_centi), b)
            np.greater_equal(a, b, alert)
        np.greater(alert, hr_missing, alert)  # a and not b
        np.not_equal(sbp, np.uint16(0), g)
        np.logical_and(alert, g, alert)

    # Priority: the most urgent level with a fired rule.
    fired: list[list[NDArray[np.bool_]]] = [[], [], []]
    for minimum, level in cp.news2_levels:
        fired[level].append(news2_at_least(minimum))
    if cp.consciousness_level is not None:
        cons = altered
        if cp.consciousness_rule != cp.qsofa_altered:
            cons = next(pool)
            _in_ranges(v.consciousness, cp.consciousness_rule, cons, g, u8)
        fired[cp.consciousness_level].append(cons)
    if cp.single_parameter_level is not None:
        single = any3
        if cp.single_parameter_score is not None:
            assert breakdown is not None  # score_vitals asks for it in this case
            single = next(pool)
            np.greater_equal(breakdown.max(axis=0), _U8[cp.single_parameter_score], single)
        fired[cp.single_parameter_level].append(single)
    if cp.qsofa_level is not None and cp.qsofa_min is not None:
        q2 = next(pool)
        np.greater_equal(out.qsofa, _U8[min(cp.qsofa_min, 255)], q2)
        fired[cp.qsofa_level].append(q2)
    if cp.shock_index_level is not None:
        fired[cp.shock_index_level].append(alert)

    # upto[L] = "a rule of level L or of a more urgent one fired"; each is a step down.
    upto: list[NDArray[np.bool_] | None] = []
    for level in (P0, P1, P2):
        previous = [upto[-1]] if upto and upto[-1] is not None else []
        upto.append(_union(previous + fired[level], next(pool)))
    prio = out.priority
    steps = [u for u in reversed(upto) if u is not None]
    if not steps:
        prio.fill(P3)
    else:
        np.subtract(_U8[P3], steps[0].view(np.uint8), prio)
        for step in steps[1:]:
            np.subtract(prio, step.view(np.uint8), prio)


def score_vitals(
    vitals: VitalsArrays,
    policy: Policy,
    *,
    out: VitalScores | None = None,
    breakdown: bool = False,
    block: int = DEFAULT_BLOCK,
) -> VitalScores:
    """Score every row: NEWS2, completeness, risk, qSOFA, shock index rule, priority.

    Args:
        vitals: rounded values, one row per case.
        policy: the triage policy (bands, thresholds, rule levels).
        out: preallocated result to fill (a board rescoring on a fixed tick reuses it);
            allocated when None. Its ``parameter_scores`` decides the breakdown.
        breakdown: also fill ``parameter_scores`` (when ``out`` is None).
        block: rows per block.
    """
    n = len(vitals)
    if out is None:
        out = VitalScores.allocate(n, policy, breakdown=breakdown)
    elif len(out) != n:
        raise ValueError(f"out has {len(out)} rows, vitals has {n}")
    cp = compile_policy(policy)
    target = out
    if cp.single_parameter_score is not None and out.parameter_scores is None:
        # A policy whose P-rule score differs from the risk band's needs the breakdown.
        target = replace(out, parameter_scores=np.empty((len(PARAMETERS), n), np.uint8))
    ws = _workspace(min(max(block, 1), max(n, 1)))
    for start in range(0, n, ws.rows):
        stop = min(start + ws.rows, n)
        part = ws if stop - start == ws.rows else ws.head(stop - start)
        _score_block(vitals.rows(start, stop), cp, target.rows(start, stop), part)
    return out


def parameter_scores(vitals: VitalsArrays, policy: Policy) -> NDArray[np.uint8]:
    """(7, n) NEWS2 points per parameter (``PARAMETERS`` order), 0 where missing."""
    scores = score_vitals(vitals, policy, breakdown=True).parameter_scores
    assert scores is not None
    return scores


def shock_index_centi(vitals: VitalsArrays) -> NDArray[np.int32]:
    """Shock index in hundredths, rounded half up exactly; -1 where it cannot be computed.

    ``round_half_up(100·hr/sbp) = ⌊(200·hr + sbp) / (2·sbp)⌋`` in integers, so 1/8 shows
    as 0.13 (not 0.12 as binary ``f"{0.125:.2f}"`` would) and 199/200 as 1.00. Not
    computable: heart rate or systolic missing, or systolic 0.
    """
    hr = vitals.heart_rate.astype(np.int32)
    sbp = vitals.systolic_bp.astype(np.int32)
    valid = (hr != MISSING_U16) & (sbp != MISSING_U16) & (sbp > 0)
    den = np.where(valid, 2 * sbp, 1)
    centi = (200 * hr + sbp) // den
    return np.where(valid, centi, -1).astype(np.int32)


def format_centi(centi: int) -> str:
    """``112`` → ``"1.12"``; negative (not computable) → ``""``."""
    return "" if centi < 0 else f"{centi // 100}.{centi % 100:02d}"


def vital_rules(vitals: VitalsArrays, scores: VitalScores, policy: Policy) -> NDArray[np.uint8]:
    """``VitalRule`` bits of the vital-sign rules that fired, for the rows to explain."""
    cp = compile_policy(policy)
    rules = np.zeros(len(vitals), np.uint8)
    if cp.consciousness_level is not None:
        cons = np.zeros(len(vitals), np.bool_)
        for first, last in cp.consciousness_rule:
            cons |= (vitals.consciousness >= first) & (vitals.consciousness <= last)
        rules |= cons.astype(np.uint8) * np.uint8(VitalRule.CONSCIOUSNESS)
    if cp.single_parameter_level is not None:
        threshold = cp.single_parameter_score or cp.single_parameter
        single = parameter_scores(vitals, policy).max(axis=0) >= threshold
        rules |= single.astype(np.uint8) * np.uint8(VitalRule.SINGLE_PARAMETER)
    if cp.qsofa_level is not None and cp.qsofa_min is not None:
        rules |= (scores.qsofa >= cp.qsofa_min).astype(np.uint8) * np.uint8(VitalRule.QSOFA)
    if cp.shock_index_level is not None:
        rules |= scores.shock_index_alert.astype(np.uint8) * np.uint8(VitalRule.SHOCK_INDEX)
    return rules
