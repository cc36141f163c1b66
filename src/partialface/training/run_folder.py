"""The run folder of a training run (``OUT``): locked while the run writes there, and never a user's folder.

Two runs with the same ``OUT`` would interleave their logs and replace each other's checkpoints, so the
trainer holds :class:`partialface.runlock.RunFolderLock` on ``OUT`` from construction to the end of
``fit()`` (rank 0, the only writer); a second run gets one line naming the holder (pid, host, start time).
The lock also removes the temporary files a killed run left there.

Resuming replaces the files of an earlier run in ``OUT``: that is the point of a run folder. It is *not*
allowed to replace files the trainer did not write: ``OUT`` pointing at a folder that holds, say, the
user's own ``config.yaml`` (``partialface train myrun/config.yaml --out myrun``) is refused. A folder
is a run folder when a partialface run locked it before (the lock file records the command) or when it
holds a checkpoint to resume (run folders made before the lock existed).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..errors import PartialFaceError
from ..runlock import RunFolderLock
from .config_checks import ConfigError

__all__ = ["TRAINER_FILES", "claim_run_folder", "releases_run_folder_on_error"]

logger = logging.getLogger("partialface.train")

TRAINER_FILES = ("config.yaml", "metrics.json", "train_log.csv", "dev_log.csv")
"""Files the trainer (re)writes in OUT besides checkpoints; a foreign folder holding one is refused."""


def claim_run_folder(out: Path, checkpoint_name: str) -> RunFolderLock:
    """Lock ``out`` for this run; ConfigError (naming OUT) when another run holds it or it is not a run folder."""
    try:
        lock = RunFolderLock(out, "train")
    except PartialFaceError as err:
        raise ConfigError(f"OUT {err}", ("OUT",)) from None
    previous = lock.previous
    ours = (out / checkpoint_name).is_file() or (previous or {}).get("command") == "train"
    foreign = [] if ours else [name for name in TRAINER_FILES if (out / name).exists()]
    if foreign:
        lock.abandon()  # or the next attempt would find the folder recorded as a training run's
        raise ConfigError(f"OUT {os.fspath(out)!r} holds {foreign[0]}, which no partialface train run wrote there "
                          "(it would be replaced); choose another OUT", ("OUT",))
    if lock.removed:
        logger.info("removed %d temporary file(s) a killed run left in %s", len(lock.removed), os.fspath(out))
    return lock


_Init = TypeVar("_Init", bound=Callable[..., None])


def releases_run_folder_on_error(init: _Init) -> _Init:
    """Decorate a constructor that sets ``self.run_lock``: if it fails, the lock is released at once.

    Without it the lock would live as long as the failed object, which the caller's traceback keeps
    alive: a second attempt in the same process would find OUT "in use" by itself.
    """

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except BaseException:
            lock = getattr(self, "run_lock", None)
            if lock is not None:
                lock.release()
            raise

    return wrapper  # type: ignore[return-value]
