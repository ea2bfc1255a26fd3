"""The repository's own promises: one `samu` command, exit codes, domain code free of Textual."""

from __future__ import annotations

import subprocess
import sys

import pytest

from console.cli import EXIT_USAGE, main

DOMAIN_PACKAGES = [
    "protocols",
    "transport",
    "firmware_sim",
    "hardware",
    "scenarios",
    "console.crypto",
    "console.triage",
    "console.records",
    "console.auth",
    "console.identity",
    "console.ingest",
    "console.cases",
    "console.interop",
    "console.settings",
    "console.services",
]

OUR_PACKAGES = ["console", "firmware_sim", "protocols", "scenarios", "hardware", "transport"]


def _private_owner(module: str) -> str | None:
    """The package that owns ``module`` when a component of its name is private
    (``console.records._store`` → ``console.records``), else None."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def test_no_package_imports_another_packages_private_modules() -> None:
    """A package's surface is its ``__init__``: ``a._x`` is imported only from inside ``a``.

    Tests are exempt (they may pin internals); everything shipped is checked, including
    imports inside functions.
    """
    import grimp

    graph = grimp.build_graph(*OUR_PACKAGES)
    offenders = []
    for imported in sorted(graph.modules):
        owner = _private_owner(imported)
        if owner is None:
            continue
        for importer in sorted(graph.find_modules_that_directly_import(imported)):
            if importer != owner and not importer.startswith(owner + "."):
                offenders.append(f"{importer} imports {imported}")
    assert offenders == []


def test_the_private_module_rule_itself() -> None:
    assert _private_owner("console.records._store") == "console.records"
    assert _private_owner("console.records") is None
    assert _private_owner("console.__main__") is None
    assert _private_owner("firmware_sim._sim") == "firmware_sim"


@pytest.mark.parametrize("package", DOMAIN_PACKAGES)
def test_domain_package_imports_without_textual(package: str) -> None:
    """Harlequin's check: import in a fresh interpreter and look at sys.modules."""
    code = f"import sys, importlib, pkgutil\nm = importlib.import_module({package!r})\n"
    code += (
        "for info in pkgutil.walk_packages(getattr(m, '__path__', []), m.__name__ + '.'):\n"
        "    importlib.import_module(info.name)\n"
        "loaded = sorted(k for k in sys.modules if k.startswith('textual'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "bench" in capsys.readouterr().out


def test_unknown_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == EXIT_USAGE
    assert "invalid choice" in capsys.readouterr().err


def test_samu_console_script_is_installed() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from console.cli._main import entry; entry()", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "usage: samu" in result.stdout


def test_building_the_parser_stays_light() -> None:
    """`samu --help` answers at once: heavy packages load only in the handler needing them."""
    code = (
        "import sys\n"
        "from console.cli import build_parser\n"
        "build_parser()\n"
        "names = ('numpy', 'pydantic', 'sqlite_utils', 'textual', 'aiomqtt')\n"
        "heavy = sorted(m for m in names if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_samu_says_its_version(capsys) -> None:
    import pytest

    from console.cli._main import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("samu ")
