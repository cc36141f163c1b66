"""One run per output folder (issue 11 case 4), killed runs, and what they leave behind.

Most cases hold the lock from a second Python process (started in a second or two), a few run the real
``partialface train`` as a process and kill it with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from partialface.atomic import is_temporary_name
from partialface.errors import PartialFaceError
from partialface.runlock import LOCK_NAME, RunFolderLock, remove_stale_temporaries

from .._training_fixtures import tiny_config, write_identities, write_pairs
from ..conftest import REPO_ROOT
from .conftest import face_photo, fingerprint

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
       "OMP_NUM_THREADS": "1"}


def start(code: str, ready: str = "ready") -> subprocess.Popen:
    """A Python process running ``code``; returns once it printed ``ready``."""
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if ready in line:
            return process
    process.wait()
    raise AssertionError(f"the helper process ended before it was ready (exit {process.returncode})")


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def hold(folder: Path, command: str = "train") -> subprocess.Popen:
    return start(f"""
        import time
        from partialface.runlock import RunFolderLock
        lock = RunFolderLock({str(folder)!r}, {command!r})
        print("ready", flush=True)
        time.sleep(300)
    """)


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faces")
    write_pairs(root / "pairs.txt", write_identities(root))
    return root


def test_a_second_lock_names_the_holder_and_a_released_one_lets_the_next_run_in(tmp_path: Path) -> None:
    with RunFolderLock(tmp_path / "run", "train") as first:
        assert first.previous is None  # a folder no partialface command used
        with pytest.raises(PartialFaceError, match=rf"'.*run' is in use by partialface train \(pid {os.getpid()} on "
                                                   rf"host {socket.gethostname()}, started \d{{4}}-\d\d-\d\d "):
            RunFolderLock(tmp_path / "run", "protect")
    with RunFolderLock(tmp_path / "run", "protect") as second:
        assert second.previous["command"] == "train" and second.previous["pid"] == os.getpid()


def test_a_lock_held_by_a_killed_process_is_free_at_once(tmp_path: Path) -> None:
    holder = hold(tmp_path / "run")
    with pytest.raises(PartialFaceError, match=f"pid {holder.pid} on host"):
        RunFolderLock(tmp_path / "run", "train")
    kill(holder)  # SIGKILL: no clean-up code runs; the kernel drops the flock
    RunFolderLock(tmp_path / "run", "train").release()


def test_train_refuses_a_run_folder_in_use_naming_pid_host_and_start(faces: Path, tmp_path: Path, cli) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_config(faces, tmp_path / "run", NUM_EPOCH=1, DEV_PAIRS="")))
    holder = hold(tmp_path / "run")
    try:
        result = cli("train", config, "--no-progress")
    finally:
        kill(holder)
    assert result.status == 2
    assert result.error().startswith(f"partialface train: error: OUT '{tmp_path / 'run'}' is in use by partialface "
                                     f"train (pid {holder.pid} on host {socket.gethostname()}, started ")
    assert not (tmp_path / "run" / "config.yaml").exists()  # the refused run wrote nothing


def test_protect_and_demo_refuse_a_folder_in_use(photos: Path, tmp_path: Path, cli) -> None:
    holder = hold(tmp_path / "out", "protect")
    try:
        assert "is in use by partialface protect" in cli("protect", photos, "--out", tmp_path / "out").error()
        assert "is in use by partialface protect" in cli("demo", "--data", photos, "--out", tmp_path / "out",
                                                         "--no-verify").error()
    finally:
        kill(holder)
    assert list((tmp_path / "out").iterdir()) == [tmp_path / "out" / LOCK_NAME]


def test_stale_temporaries_of_a_killed_write_are_removed_by_the_next_run(photos: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "out"
    writer = start(f"""
        import time
        from partialface.atomic import atomic_write
        with atomic_write({str(out / "Ann" / "face.jpg.npz")!r}) as handle:
            handle.write(b"half of a protected face")
            print("ready", flush=True)
            time.sleep(300)
    """)
    kill(writer)  # killed mid-write: the temporary file stays, the target was never created
    leftovers = [p for p in out.rglob("*") if is_temporary_name(p.name)]
    assert len(leftovers) == 1 and not (out / "Ann" / "face.jpg.npz").exists()
    (out / "Ann" / "notes.tmp").write_text("a user's file that only looks temporary")
    assert cli("protect", photos, "--out", out).status == 0
    assert not any(is_temporary_name(p.name) for p in out.rglob("*"))
    assert (out / "Ann" / "notes.tmp").read_text() == "a user's file that only looks temporary"


def test_cleaning_skips_folders_of_other_runs(tmp_path: Path) -> None:
    stale = tmp_path / ".checkpoint.pt.abcd1234.tmp"
    nested = tmp_path / "other_run" / ".checkpoint.pt.wxyz9876.tmp"
    nested.parent.mkdir()
    (nested.parent / LOCK_NAME).write_text("")
    for path in (stale, nested):
        path.write_bytes(b"partial")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert nested.exists()


@pytest.mark.slow
def test_a_killed_training_run_leaves_a_folder_the_next_run_resumes(faces: Path, tmp_path: Path, cli) -> None:
    """The real command twice at once: the second is refused naming the first; after SIGKILL it resumes."""
    run = tmp_path / "run"
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_config(faces, run, NUM_EPOCH=200, DEV_PAIRS="", SAVE_STEPS=1)))
    first = subprocess.Popen([sys.executable, "-m", "partialface", "train", str(config), "--no-progress"], env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoint.pt").exists():
            assert first.poll() is None and time.monotonic() < deadline, "the first run did not start training"
            time.sleep(0.2)
        second = cli("train", config, "--no-progress")
        assert second.status == 2 and f"is in use by partialface train (pid {first.pid} on host" in second.error()
    finally:
        kill(first)
    # SIGKILL may land mid-write: a temporary file it leaves is not one of the run's files (the next run removes it)
    before = {name for name in fingerprint(run) if not is_temporary_name(Path(name).name)}
    resumed = cli("train", config, "--no-progress", "--set", "NUM_EPOCH=1")
    assert resumed.status == 0, resumed.err
    assert before <= fingerprint(run).keys()
    assert not any(is_temporary_name(p.name) for p in run.rglob("*"))
