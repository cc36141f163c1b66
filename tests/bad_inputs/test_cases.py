"""Every command-line case of :mod:`.cases`, run in-process: exit status, message, user files untouched."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from partialface.cli import main

from .cases import CASES, Case, make_scratch
from .conftest import fingerprint


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_scratch(tmp_path_factory.mktemp("scratch"))


@pytest.mark.parametrize("case", CASES, ids=[case.what for case in CASES])
def test_case(case: Case, template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "scratch"
    shutil.copytree(template, root, symlinks=True)
    monkeypatch.chdir(root)
    before = fingerprint(root)
    caplog.set_level(logging.INFO, logger="partialface")
    try:
        status = main(case.argv.split())
    except SystemExit as exit:  # argparse's own errors
        status = exit.code
    captured = capsys.readouterr()
    output = (captured.err + captured.out).splitlines() + caplog.messages  # training logs its progress
    lines = [line for line in output if line.strip() and "%|" not in line]
    assert status == case.status, captured.err
    assert any(case.says in line for line in lines), lines
    if status == 2:  # a user error is one line
        assert len([line for line in captured.err.splitlines() if "error:" in line]) == 1, captured.err
    after = fingerprint(root)
    changed = [name for name, digest in before.items() if after.get(name) != digest]
    assert changed == [], f"{case.argv} changed or removed {changed}"
