"""Channel plans: TFace's exact tables, protect() per rank, sampling rules, JSON persistence and validation."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from partialface.errors import PartialFaceError
from partialface.frequency import to_frequency
from partialface.plan import ChannelPlan

TFACE_SUBSETS = [
    [1, 24, 28, 12, 32, 45, 47, 40, 52],
    [35, 39, 44, 42, 10, 4, 37, 31, 53],
    [0, 50, 19, 6, 22, 51, 49, 23, 21],
    [38, 8, 25, 13, 17, 30, 7, 33, 9],
    [26, 29, 16, 2, 43, 14, 5, 11, 48],
    [36, 41, 46, 34, 15, 27, 18, 20, 3],
]
TFACE_PERMS = [[0, 1, 2, 3, 4, 5, 6, 7, 8], [7, 3, 0, 6, 5, 4, 1, 2, 8], [4, 8, 6, 0, 2, 5, 3, 7, 1]]


def test_tface_tables_are_the_published_ones():
    plan = ChannelPlan.tface()
    assert list(plan.pruned) == [0, 1, 2, 3, 8, 9, 10, 16, 17, 24]
    assert list(plan.kept) == [c for c in range(64) if c not in plan.pruned] and len(plan.kept) == 54
    assert [list(r) for r in plan.subsets] == TFACE_SUBSETS
    assert [list(r) for r in plan.permutations] == TFACE_PERMS
    assert (plan.m, plan.s, plan.n, plan.num_ranks, plan.out_channels) == (6, 9, 3, 18, 27)
    # every kept channel has u + v > 3
    assert all(c // 8 + c % 8 > 3 for c in plan.kept)


@pytest.fixture(scope="module")
def faces():
    return torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1


@pytest.mark.parametrize("subset, permutation", list(itertools.product(range(6), range(3))))
def test_protect_every_tface_rank(faces, subset, permutation):
    plan = ChannelPlan.tface()
    full = to_frequency(faces)
    out = plan.protect(faces, subset, permutation)
    assert out.shape == (3, 27, 16, 16)
    kept = plan.kept
    for c in range(3):
        for j in range(9):
            channel = c * 64 + kept[TFACE_SUBSETS[subset][TFACE_PERMS[permutation][j]]]
            assert torch.equal(out[:, c * 9 + j], full[:, channel])


def test_protect_per_sample_ranks(faces):
    plan = ChannelPlan.tface()
    subset, permutation = torch.tensor([5, 0, 3]), torch.tensor([2, 1, 0])
    out = plan.protect(faces, subset, permutation)
    for i in range(3):
        assert torch.allclose(out[i], plan.protect(faces[i : i + 1], int(subset[i]), int(permutation[i]))[0], atol=1e-12)


def test_sample_training_ranks_follow_label_rule():
    plan = ChannelPlan.tface()
    combos = list(itertools.combinations(range(6), 3))
    labels = torch.arange(200).repeat(20)
    subset, permutation = plan.sample_training_ranks(labels, torch.Generator().manual_seed(0))
    for label, s in zip(labels.tolist(), subset.tolist()):
        assert s in combos[label % 20]
    assert set(permutation.tolist()) == {0, 1, 2}
    # every allowed subset is used for a label seen many times
    used = {s for label, s in zip(labels.tolist(), subset.tolist()) if label == 7}
    assert used == set(combos[7])


def test_sampling_is_seeded_and_query_ranks_uniform():
    plan = ChannelPlan.generate(seed=1)
    a = plan.sample_query_ranks(5000, torch.Generator().manual_seed(9))
    b = plan.sample_query_ranks(5000, torch.Generator().manual_seed(9))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    counts = torch.bincount(a[0] * plan.n + a[1], minlength=plan.num_ranks)
    assert counts.min() > 5000 / plan.num_ranks * 0.7


def test_query_ranks_do_not_depend_on_the_batch_split():
    plan = ChannelPlan.tface()
    whole = plan.sample_query_ranks(300, torch.Generator().manual_seed(3))
    generator = torch.Generator().manual_seed(3)
    parts = [plan.sample_query_ranks(size, generator) for size in (1, 63, 64, 172)]
    for i in range(2):
        assert torch.equal(whole[i], torch.cat([p[i] for p in parts]))


def test_generate_is_valid_deterministic_and_distinct():
    a, b, c = ChannelPlan.generate(3), ChannelPlan.generate(3), ChannelPlan.generate(4)
    assert a == b and a.fingerprint == b.fingerprint
    assert a.fingerprint != c.fingerprint
    assert (a.m, a.s, a.n) == (6, 9, 6)
    assert list(a.permutations[0]) == list(range(9))
    small = ChannelPlan.generate(0, m=3, n=2)
    assert (small.m, small.s, small.n) == (3, 18, 2)


def test_save_load_round_trip(tmp_path):
    plan = ChannelPlan.generate(7, m=9, n=4)
    path = plan.save(tmp_path / "sub" / "plan.json")
    assert ChannelPlan.load(path) == plan
    data = json.loads(path.read_text())
    assert data["fingerprint"] == plan.fingerprint
    assert not list(path.parent.glob(".*tmp"))


def test_fingerprint_is_stable():
    # the published plan's identity must not change between releases
    assert ChannelPlan.tface().fingerprint == "8a0257a1e65a4c01"


def _tface_dict():
    return ChannelPlan.tface().to_dict()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["subsets"][0].__setitem__(0, 35), "disjoint"),
        (lambda d: d["subsets"][0].__setitem__(0, 54), "0..53"),
        (lambda d: d["subsets"].pop(), "cover"),
        (lambda d: d["subsets"][1].pop(), "same, non-zero size"),
        (lambda d: d["permutations"][1].__setitem__(0, 0), "not a permutation"),
        (lambda d: d["permutations"].append(list(range(9))), "repeat"),
        (lambda d: d["pruned"].append(70), "0..63"),
        (lambda d: d.__setitem__("fingerprint", "0" * 16), "fingerprint"),
        (lambda d: d.pop("subsets"), "lacks subsets"),
    ],
)
def test_invalid_plans_are_rejected_with_the_reason(tmp_path, edit, message):
    data = _tface_dict()
    edit(data)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        ChannelPlan.load(path)


def test_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        ChannelPlan.load(bad)
    with pytest.raises(ValueError, match="missing.json"):
        ChannelPlan.load(tmp_path / "missing.json")


def test_rank_out_of_range():
    plan = ChannelPlan.tface()
    with pytest.raises(ValueError, match="subset"):
        plan.channels(6, 0)
    with pytest.raises(ValueError, match="permutation"):
        plan.channels(torch.tensor([0]), torch.tensor([3]))
    with pytest.raises(ValueError, match="cannot split"):
        ChannelPlan.generate(0, m=7)


def test_plan_indices_must_be_integers():
    plan = ChannelPlan.tface()
    for subset, permutation in [(31.5, 0), (1.0, 0), (0, True), (torch.tensor([1.5]), 0), (torch.tensor([0]), 0.5)]:
        with pytest.raises(PartialFaceError, match="subset|permutation"):
            plan.channels(subset, permutation)
    assert plan.channels(np.int64(2), 1).tolist() == plan.channels(2, 1).tolist()
    with pytest.raises(PartialFaceError, match="subset index must be an integer"):
        ChannelPlan(plan.pruned, [[*plan.subsets[0][:-1], 40.5], *plan.subsets[1:]], plan.permutations)
