"""Loading scenario files: TOML → validated :class:`~scenarios._model.Scenario`.

Errors are reported once, readably, with the file and the location of each problem
(``devices[2].faults[0].rate: Input should be less than or equal to 1``), because the
people writing scenarios are testers, not Python programmers. The schema version is
checked before anything else so an old or future file gets "unsupported schema version"
rather than a cascade of field errors.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scenarios._expect import expectation_problems
from scenarios._model import SCHEMA_VERSION, Scenario

#: The scenarios shipped with the product (scenarios.md "Library").
LIBRARY_DIR = Path(__file__).parent / "library"


class ScenarioError(ValueError):
    """A scenario file that cannot be used; ``str()`` is the message to show."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        if len(problems) == 1:  # one problem: one line, as every command-line error
            super().__init__(f"{source}: invalid scenario: {problems[0]}")
            return
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: invalid scenario\n{lines}")


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(file)"


def parse_scenario(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Validate already-parsed TOML data."""
    version = data.get("schema_version")
    if version is None:
        raise ScenarioError(
            source, [f"schema_version is missing (this version reads {SCHEMA_VERSION})"]
        )
    if version != SCHEMA_VERSION:
        raise ScenarioError(
            source,
            [f"unsupported schema_version {version!r} (this version reads {SCHEMA_VERSION})"],
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_location(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ScenarioError(source, problems) from None
    problems = expectation_problems(list(scenario.expect))
    if problems:
        raise ScenarioError(source, problems)
    return scenario


def loads_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Parse and validate scenario TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, [f"not valid TOML: {exc}"]) from None
    return parse_scenario(data, source)


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario file; a bare name (``"night-fall"``) is looked up in the library."""
    p = Path(path)
    if not p.exists() and p.suffix == "" and (LIBRARY_DIR / f"{p.name}.toml").exists():
        p = LIBRARY_DIR / f"{p.name}.toml"
    from scenarios._capture import is_capture

    if is_capture(p):  # JSON lines, not TOML: say what it is and what reads it
        what = "this is a capture file (samu capture), not a scenario"
        raise ScenarioError(str(p), [f"{what}: replay it with samu replay {p}"])
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        names = ", ".join(q.stem for q in library())
        raise ScenarioError(
            str(path), [f"no such file, nor a library scenario (library: {names})"]
        ) from None
    except OSError as exc:
        raise ScenarioError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise ScenarioError(str(path), ["not UTF-8 text"]) from None
    return loads_scenario(text, str(p))


def library() -> list[Path]:
    """Every scenario shipped in the library, sorted by name."""
    return sorted(LIBRARY_DIR.glob("*.toml"))
