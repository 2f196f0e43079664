"""Files a command writes for the user (``-o FILE``): never silently replaced, never half-written.

- :func:`output_file` checks the path *before* any work is done: an existing
  file is refused unless the command's ``--overwrite`` was given; a folder,
  a pipe or a device is refused (writing atomically would replace it with a
  plain file, e.g. ``/dev/full``); a symbolic link is followed, so the file
  it names is what gets written and the link stays a link; a missing parent
  folder is refused rather than created behind the user's back.
- :func:`write_atomic` writes beside the target and renames over it, so a
  reader (or a full disk, or Ctrl-C) never leaves half a file; the file gets
  the usual permissions (``mkstemp`` would make it private to its owner).

Both raise one-line :class:`~hwprof.errors.ConfigError` naming the path (a
bad path; a write that fails: disk full, permission denied).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable, TextIO

from hwprof.errors import ConfigError


def output_file(path: str | Path, *, overwrite: bool, option: str = "-o", flag: str = "--overwrite") -> Path:
    """The regular file to write for ``path`` (a link resolved to its target); ConfigError says why not."""
    given = Path(path)
    if str(path) == "-":  # a command that can write to stdout handles "-" before asking for a file
        raise ConfigError(f"{option} - (standard output) is not supported here; give a file path")
    if str(path) in ("", ".", "..") or given.name in ("", ".", ".."):
        raise ConfigError(f"{option} {str(path)!r} names a folder; expected a file path")
    target = Path(os.path.realpath(given))
    if target.is_dir():
        raise ConfigError(f"{option} {str(path)!r} is a folder; expected a file path")
    if target.exists() or target.is_symlink():
        if not target.is_file():
            raise ConfigError(f"{option} {str(path)!r} is not a regular file (a pipe, socket or device); give a file path")
        if not overwrite:
            raise ConfigError(f"{option} {str(path)!r} exists; give {flag} to replace it, or another path")
    if not target.parent.is_dir():
        raise ConfigError(f"{option} {str(path)!r}: the folder {str(target.parent)!r} does not exist")
    return target


def write_atomic(path: Path, write: str | Callable[[TextIO], None], *, newline: str | None = None) -> None:
    """Write ``write`` (text, or a function writing to the open file) beside ``path``, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8", newline=newline) as fh:
            if isinstance(write, str):
                fh.write(write)
            else:
                write(fh)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
