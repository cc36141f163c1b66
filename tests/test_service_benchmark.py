"""The identification protocol of benchmarks/service.py (docs/service.md's tables) on the real LFW layout."""

from __future__ import annotations

import pytest

from .conftest import REPO_ROOT, load_script, require_lfw


@pytest.fixture
def bench():
    require_lfw()  # the protocol reads LFW's pairs and photos
    return load_script(REPO_ROOT / "benchmarks" / "service.py", "service_benchmark")


@pytest.mark.parametrize("enrol_photos", [1, 3])
def test_identification_enrols_the_first_photos_and_searches_with_the_others(bench, enrol_photos):
    lfw = require_lfw()
    enrolled, searches = bench.identification_protocol([7, 8], enrol_photos)
    people = bench.people_in_folds(bench.read_lfw_pairs(lfw / "pairs.txt"), [7, 8])
    mated = [(photo, mate) for photo, mate in searches if mate is not None]
    strangers = [photo for photo, mate in searches if mate is None]
    assert enrolled and mated and strangers
    for person, photos in enrolled.items():
        everything = sorted((lfw / "images" / person).glob("*.jpg"))
        assert photos == everything[:enrol_photos]  # the first photos enrol ...
        assert [p for p, mate in mated if mate == person] == everything[enrol_photos:]  # ... the others search
    # everyone else in the folds is a stranger, searched once with their first photo
    assert sorted(p.parent.name for p in strangers) == sorted(set(people) - set(enrolled))
    assert all(p.name.endswith("_0001.jpg") for p in strangers)
    if enrol_photos == 1:  # the published protocol: enrolled = everyone with two photos or more
        assert set(enrolled) == {p for p in people if len(list((lfw / "images" / p).glob("*.jpg"))) >= 2}


def test_enrolment_sizes_compare_on_the_same_people_and_searches(bench):
    one, one_searches = bench.identification_protocol([7, 8], 1, reserved=3)
    three, three_searches = bench.identification_protocol([7, 8], 3)
    assert set(one) == set(three) and one_searches == three_searches
    assert all(photos == three[person][:1] for person, photos in one.items())
    with pytest.raises(bench.PartialFaceError, match="between 1 and the reserved 2, got 3"):
        bench.identification_protocol([7, 8], 3, reserved=2)
