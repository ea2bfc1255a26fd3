"""Files that hold secrets or evidence: created owner-only, durably, whatever the umask.

Health data law wants keys and audit evidence out of reach of other local users; the
process umask is not ours to trust (a service started under ``umask 000`` would create
world-writable directories), so modes are set explicitly after creation.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = [
    "PrivateFileError",
    "check_private",
    "fsync_dir",
    "make_private_dir",
    "write_private_file",
]


class PrivateFileError(OSError):
    """A secret or evidence file is accessible by group or others."""


def check_private(path: Path) -> None:
    """Refuse a key file that group or others may access.

    Raises:
        PrivateFileError: the mode grants group or others any access (the message says
            the ``chmod`` that fixes it).
        OSError: the file cannot be examined.
    """
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PrivateFileError(
            f"{path} is accessible by group or others (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {path}"
        )


def make_private_dir(path: Path, *, parents: bool = False) -> bool:
    """Create ``path`` with mode 0700 (whatever the umask); ``True`` when it was created.

    Only the last level is created unless ``parents``: a mistyped
    ``--checkpoint-dir /nonexistent/cp`` must be reported, not silently built somewhere.

    Raises:
        FileNotFoundError: the parent directory does not exist (and ``parents`` is false).
        NotADirectoryError: ``path`` or a parent exists and is not a directory.
    """
    if path.is_dir():
        return False
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        if not path.is_dir():
            raise NotADirectoryError(f"{path} exists and is not a directory") from None
        return False
    os.chmod(path, 0o700)  # mkdir's mode is masked by the umask; chmod is not
    return True


def write_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 (never overwriting), durably.

    The parent directory is created (0700) when missing.

    Raises:
        FileExistsError: ``path`` exists.
        OSError: it cannot be written.
    """
    make_private_dir(path.parent, parents=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or creation in ``directory`` durable (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
