"""JSON files: atomic writing, and reading errors that name the file."""

from __future__ import annotations

import pytest

from partialface.errors import PartialFaceError
from partialface.jsonfile import read_json, write_json


def test_round_trip_and_no_temporary_left(tmp_path):
    path = write_json(tmp_path / "sub" / "x.json", {"a": [1, 2.5, None]})
    assert read_json(path, "thing") == {"a": [1, 2.5, None]}
    assert path.read_text().endswith("\n") and sorted(p.name for p in path.parent.iterdir()) == ["x.json"]


def test_reading_errors_name_the_file_and_what_it_should_hold(tmp_path):
    with pytest.raises(PartialFaceError, match=r"nope.json: no such plan file"):
        read_json(tmp_path / "nope.json", "plan")
    (tmp_path / "bad.json").write_text("{1")
    with pytest.raises(PartialFaceError, match=r"bad.json: not a valid JSON plan"):
        read_json(tmp_path / "bad.json", "plan")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PartialFaceError, match=r"bin.json: not a valid JSON plan"):
        read_json(tmp_path / "bin.json", "plan")
    with pytest.raises(PartialFaceError, match=r"cannot read plan"):
        read_json(tmp_path, "plan")  # a folder
