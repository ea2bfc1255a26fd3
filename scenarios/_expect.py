"""Expectation kinds and the keys each one uses (scenarios.md, a contract).

An unknown ``what``, a missing key or a key the kind does not use is an error in the
file, not a miss: :func:`expectation_problems` names each with its field path
(``expect[2].code``), and the loader refuses the file.
"""

from __future__ import annotations

from typing import Any

COMMON = frozenset({"what", "id", "description"})
DEADLINE = frozenset({"after", "within"})
WINDOW = frozenset({"window"})
PRIORITIES = ("P0", "P1", "P2", "P3", "NR")
CONSENTS = ("granted", "refused", "withdrawn")

#: what → (required keys, optional keys) beyond :data:`COMMON`.
KINDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "priority": (frozenset({"patient", "value"}), DEADLINE),
    "max_priority": (frozenset({"value"}), frozenset({"patient"}) | WINDOW),
    "news2_at_least": (frozenset({"patient", "value"}), DEADLINE),
    "qsofa": (frozenset({"patient", "value"}), DEADLINE),
    "case_opened": (frozenset({"patient"}), frozenset({"source"}) | DEADLINE),
    "no_case": (frozenset(), frozenset({"patient"}) | WINDOW),
    "implant_alert": (frozenset({"device", "code"}), DEADLINE),
    "consent": (frozenset({"session", "value"}), DEADLINE),
    "stream_ended": (frozenset({"session"}), DEADLINE),
    "quarantined": (frozenset({"reason"}), frozenset({"device", "count"}) | DEADLINE),
    "incident": (frozenset({"kind"}), frozenset({"device"}) | DEADLINE),
    "no_loss": (frozenset(), frozenset()),
    "audit_verifies": (frozenset(), frozenset()),
}


def _present(expect: Any) -> set[str]:
    data = expect.model_dump(exclude_defaults=False)
    extra = expect.model_extra or {}
    keys = {k for k, v in data.items() if v is not None and k not in extra}
    if not data.get("description"):
        keys.discard("description")
    return keys | set(extra)


def expectation_problems(expectations: list[Any]) -> list[str]:
    """Every problem of the ``[[expect]]`` tables, with its field path."""
    problems: list[str] = []
    for i, e in enumerate(expectations):
        where = f"expect[{i}]"
        kind = KINDS.get(e.what)
        if kind is None:
            problems.append(f"{where}.what: unknown kind {e.what!r} (one of {', '.join(KINDS)})")
            continue
        required, optional = kind
        keys = _present(e)
        for key in sorted(required - keys):
            problems.append(f"{where}.{key}: required by what = {e.what!r}")
        for key in sorted(keys - required - optional - COMMON):
            problems.append(f"{where}.{key}: not a key of what = {e.what!r}")
        value = getattr(e, "value", None)
        if e.what in ("priority", "max_priority") and value is not None and value not in PRIORITIES:
            problems.append(f"{where}.value: one of {', '.join(PRIORITIES)}, not {value!r}")
        if e.what in ("news2_at_least", "qsofa") and not (
            isinstance(value, int) and not isinstance(value, bool)
        ):
            problems.append(f"{where}.value: an integer score, not {value!r}")
        if e.what == "consent" and value not in CONSENTS:
            problems.append(f"{where}.value: one of {', '.join(CONSENTS)}, not {value!r}")
        extra = e.model_extra or {}
        if e.what == "incident" and extra.get("kind") not in ("technical", "security"):
            problems.append(f"{where}.kind: technical or security, not {extra.get('kind')!r}")
        if e.what == "case_opened" and extra.get("source") not in (
            None,
            "bilan",
            "implant",
            "vitals",
        ):
            problems.append(f"{where}.source: bilan, implant or vitals, not {extra['source']!r}")
        count = extra.get("count")
        if count is not None and not (isinstance(count, int) and count >= 1):
            problems.append(f"{where}.count: a positive integer, not {count!r}")
    return problems
