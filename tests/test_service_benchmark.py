"""The identification protocol of benchmarks/service.py (docs/service.md's tables) on the real LFW layout."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LFW = REPO.parent / "shared" / "data" / "lfw"


def _service_benchmark():
    spec = importlib.util.spec_from_file_location("service_benchmark", REPO / "benchmarks" / "service.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["service_benchmark"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (LFW / "pairs.txt").is_file(), reason=f"{LFW} is absent: the protocol reads LFW's pairs and photos")
@pytest.mark.parametrize("enrol_photos", [1, 3])
def test_identification_enrols_the_first_photos_and_searches_with_the_others(enrol_photos):
    bench = _service_benchmark()
    enrolled, searches = bench.identification_protocol([7, 8], enrol_photos)
    people = bench.people_in_folds(bench.read_lfw_pairs(LFW / "pairs.txt"), [7, 8])
    mated = [(photo, mate) for photo, mate in searches if mate is not None]
    strangers = [photo for photo, mate in searches if mate is None]
    assert enrolled and mated and strangers
    for person, photos in enrolled.items():
        everything = sorted((LFW / "images" / person).glob("*.jpg"))
        assert photos == everything[:enrol_photos]  # the first photos enrol ...
        assert [p for p, mate in mated if mate == person] == everything[enrol_photos:]  # ... the others search
    # everyone else in the folds is a stranger, searched once with their first photo
    assert sorted(p.parent.name for p in strangers) == sorted(set(people) - set(enrolled))
    assert all(p.name.endswith("_0001.jpg") for p in strangers)
    if enrol_photos == 1:  # the published protocol: enrolled = everyone with two photos or more
        assert set(enrolled) == {p for p in people if len(list((LFW / "images" / p).glob("*.jpg"))) >= 2}


@pytest.mark.skipif(not (LFW / "pairs.txt").is_file(), reason=f"{LFW} is absent: the protocol reads LFW's pairs and photos")
def test_enrolment_sizes_compare_on_the_same_people_and_searches():
    bench = _service_benchmark()
    one, one_searches = bench.identification_protocol([7, 8], 1, reserved=3)
    three, three_searches = bench.identification_protocol([7, 8], 3)
    assert set(one) == set(three) and one_searches == three_searches
    assert all(photos == three[person][:1] for person, photos in one.items())
    with pytest.raises(bench.PartialFaceError, match="between 1 and the reserved 2, got 3"):
        bench.identification_protocol([7, 8], 3, reserved=2)
