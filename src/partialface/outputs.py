"""Where a command may write, checked before it starts: the project never replaces a file it did not create.

Every command that writes files (``protect``, ``demo``, ``eval --json/--roc``, ``plan generate``, the run
folders of ``train`` and ``align``) declares its outputs here *before* the work, so that a bad path costs
nothing (an evaluation is not thrown away because its report cannot be written) and no output lands on a
file the user owns. The rules, each broken one a one-line :class:`PartialFaceError` naming the path:

- an output folder is a folder, or can be created: its nearest existing ancestor is a writable folder;
- an output file is not a folder, and its folder is (or can be created) as above;
- an output is never one of the run's inputs (compared after resolving links), ``--overwrite`` or not;
- two outputs of one run never share a path (``face.jpg`` and ``face.png`` both becoming ``face.npz``):
  the message names both sources;
- an existing file is replaced only with ``overwrite=True`` (the commands' ``--overwrite``). Run folders
  that a command resumes (``train`` OUT, ``align`` OUT) keep their own ownership rules on top of
  :mod:`partialface.runlock`.

The files themselves are written with :func:`partialface.atomic.atomic_write`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .errors import PartialFaceError

__all__ = ["OutputFiles", "check_output_folder", "check_output_file"]

_Path = str | os.PathLike[str]


def _resolved(path: _Path) -> Path:
    return Path(os.path.realpath(path))


def check_output_folder(folder: _Path, what: str, output: _Path | None = None) -> Path:
    """``folder`` as a Path if it is a folder or can be created; ``what`` (e.g. ``--out``) names it in errors.

    ``output`` is the path the user gave when ``folder`` is its parent (an output file's folder).
    """
    folder = Path(folder)
    shown = os.fspath(folder if output is None else output)
    existing = next(p for p in (folder, *folder.parents) if p.exists())  # as the user wrote it
    if not existing.is_dir():
        if output is None and existing == folder:
            raise PartialFaceError(f"{what} {shown!r} is a file, not a folder")
        raise PartialFaceError(f"{what} {shown!r} cannot be created: {os.fspath(existing)!r} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PartialFaceError(f"{what} {shown!r}: {os.fspath(existing)!r} is not writable")
    return folder


def check_output_file(path: _Path, what: str, overwrite: bool = False, inputs: Iterable[_Path] = ()) -> Path:
    """``path`` as a Path if it may be written by this run (see the module docstring)."""
    return OutputFiles(what, overwrite, inputs).add(path)


class OutputFiles:
    """The files one run will write, each checked as it is added, all before the run starts.

    Args:
        what: how the user named the outputs (``--out``, ``--json``): the start of every message.
        overwrite: existing files may be replaced (never an input).
        inputs: files the run reads; none of them is ever an output.
    """

    def __init__(self, what: str, overwrite: bool = False, inputs: Iterable[_Path] = ()) -> None:
        self.what = what
        self.overwrite = overwrite
        self._inputs = {_resolved(p) for p in inputs}
        self._claimed: dict[Path, str] = {}  # resolved output -> what it is made from (a source or an option)
        self._folders: set[Path] = set()

    @property
    def paths(self) -> list[Path]:
        """The outputs added so far (resolved)."""
        return list(self._claimed)

    def add(self, path: _Path, source: _Path | None = None, what: str | None = None) -> Path:
        """Declare the output ``path`` (made from ``source``, named in a collision); returns it as a Path.

        ``what`` names this output in messages instead of the set's name (``--json`` in a set of ``eval``).
        """
        what = what or self.what
        path = Path(path)
        name = os.fspath(path)
        resolved = _resolved(path)
        made_from = repr(os.fspath(source)) if source is not None else what
        if resolved in self._claimed:
            raise PartialFaceError(f"{self._claimed[resolved]} and {made_from} would both be written to {name!r}; "
                                   "rename one of them or choose different outputs")
        if resolved in self._inputs:
            raise PartialFaceError(f"{what} {name!r} is an input of this run and is never replaced; "
                                   "choose another output")
        if path.is_dir():
            raise PartialFaceError(f"{what} {name!r} is a folder, not a file")
        if resolved.parent not in self._folders:
            check_output_folder(path.parent, what, path)
            self._folders.add(resolved.parent)
        if (path.exists() or path.is_symlink()) and not self.overwrite:
            raise PartialFaceError(f"{what} {name!r} already exists and this run did not write it; "
                                   "pass --overwrite to replace it, or choose another output")
        self._claimed[resolved] = made_from
        return path
