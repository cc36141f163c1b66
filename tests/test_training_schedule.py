"""Learning-rate schedule, weight-decay groups, the epoch sampler, seeding and BatchNorm synchronisation."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn as nn

from partialface.models import get_head, get_model
from partialface.training import (
    EpochBatchSampler,
    StepSchedule,
    SynchronizedBatchNorm,
    build_optimizer,
    build_scheduler,
    parameter_groups,
    synchronize_batch_norm,
)
from partialface.training.seeding import Stream, capture_rng_state, derive_seed, restore_rng_state


def test_step_schedule_in_epochs_with_warmup() -> None:
    schedule = StepSchedule.from_config([0.1, 0.01, 0.001], [2, 3], warmup_steps=4, steps_per_epoch=10, total_steps=40)
    assert schedule.boundaries == (20, 30)
    assert [schedule.lr(s) for s in range(4)] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert schedule.lr(4) == schedule.lr(19) == pytest.approx(0.1)
    assert schedule.lr(20) == schedule.lr(29) == pytest.approx(0.01)
    assert schedule.lr(30) == schedule.lr(1000) == pytest.approx(0.001)
    no_warmup = StepSchedule.from_config([0.1, 0.01], [1], warmup_steps=-1, steps_per_epoch=5, total_steps=10)
    assert no_warmup.lr(0) == 0.1 and no_warmup.warmup_steps == 0


def test_step_schedule_as_fractions_of_the_run() -> None:
    schedule = StepSchedule.from_config([0.1, 0.01, 0.001], [0.6, 0.85], 0, steps_per_epoch=7, total_steps=100, unit="fraction")
    assert schedule.boundaries == (60, 85)
    with pytest.raises(ValueError, match="2 boundaries"):
        StepSchedule((0.1, 0.01, 0.001), (5,))
    with pytest.raises(ValueError, match="positive"):
        StepSchedule((0.1, 0.0), (5,))


def test_scheduler_follows_the_schedule_per_step() -> None:
    layer = nn.Linear(2, 2)
    schedule = StepSchedule((0.1, 0.01), (3,), warmup_steps=2)
    optimizer = build_optimizer([layer], 0.1, momentum=0.9, weight_decay=5e-4)
    scheduler = build_scheduler(optimizer, schedule)
    seen = []
    for _ in range(5):
        seen.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    assert seen == [[pytest.approx(schedule.lr(s))] * 2 for s in range(5)]
    restored = build_scheduler(build_optimizer([layer], 0.1, 0.9, 5e-4), schedule)
    restored.load_state_dict(scheduler.state_dict())
    assert restored.last_epoch == 5 and restored.get_last_lr() == scheduler.get_last_lr()


def test_no_weight_decay_on_normalisation_and_biases() -> None:
    backbone = get_model("mobilefacenet", in_channels=27, embedding_size=16, input_size=16, width=0.25)
    head = get_head("arcface", 16, 5)
    ir = get_model("ir18", in_channels=3, embedding_size=8, input_size=16)
    groups = parameter_groups([backbone, head, ir], weight_decay=5e-4)
    decay, no_decay = ({id(p) for p in g["params"]} for g in groups)
    assert groups[0]["weight_decay"] == 5e-4 and groups[1]["weight_decay"] == 0.0
    for root in (backbone, head, ir):
        for module in root.modules():
            for name, param in module.named_parameters(recurse=False):
                is_norm = isinstance(module, nn.modules.batchnorm._BatchNorm)
                expected = no_decay if is_norm or name == "bias" else decay
                assert id(param) in expected, f"{type(module).__name__}.{name}"
    assert id(head.weight) in decay
    assert len(decay) + len(no_decay) == sum(1 for m in (backbone, head, ir) for _ in m.parameters())
    assert not decay & no_decay


def test_epoch_sampler_splits_global_batches_across_processes() -> None:
    single = list(EpochBatchSampler(50, batch_size=8, seed=3, epoch=0))
    assert len(single) == 6 and all(len(b) == 8 for b in single)
    assert len({i for b in single for i in b}) == 48  # a permutation, last incomplete batch dropped
    halves = [list(EpochBatchSampler(50, batch_size=4, seed=3, epoch=0, world_size=2, rank=r)) for r in (0, 1)]
    assert [a + b for a, b in zip(*halves)] == single
    assert list(EpochBatchSampler(50, 8, seed=3, epoch=0, start_step=4)) == single[4:]
    assert list(EpochBatchSampler(50, 8, seed=3, epoch=0, stop_step=2)) == single[:2]
    assert list(EpochBatchSampler(50, 8, seed=3, epoch=1)) != single
    assert list(EpochBatchSampler(50, 8, seed=4, epoch=0)) != single
    assert list(EpochBatchSampler(50, 8, seed=3, epoch=0)) == single
    with pytest.raises(ValueError, match="fewer than one global batch"):
        EpochBatchSampler(7, batch_size=4, seed=0, epoch=0, world_size=2)


def test_derived_seeds_are_stable_and_distinct() -> None:
    seeds = {derive_seed(1337, stream, epoch, step) for stream in Stream for epoch in range(3) for step in range(5)}
    assert len(seeds) == len(Stream) * 15
    assert derive_seed(1337, Stream.BATCH, 2, 7) == derive_seed(1337, Stream.BATCH, 2, 7) < 2**63
    with pytest.raises(ValueError, match="non-negative"):
        derive_seed(-1, Stream.INIT)


def test_rng_state_round_trip() -> None:
    state = capture_rng_state()
    first = (torch.rand(3), np.random.rand(), random.random())
    restore_rng_state(state)
    second = (torch.rand(3), np.random.rand(), random.random())
    assert torch.equal(first[0], second[0]) and first[1:] == second[1:]


def test_synchronized_batch_norm_is_plain_batch_norm_without_a_process_group() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 4 * 4, 6), nn.BatchNorm1d(6, affine=False))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    converted = synchronize_batch_norm(model, torch.device("cpu"))
    assert isinstance(converted[1], SynchronizedBatchNorm) and isinstance(converted[4], SynchronizedBatchNorm)
    assert set(converted.state_dict()) == set(state)
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(64, 6), nn.BatchNorm1d(6, affine=False))
    plain.load_state_dict(state)
    x = torch.randn(5, 3, 6, 6)
    torch.testing.assert_close(converted(x), plain(x))
    torch.testing.assert_close(converted[1].running_var, plain[1].running_var)
    converted.eval(), plain.eval()
    torch.testing.assert_close(converted(x), plain(x))
