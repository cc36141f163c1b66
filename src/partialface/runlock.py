"""One run at a time per output folder: a lock file held with ``fcntl.flock`` while a command writes there.

Two ``partialface train`` runs with the same ``OUT`` would interleave their logs and replace each other's
checkpoints; two ``protect`` runs into one folder would replace each other's files. A command that owns
an output folder (``train`` OUT, ``align`` OUT, ``protect --out``, ``demo --out``) takes
:class:`RunFolderLock` first; a second command on the same folder gets one line naming the holder (its
command, pid, host and start time) and exits with status 2.

Why ``flock`` on a kept file rather than "create a lock file, delete it at the end": the kernel releases
an ``flock`` when its process dies, however it dies (SIGKILL, out of memory, power loss of a client of a
network file system aside), so a killed run never leaves a stale lock that a user would have to delete.
The file stays (``.partialface.lock``) and records the last holder; that record tells the next run of
the folder which command used it before (:attr:`RunFolderLock.previous`).

Taking the lock also removes what a killed run left: the temporary files of
:func:`partialface.atomic.atomic_write` (``.NAME.XXXXXXXX.tmp``) in the folder and its sub-folders
(sub-folders holding their own lock file are another run's and are left alone). While the lock is held
no other partialface command writes there, so every such file is stale.

Locks are advisory and per open file: the same process taking the same folder twice is refused too.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from .atomic import is_temporary_name
from .errors import PartialFaceError

__all__ = ["LOCK_NAME", "RunFolderLock", "remove_stale_temporaries"]

LOCK_NAME = ".partialface.lock"


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete :func:`~partialface.atomic.atomic_write` leftovers below ``folder``; returns what was removed.

    Sub-folders with their own :data:`LOCK_NAME` are skipped (they belong to another run folder).
    """
    removed = []
    for parent, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not (Path(parent) / name / LOCK_NAME).exists()]
        for name in files:
            if is_temporary_name(name):
                path = Path(parent) / name
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
                removed.append(path)
    return removed


def _read_record(handle: Any) -> dict[str, Any]:
    handle.seek(0)
    text = handle.read()
    try:
        record = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        record = {}
    return record if isinstance(record, dict) else {}


def _describe(record: dict[str, Any]) -> str:
    if not record:
        return "another process (its details are not written yet)"
    started = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(record.get("started", 0)))
    return (f"partialface {record.get('command', '?')} (pid {record.get('pid', '?')} on host "
            f"{record.get('host', '?')}, started {started})")


class RunFolderLock:
    """Hold ``folder/.partialface.lock`` for ``command``; created (with the folder) if missing.

    Raises PartialFaceError naming the holder when another process holds it. Use as a context manager,
    or call :meth:`release` (also safe to call twice). Attributes: ``previous`` is the record the last
    holder left (``None`` when the folder was never locked: a folder no partialface command used; empty
    when no run is recorded), ``removed`` the stale temporary files deleted.
    """

    def __init__(self, folder: str | os.PathLike[str], command: str) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            existed = self.path.exists()
            self._handle: Any = open(self.path, "a+", encoding="utf-8")  # never truncates a holder's record
        except OSError as err:
            raise PartialFaceError(f"cannot lock the output folder {os.fspath(self.folder)!r}: {err.strerror}") from None
        try:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read_record(self._handle))
            self._handle.close()
            raise PartialFaceError(f"{os.fspath(self.folder)!r} is in use by {holder}; wait for it to finish "
                                   "or choose another folder") from None
        self.previous: dict[str, Any] | None = _read_record(self._handle) if existed else None
        self._record({"command": command, "pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
        self.removed = remove_stale_temporaries(self.folder)

    def _record(self, record: dict[str, Any] | None) -> None:
        self._handle.seek(0)
        self._handle.truncate()
        if record:
            self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()

    def abandon(self) -> None:
        """Release, putting back the previous holder's record: a run that refused to start claims nothing."""
        if not self._handle.closed:
            self._record(self.previous)
        self.release()

    def release(self) -> None:
        """Let the next run in (the record stays in the file)."""
        if not self._handle.closed:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()

    def __enter__(self) -> RunFolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
