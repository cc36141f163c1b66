"""The training recipe beyond the margin loss: losses on synthetic tensors, batch augmentation, several
datasets with margin-less identities, and a tiny distillation run that resumes exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from partialface.data import BatchAugmentation, CropSpec
from partialface.training import Trainer, build_training_data, load_checkpoint, load_config, resolve_config
from partialface.training.objective import ObjectiveWeights, TrainingObjective, prepare_teacher_targets
from partialface.training.teacher import TeacherCache, cache_key

from ._training_fixtures import tiny_config, write_identities, write_pairs
from .test_training_loop import assert_same_training_state


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faces")
    names = write_identities(root)
    write_pairs(root / "pairs.txt", names)
    write_identities(root / "extra", people=3, per_person=1)  # three people with a single photo
    return root


def objective(**weights) -> TrainingObjective:
    teacher = prepare_teacher_targets(torch.randn(6, 2, 8))
    return TrainingObjective(ObjectiveWeights(**weights), num_classes=3, teacher=teacher)


def test_margin_loss_scores_only_labels_with_a_class() -> None:
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0], [5.0, 0, 0]])
    labels = torch.tensor([0, 1, 4, 0])  # label 4: a person with one photo, no class in the head
    losses = objective()(torch.randn(4, 16), logits, labels, None, None)
    expected = F.cross_entropy(logits[[0, 1, 3]], labels[[0, 1, 3]])
    assert losses.total.item() == pytest.approx(expected.item()) and (losses.correct, losses.scored) == (3, 3)
    assert set(losses.parts) == {"margin_loss"}


def test_distillation_relation_and_consistency_losses_vanish_when_matched() -> None:
    # Seeded: whether reversing the batch changes the pairwise cosines enough depends on the draw.
    targets = F.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    embeddings = torch.cat([targets, torch.zeros(4, 8)], dim=1)  # same cosines as the teacher
    logits, labels = torch.zeros(4, 3), torch.tensor([0, 1, 0, 1])
    matched = objective(margin=0.0, distill=1.0, relation=1.0)(embeddings, logits, labels, 3 * targets, targets)
    assert matched.parts["distill_loss"] == pytest.approx(0.0, abs=1e-6)
    assert matched.parts["relation_loss"] == pytest.approx(0.0, abs=1e-6)
    unmatched = objective(margin=0.0, distill=1.0, relation=1.0)(embeddings, logits, labels, -targets.flip(0), targets.flip(0))
    assert unmatched.parts["distill_loss"] == pytest.approx(2.0) and unmatched.parts["relation_loss"] > 0.01

    views = objective(margin=0.0, consistency=1.0, views=2)
    same = torch.randn(2, 16)
    assert views(same.repeat(2, 1), logits, labels, None, None).total.item() == pytest.approx(0.0, abs=1e-6)
    opposite = torch.cat([same, -same])
    assert views(opposite, logits, labels, None, None).parts["consistency_loss"] == pytest.approx(2.0)


def test_teacher_targets_are_centred_unit_vectors_and_follow_flips() -> None:
    raw = torch.randn(5, 2, 8) + 10.0  # a large common component, as dlib's descriptors have
    prepared = prepare_teacher_targets(raw)
    assert torch.allclose(prepared.norm(dim=-1), torch.ones(5, 2))
    assert prepared.reshape(-1, 8).mean(0).abs().max() < 0.5
    goal = TrainingObjective(ObjectiveWeights(distill=1.0), 3, prepared)
    picked = goal.targets(torch.tensor([4, 0]), torch.tensor([True, False]))
    assert torch.equal(picked, torch.stack([prepared[4, 1], prepared[0, 0]]))


def test_batch_augmentation_is_seeded_bounded_and_off_by_default() -> None:
    faces = torch.rand(4, 3, 16, 16) * 2 - 1
    assert not BatchAugmentation().active
    assert torch.equal(BatchAugmentation()(faces, torch.Generator().manual_seed(0)), faces)
    augment = BatchAugmentation(shift=0.1, scale=0.1, rotate=10, brightness=0.2, contrast=0.2, saturation=0.2)
    first = augment(faces, torch.Generator().manual_seed(3))
    assert torch.equal(first, augment(faces, torch.Generator().manual_seed(3)))
    assert not torch.equal(first, augment(faces, torch.Generator().manual_seed(4)))
    assert first.shape == faces.shape and first.min() >= -1 and first.max() <= 1
    shifted = BatchAugmentation(shift=0.25)(faces, torch.Generator().manual_seed(0))
    assert not torch.allclose(shifted, faces)
    with pytest.raises(ValueError, match="unknown augmentation option"):
        BatchAugmentation.from_dict({"blur": 1})
    assert BatchAugmentation.from_dict({"shift": 0.05}).to_dict()["shift"] == 0.05


def test_several_datasets_and_margin_less_identities(dataset_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(dataset_root, tmp_path, MIN_IMAGES=1, MARGIN_MIN_IMAGES=2,
                      DATASETS=[{"name": "images", "batch_size": 8}, {"root": str(dataset_root / "extra" / "images")}])
    data = build_training_data(resolve_config(cfg), repeats=1)
    # 5 people of 4 photos outside fold 2, then the 3 single-photo people without a class in the head
    assert (data.num_images, data.num_classes, data.num_identities) == (23, 5, 8)
    labels = [label for _, label in data.samples]
    assert sorted(set(labels)) == list(range(8)) and labels.count(7) == 1
    assert "3 with < 2 images: no margin loss" in data.description
    assert data.dataset[22][1] == labels[22]
    assert data.teacher_paths == [path for path, _ in data.samples]
    aligned = {"root": str(dataset_root / "extra" / "images"), "teacher_root": "/photos"}  # a copy of /photos
    cfg["DATASETS"] = [cfg["DATASETS"][0], aligned]
    data = build_training_data(resolve_config(cfg), repeats=1)
    assert data.teacher_paths[:20] == [path for path, _ in data.samples[:20]]
    assert data.teacher_paths[20] == Path("/photos/Person_00/Person_00_0001.jpg")


def test_uniform_training_ranks_cover_every_subset() -> None:
    from partialface.encoders import encoder_from_state, get_encoder

    labels = torch.zeros(400, dtype=torch.long)  # one identity: TFace's rule allows it half the subsets
    keyed = get_encoder("partialface")
    uniform = get_encoder("partialface", training_ranks="uniform")
    generator = torch.Generator().manual_seed(0)
    subsets = {tuple(row.tolist()) for row in keyed.channels_for_training(labels, generator)}
    every = {tuple(row.tolist()) for row in uniform.channels_for_training(labels, generator)}
    plan = keyed.plan
    assert len(subsets) == plan.m // 2 * plan.n and len(every) == plan.m * plan.n
    assert encoder_from_state(uniform.state_dict()).training_ranks == "uniform"
    assert "training_ranks" not in keyed.state_dict()
    with pytest.raises(ValueError, match="training_ranks must be one of"):
        get_encoder("partialface", training_ranks="sometimes")


def write_fake_teacher(path: Path, cfg: dict) -> None:
    """A teacher cache with random descriptors for every training image of ``cfg`` (the real teacher is dlib)."""
    from partialface.training.data import training_samples

    paths = [p for p, _ in training_samples(resolve_config(cfg)).samples]
    cache = TeacherCache(CropSpec.from_dict(resolve_config(cfg)["CROP"]))
    cache.add([cache_key(p) for p in paths], np.random.default_rng(0).normal(size=(len(paths), 2, 128)))
    cache.save(path)


def test_distillation_run_trains_and_resumes_exactly(dataset_root: Path, tmp_path: Path) -> None:
    recipe = dict(MIN_IMAGES=1, MARGIN_MIN_IMAGES=2, VIEWS=2, CONSISTENCY_WEIGHT=0.5, DISTILL_WEIGHT=1.0,
                  RELATION_WEIGHT=1.0, AUGMENT={"shift": 0.05, "brightness": 0.1}, DEV_PAIRS="",
                  TEACHER_CACHE=str(tmp_path / "teacher.npz"), ENCODER="partialface", LOG_EVERY=1,
                  DATASETS=[{"name": "images", "batch_size": 8}, {"root": str(dataset_root / "extra" / "images")}])

    def run(name: str, epochs: int) -> dict:
        cfg = tiny_config(dataset_root, tmp_path / name, NUM_EPOCH=epochs, **recipe)
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
        return Trainer(load_config(tmp_path / f"{name}.yaml"), progress=False).fit()

    write_fake_teacher(tmp_path / "teacher.npz", tiny_config(dataset_root, tmp_path, **recipe))
    summary = run("straight", 2)
    # 23 images x 2 ranks (NUM_AUG) per epoch, 4 images x 2 views per step
    assert summary["step"] == 2 * (46 // 4) and summary["samples_seen"] == 8 * summary["step"]
    checkpoint = load_checkpoint(tmp_path / "straight" / "checkpoint.pt", require_training_state=True)
    assert checkpoint["projection"]["state_dict"]["weight"].shape == (128, 16)
    header = (tmp_path / "straight" / "train_log.csv").read_text().splitlines()[0].split(",")
    row = (tmp_path / "straight" / "train_log.csv").read_text().splitlines()[1].split(",")
    for name in ("margin_loss", "distill_loss", "relation_loss", "consistency_loss"):
        assert float(row[header.index(name)]) >= 0
    run("resumed", 1)
    run("resumed", 2)
    assert_same_training_state(tmp_path / "straight" / "checkpoint.pt", tmp_path / "resumed" / "checkpoint.pt")
    resumed = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt", require_training_state=True)
    assert torch.equal(resumed["projection"]["state_dict"]["weight"], checkpoint["projection"]["state_dict"]["weight"])


def test_a_run_refuses_a_teacher_cache_that_lacks_its_images(dataset_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(dataset_root, tmp_path / "run", DISTILL_WEIGHT=1.0, TEACHER_CACHE=str(tmp_path / "t.npz"),
                      DEV_PAIRS="")
    with pytest.raises(ValueError, match="does not exist"):
        Trainer(resolve_config(cfg), progress=False)
    TeacherCache(CropSpec(None, 16)).save(tmp_path / "t.npz")
    with pytest.raises(ValueError, match="lacks the descriptors of 20 training images"):
        Trainer(resolve_config(cfg), progress=False)
