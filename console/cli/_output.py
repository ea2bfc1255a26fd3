"""Files ``samu`` commands write: one rule, one implementation (docs/cli.md, "Output files").

* **Derived, reproducible outputs** (``-o``/``--out``/``--write``/``--junit`` FILE: an
  export, a report, a generated scenario — anything the same command can write again)
  follow the Unix convention and replace an existing FILE, but *atomically*
  (:func:`atomic_output`, :func:`write_output`): the content goes to a temporary file in
  FILE's directory, is flushed and fsynced, then renamed over FILE, and the directory is
  fsynced. A failure at any point (an invalid export, a full disk, Ctrl-C) leaves the
  previous FILE as it was and no half-written one; only a ``kill -9`` can leave a hidden
  ``.FILE.*.tmp`` beside it, never a damaged FILE.
* **Irreplaceable recordings** (a capture, key files, backups) are never overwritten
  (:func:`new_output`): an existing FILE is refused before anything runs.
* **Identities and health data** (``private=True``) are created mode 0600 whatever the
  umask; other outputs get the mode a plain ``open()`` would give (0666 less the umask).

FILE may be a symlink (the file it points to is replaced, as the shell's ``>`` writes
through it) or a device or FIFO such as ``/dev/stdout`` (written straight through: there
is no previous content to protect, and a rename over a device would be wrong).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal, TextIO, overload

from console.cli._main import UsageError

__all__ = ["atomic_output", "check_output", "new_output", "refuse_existing", "write_output"]


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _no_directory(path: Path, option: str) -> str:
    return (
        f"{option} {path}: cannot write in {path.parent}: no such directory (a directory "
        "that does not exist is not created)"
    )


def check_output(path: Path, option: str) -> Path:
    """The file ``path`` names, checked before any work: not a directory, in an existing
    directory. Said now, not after a run of minutes.

    Raises:
        UsageError: ``path`` is a directory or its directory does not exist.
    """
    if _is_stream(path):
        return path
    target = Path(os.path.realpath(path))  # a symlink: the file it points to
    if target.is_dir():
        raise UsageError(f"{option} {path}: is a directory (give a file name)")
    if not target.parent.is_dir():
        raise UsageError(_no_directory(path, option))
    if not os.access(target.parent, os.W_OK):
        raise UsageError(f"{option} {path}: cannot write in {path.parent}: permission denied")
    return target


def _is_stream(path: Path) -> bool:
    """``path`` names a device, a FIFO or a socket (``/dev/stdout`` on a pipe: its
    ``realpath`` is no file at all), written through rather than replaced."""
    try:
        mode = os.stat(path).st_mode  # through symlinks
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _mode(private: bool) -> int:
    if private:
        return 0o600
    mask = os.umask(0o077)  # read it (the process's umask, as a plain open() would use)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@overload
def atomic_output(
    path: Path,
    *,
    option: str,
    private: bool,
    binary: Literal[False] = False,
    newline: str | None = None,
    errors: str | None = None,
) -> AbstractContextManager[TextIO]: ...
@overload
def atomic_output(
    path: Path,
    *,
    option: str,
    private: bool,
    binary: Literal[True],
    newline: str | None = None,
    errors: str | None = None,
) -> AbstractContextManager[BinaryIO]: ...
def atomic_output(
    path: Path,
    *,
    option: str,
    private: bool,
    binary: bool = False,
    newline: str | None = None,
    errors: str | None = None,
) -> AbstractContextManager[IO[Any]]:
    """A file to write ``path``'s new content into, put in place only if the block ends
    normally (module docstring). Text is UTF-8 unless ``binary``.

    Raises:
        UsageError: ``path`` is unusable, or writing, syncing or renaming failed (the
            previous file is untouched). An exception raised by the block itself goes
            through unchanged, after the temporary file is removed.
    """
    return _atomic(path, option, private, binary, newline=newline, errors=errors)


@contextlib.contextmanager
def _atomic(
    path: Path,
    option: str,
    private: bool,
    binary: bool,
    *,
    newline: str | None = None,
    errors: str | None = None,
) -> Iterator[IO[Any]]:
    how: dict[str, Any] = (
        {"mode": "wb"}
        if binary
        else {"mode": "w", "encoding": "utf-8", "errors": errors, "newline": newline}
    )
    if _is_stream(path):
        with open(path, **how) as fh:  # /dev/stdout, a FIFO: nothing to replace
            yield fh
        return
    target = check_output(path, option)
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise UsageError(
            f"{option} {path}: cannot write in {path.parent}: {_reason(exc)}"
        ) from None
    tmp = Path(name)
    try:
        with os.fdopen(fd, **how) as fh:
            yield fh
            try:
                fh.flush()
                os.fchmod(fh.fileno(), _mode(private))
                os.fsync(fh.fileno())
            except OSError as exc:
                raise UsageError(f"{option} {path}: cannot write: {_reason(exc)}") from None
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise UsageError(f"{option} {path}: cannot write: {_reason(exc)}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def write_output(path: Path, data: str | bytes, *, option: str, private: bool) -> None:
    """``data`` into ``path`` whole or not at all (see :func:`atomic_output`).

    Raises:
        UsageError: ``path`` is unusable or could not be written (the old file is kept).
    """
    try:
        with _atomic(path, option, private, isinstance(data, bytes)) as fh:
            fh.write(data)
    except OSError as exc:  # a write of the block (disk full): still the old file
        raise UsageError(f"{option} {path}: cannot write: {_reason(exc)}") from None


def refuse_existing(path: Path, option: str, what: str) -> Path:
    """Check ``path`` may be created for an irreplaceable ``what`` (never overwritten).

    Raises:
        UsageError: it exists (or is a directory), or its directory does not.
    """
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory (give a file name)")
    if path.exists() or path.is_symlink():
        raise UsageError(f"{option} {path}: the file exists ({what} is never overwritten)")
    if not path.parent.is_dir():
        raise UsageError(_no_directory(path, option))
    return path


@contextlib.contextmanager
def new_output(path: Path, *, option: str, what: str, private: bool) -> Iterator[IO[bytes]]:
    """Create ``path`` for an irreplaceable recording ``what`` (a capture): refused if it
    exists, mode 0600 when ``private``, and fsynced (file and directory) when the block
    ends, however it ends: what was recorded is kept.

    Raises:
        UsageError: ``path`` exists, its directory does not, or it cannot be created.
    """
    refuse_existing(path, option, what)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _mode(private))
        os.fchmod(fd, _mode(private))  # O_CREAT's mode is masked by the umask
    except FileExistsError:
        raise UsageError(
            f"{option} {path}: the file exists ({what} is never overwritten)"
        ) from None
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot create: {_reason(exc)}") from None
    with os.fdopen(fd, "wb") as fh:
        try:
            yield fh
        finally:
            with contextlib.suppress(OSError, ValueError):  # ValueError: closed by the block
                fh.flush()
                os.fsync(fh.fileno())
    _fsync_dir(path.parent)
