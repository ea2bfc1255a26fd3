"""The repository's own promises: one `samu` command, exit codes, domain code free of Textual."""

from __future__ import annotations

import subprocess
import sys

import pytest

from console.cli import EXIT_USAGE, main

DOMAIN_PACKAGES = [
    "protocols",
    "firmware_sim",
    "hardware",
    "console.triage",
    "console.records",
    "console.auth",
    "console.ingest",
    "console.services",
]


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
