"""The training loop: one loop for every input encoder, seeded, resumable, optionally distributed.

Per step the trainer takes a batch of RGB faces and labels, mirrors the faces drawn for flipping, and
asks the injected encoder for the model input: ``inputs = encoder.encode_train(images, labels,
generator)``. It never branches on the method. Every image appears ``encoder.train_repeats``
(NUM_AUG) times per epoch.

Determinism and resuming: the sampler permutation of epoch ``e``, the flips and encoder ranks of step
``t`` of that epoch and torch's global RNG during the step (dropout) are all seeded from
``(SEED, e, t)`` (see :mod:`.seeding`). A checkpoint written after an epoch (and, with
``SAVE_STEPS``, inside one) holds the model, head, optimizer, scheduler, AMP scaler, the position in
the run and the encoder (channel plan, per-frequency scale); resuming from it continues bit for bit
as the uninterrupted run would (same device, same thread count).

Distribution: under ``torchrun`` every process trains on its slice of each global batch
(``batch_size`` per process); gradients are averaged by DDP and BatchNorm uses global-batch
statistics (:func:`.distributed.synchronize_batch_norm`), so N processes compute what one process
computes on the global batch. Flips are drawn for the whole global batch and sliced, so they do not
depend on the number of processes; encoder ranks are drawn per process (the encoder API draws from
one generator per call), so a PartialFace run on N processes sees different -- equally distributed --
ranks than a single-process run.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import yaml
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..atomic import atomic_write
from ..data import BatchAugmentation, CropSpec
from ..encoders import FrequencyEncoder, InputEncoder, encoder_from_state, estimate_frequency_scale, get_encoder
from ..errors import PartialFaceError
from ..models import get_head, get_model
from ..models.rank_keyed import RankKeyedBackbone
from ..models.heads import HEADS
from ..plan import ChannelPlan
from ..checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from .config import config_differences
from .config_checks import ConfigError, key_errors
from .data import KeyedDataset, TrainingData, build_training_data, sample_faces, training_preparation
from .dev_evaluation import DevEvaluator
from .distributed import DistributedContext, init_distributed, shutdown_distributed, synchronize_batch_norm
from .rank_keyed import fit_rank_identifier, rank_keyed_model_spec
from .objective import ObjectiveWeights, TrainingObjective, distillation_projection, prepare_teacher_targets
from .run_folder import claim_run_folder, releases_run_folder_on_error
from .run_log import RunLogger
from .sampler import EpochBatchSampler
from .schedule import StepSchedule, build_optimizer, build_scheduler
from .seeding import Stream, capture_rng_state, derive_seed, seed_global, seeded_generator
from .step import FaceClassifier, StepResult, train_step
from .teacher import teacher_targets

__all__ = ["Trainer", "build_plan"]

logger = logging.getLogger("partialface.train")

CHECKPOINT_NAME = "checkpoint.pt"


def build_plan(spec: str | Mapping[str, int], num_channels: int | None = None) -> ChannelPlan:
    """The channel plan of a config's ``PLAN`` (a preset name, a JSON path, ``{generate, m, n}``).

    ``num_channels`` (TFace ``NUM_CHS``), when given, must equal the plan's subset size ``s``.
    """
    with key_errors("PLAN"):
        if isinstance(spec, Mapping):
            plan = ChannelPlan.generate(spec["generate"], m=spec.get("m", 6), n=spec.get("n", 6))
        else:
            plan = ChannelPlan.from_name_or_path(spec)
    if num_channels is not None and num_channels != plan.s:
        raise ConfigError(f"NUM_CHS {num_channels} does not match the plan's subset size s = {plan.s} (PLAN {spec!r})",
                          ("NUM_CHS", "PLAN"))
    return plan


def _head_kwargs(cfg: Mapping[str, Any], num_classes: int) -> dict[str, Any]:
    dataset = cfg["DATASETS"][0]
    kwargs: dict[str, Any] = {"embedding_size": cfg["EMBEDDING_SIZE"], "num_classes": num_classes}
    accepted = inspect.signature(HEADS.builder(cfg["HEAD_NAME"])).parameters
    if "s" in accepted:
        kwargs["s"] = dataset["scale"]
    if "m" in accepted:
        kwargs["m"] = dataset["margin"]
    return kwargs


def _check_run_folder(out: Path) -> None:
    """Say in one line why ``OUT`` cannot be the run folder (it is created on the first write)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"OUT {os.fspath(out)!r} is a file, not a run folder", ("OUT",))
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"OUT {os.fspath(out)!r} cannot be created: {os.fspath(existing)!r} is a file", ("OUT",))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"OUT {os.fspath(out)!r}: {os.fspath(existing)!r} is not writable", ("OUT",))


def _batches(loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The loader's batches; a face that cannot be read stops the run with one line naming the file."""
    batches = iter(loader)
    while True:
        with key_errors("DATA_ROOT"):
            batch = next(batches, None)
        if batch is None:
            return
        yield batch


def _unwrap(model: nn.Module) -> FaceClassifier:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model  # type: ignore[return-value]


class Trainer:
    """Trains a backbone and head from a resolved config (see :mod:`partialface.training.config`).

    Args:
        cfg: the resolved config (:func:`partialface.training.load_config`).
        progress: show a tqdm progress bar (rank 0).
        context: the distributed context; None sets one up from torchrun's environment.

    ``fit()`` resumes from ``OUT/checkpoint.pt`` (or ``META_RESUME``) when present, trains until
    ``NUM_EPOCH`` epochs or ``MAX_SAMPLES`` samples, evaluates on the development pairs after every
    epoch and writes checkpoints and logs into ``OUT``.
    """

    @releases_run_folder_on_error
    def __init__(self, cfg: Mapping[str, Any], progress: bool = True, context: DistributedContext | None = None) -> None:
        self.cfg = dict(cfg)
        self.progress = progress
        self._owns_context = context is None
        self.context = context or init_distributed(cfg["DEVICE"], cfg["DIST_BACKEND"])
        self.device = self.context.device
        self.out = Path(cfg["OUT"])
        self.run_lock = None
        if self.context.is_main:
            _check_run_folder(self.out)
            self.run_lock = claim_run_folder(self.out, CHECKPOINT_NAME)  # held until fit() ends
        if cfg["THREADS"] > 0:
            torch.set_num_threads(cfg["THREADS"])
        self.amp = bool(cfg["AMP"]) and self.device.type == "cuda"  # float16 with a gradient scaler
        # bfloat16 keeps float32's range, so the CPU's autocast needs no scaler
        self.autocast = torch.float16 if self.amp else (
            torch.bfloat16 if cfg["CPU_BFLOAT16"] and self.device.type == "cpu" else None)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
        self.crop = CropSpec.from_dict(cfg["CROP"])
        self.preparation = training_preparation(cfg, self.crop)  # what a client must do to a raw photo
        self.batch_size = cfg["DATASETS"][0]["batch_size"]
        self.global_batch = self.batch_size * self.context.world_size

        resume = self._find_resume()
        self.plan = build_plan(cfg["PLAN"], cfg["NUM_CHS"])
        self.encoder, self.data = self._build_encoder_and_data(resume)
        self.views = cfg["VIEWS"]
        self.images_per_step = self.batch_size // self.views  # each image drawn VIEWS times per batch
        self.augmentation = BatchAugmentation.from_dict(cfg["AUGMENT"])
        self.objective = self._build_objective()
        self.steps_per_epoch = EpochBatchSampler.steps_per_epoch(len(self.data.dataset), self.images_per_step,
                                                                 self.context.world_size)
        if self.steps_per_epoch == 0:
            raise PartialFaceError(
                f"{self.data.description} x {self.data.repeats} repeats is less than one global batch of "
                f"{self.global_batch} ({self.batch_size} x {self.context.world_size} processes)"
            )
        self.total_steps = self._total_steps()
        self.schedule = StepSchedule.from_config(
            cfg["LRS"], cfg["STAGES"], cfg["WARMUP_STEP"], self.steps_per_epoch, self.total_steps, cfg["STAGES_UNIT"]
        )
        self.classifier = self._build_classifier(initialise=resume is None)
        self.optimizer = build_optimizer([self.classifier], self.schedule.lrs[0], cfg["MOMENTUM"], cfg["WEIGHT_DECAY"])
        self.scheduler = build_scheduler(self.optimizer, self.schedule)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        self.model: nn.Module = self.classifier
        if self.context.is_distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.classifier, device_ids=device_ids)

        self.epoch = 0
        self.step = 0
        self.samples_seen = 0
        self.metrics: list[dict[str, Any]] = []
        if resume is not None:
            self._restore(resume)
        self.evaluator = DevEvaluator.from_config(cfg) if self.context.is_main else None
        self.logger: RunLogger | None = None
        if self.context.is_main:
            tensorboard = (cfg["LOG_ROOT"] or self.out / "tensorboard") if cfg["TENSORBOARD"] else None
            self.logger = RunLogger(self.out, tensorboard)
            self.logger.resume_at(self.step)

    # ------------------------------------------------------------------------------ setup helpers
    def _build_encoder_and_data(self, resume: Mapping[str, Any] | None) -> tuple[InputEncoder, TrainingData]:
        """The encoder (from the checkpoint when resuming) and the training set repeated for it.

        A new run of a frequency encoder estimates the per-frequency input scale on
        ``FREQUENCY_SCALE_SAMPLES`` seeded training faces and rebuilds the encoder with it.
        """
        cfg = self.cfg
        options = dict(cfg["ENCODER_OPTIONS"])
        if resume is not None:
            encoder = encoder_from_state(resume["encoder"])
        else:
            with key_errors("ENCODER_OPTIONS"):
                encoder = get_encoder(cfg["ENCODER"], plan=self.plan, train_repeats=cfg["NUM_AUG"], **options)
        data = build_training_data(cfg, encoder.train_repeats)
        if resume is None and isinstance(encoder, FrequencyEncoder):
            scale = estimate_frequency_scale(sample_faces(data, cfg["FREQUENCY_SCALE_SAMPLES"], cfg["SEED"]))
            encoder = get_encoder(cfg["ENCODER"], plan=self.plan, frequency_scale=scale, train_repeats=cfg["NUM_AUG"], **options)
        return encoder, data

    def _build_classifier(self, initialise: bool) -> FaceClassifier:
        """Backbone and head, seeded from SEED (and BACKBONE_RESUME / HEAD_RESUME weights when ``initialise``)."""
        cfg = self.cfg
        seed_global(cfg["SEED"], Stream.INIT)
        self.model_kwargs = {
            "in_channels": self.encoder.out_channels,
            "embedding_size": cfg["EMBEDDING_SIZE"],
            "input_size": cfg["INPUT_SIZE"],
            **cfg["MODEL_OPTIONS"],
        }
        self.model_name = cfg["BACKBONE_NAME"]
        if cfg["RANK_KEYED"]:
            self.model_name, self.model_kwargs = rank_keyed_model_spec(self.encoder, cfg["BACKBONE_NAME"], self.model_kwargs)
        self.head_kwargs = _head_kwargs(cfg, self.data.num_classes)
        try:
            backbone = get_model(self.model_name, **self.model_kwargs)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"BACKBONE_NAME {cfg['BACKBONE_NAME']} rejects MODEL_OPTIONS {cfg['MODEL_OPTIONS']}: {err}",
                              ("BACKBONE_NAME", "MODEL_OPTIONS")) from err
        head = get_head(cfg["HEAD_NAME"], **self.head_kwargs)
        projection = None
        if self.objective is not None and self.objective.weights.distill > 0:
            projection = distillation_projection(cfg["EMBEDDING_SIZE"], self.objective.teacher_size)
        if initialise:
            self._initialise_from(backbone, head)
            if isinstance(backbone, RankKeyedBackbone) and not self.cfg["BACKBONE_RESUME"]:
                fit_rank_identifier(backbone, self.encoder, sample_faces(self.data, cfg["FREQUENCY_SCALE_SAMPLES"], cfg["SEED"]))
        if self.context.is_distributed:
            backbone = synchronize_batch_norm(backbone, self.device)
        classifier = FaceClassifier(backbone, head, autocast=self.autocast, channels_last=cfg["CHANNELS_LAST"],
                                    projection=projection).to(self.device)
        if cfg["CHANNELS_LAST"]:
            classifier = classifier.to(memory_format=torch.channels_last)
        return classifier

    def _build_objective(self) -> TrainingObjective | None:
        """The step's losses beyond TFace's margin loss (None: the margin loss alone, on every label)."""
        weights = ObjectiveWeights.from_config(self.cfg)
        identities = self.data.num_identities or self.data.num_classes
        if weights.plain and identities == self.data.num_classes:
            return None
        teacher = None
        if weights.needs_teacher:
            teacher = prepare_teacher_targets(teacher_targets(self.cfg, self.data.teacher_paths))
        return TrainingObjective(weights, self.data.num_classes, teacher)

    def _total_steps(self) -> int:
        steps = self.cfg["NUM_EPOCH"] * self.steps_per_epoch
        if self.cfg["MAX_SAMPLES"] > 0:
            steps = min(steps, math.ceil(self.cfg["MAX_SAMPLES"] / self.global_batch))
        return steps

    def _find_resume(self) -> dict[str, Any] | None:
        latest = self.out / CHECKPOINT_NAME
        path = latest if latest.is_file() else (Path(self.cfg["META_RESUME"]) if self.cfg["META_RESUME"] else None)
        if path is None:
            return None
        checkpoint = load_checkpoint(path, map_location="cpu", require_training_state=True)
        differences = config_differences(checkpoint["config"], self.cfg)
        if differences:
            detail = ", ".join(f"{k}: {checkpoint['config'].get(k)!r} -> {self.cfg.get(k)!r}" for k in differences)
            raise ConfigError(
                f"cannot resume {path}: the config changed in keys that alter training ({detail}); "
                "use another OUT or restore those values", differences,
            )
        saved_world = checkpoint.get("world_size", 1)
        if saved_world != self.context.world_size:
            raise PartialFaceError(
                f"cannot resume {path} with {self.context.world_size} processes: it was trained with {saved_world} "
                "(the global batch, and so every step, would change)"
            )
        if self.context.is_main:
            logger.info("resuming from %s (epoch %d, step %d)", path, checkpoint["epoch"], checkpoint["step"])
        return checkpoint

    def _initialise_from(self, backbone: nn.Module, head: nn.Module) -> None:
        for key, module, entry in (("BACKBONE_RESUME", backbone, "model"), ("HEAD_RESUME", head, "head")):
            if not self.cfg[key]:
                continue
            checkpoint = load_checkpoint(self.cfg[key])
            if checkpoint.get(entry) is None:
                raise ConfigError(f"{key} {self.cfg[key]!r} holds no {entry} weights", (key,))
            try:
                module.load_state_dict({k: v.float() if v.is_floating_point() else v
                                        for k, v in checkpoint[entry]["state_dict"].items()})
            except RuntimeError as err:
                first = str(err).strip().splitlines()[0]
                raise ConfigError(f"{key} {self.cfg[key]!r} does not fit this {entry}: {first}", (key,)) from err

    def _restore(self, checkpoint: Mapping[str, Any]) -> None:
        self.classifier.backbone.load_state_dict(checkpoint["model"]["state_dict"])
        self.classifier.head.load_state_dict(checkpoint["head"]["state_dict"])
        if self.classifier.projection is not None:
            self.classifier.projection.load_state_dict(checkpoint["projection"]["state_dict"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        if checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.epoch = checkpoint["epoch"]
        self.step = checkpoint["step"]
        self.samples_seen = checkpoint["samples_seen"]
        self.metrics = list(checkpoint["metrics"])
        in_epoch = self.step - self.epoch * self.steps_per_epoch
        if not 0 <= in_epoch <= self.steps_per_epoch:
            raise PartialFaceError(
                f"checkpoint step {self.step} does not lie in epoch {self.epoch + 1} of {self.steps_per_epoch} steps: "
                "the data, batch size or number of processes changed"
            )

    # ------------------------------------------------------------------------------ checkpoints
    def checkpoint_state(self) -> dict[str, Any]:
        """The checkpoint dict of the current state (``partialface.checkpoint/1``)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "model": {
                "name": self.model_name,
                "kwargs": dict(self.model_kwargs),
                "state_dict": self.classifier.backbone.state_dict(),
            },
            "head": {"name": self.cfg["HEAD_NAME"], "kwargs": dict(self.head_kwargs), "state_dict": self.classifier.head.state_dict()},
            "encoder": self.encoder.state_dict(),
            "crop": self.crop.to_dict(),
            "preparation": self.preparation.to_dict(),
            **({"projection": {"state_dict": self.classifier.projection.state_dict()}}
               if self.classifier.projection is not None else {}),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.amp else None,
            "epoch": self.epoch,
            "step": self.step,
            "samples_seen": self.samples_seen,
            "steps_per_epoch": self.steps_per_epoch,
            "world_size": self.context.world_size,
            "config": dict(self.cfg),
            "metrics": list(self.metrics),
            "rng": capture_rng_state(),
        }

    def save(self, keep_epoch: bool = False) -> Path | None:
        """Write ``OUT/checkpoint.pt`` (rank 0; atomically), and ``OUT/epoch_NNN.pt`` when ``keep_epoch``."""
        path = None
        if self.context.is_main:
            state = self.checkpoint_state()
            path = save_checkpoint(self.out / CHECKPOINT_NAME, state)
            if keep_epoch:
                save_checkpoint(self.out / f"epoch_{self.epoch:03d}.pt", state)
        self.context.barrier()
        return path

    # ------------------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, Any] | None:
        """Dev verification of the current model (rank 0; other ranks wait). None without DEV_PAIRS."""
        report = None
        if self.evaluator is not None:
            started = time.perf_counter()
            report = self.evaluator.evaluate(self.classifier.backbone, self.encoder, self.device, progress=self.progress)
            report.update(epoch=self.epoch, step=self.step, samples_seen=self.samples_seen,
                          seconds=time.perf_counter() - started)
            self.metrics.append(report)
            assert self.logger is not None
            self.logger.log_dev({**report, "tar_at_far_1e-3": report.get("tar_at_far_1e-3")})
            logger.info(
                "epoch %d step %d: dev accuracy %.4f +- %.4f, AUC %.4f (%d pairs, %.0f s)",
                self.epoch, self.step, report["accuracy"], report["accuracy_std"], report["auc"], report["pairs"],
                report["seconds"],
            )
            with atomic_write(self.out / "metrics.json", "w") as handle:
                json.dump(self.metrics, handle, indent=1)
        self.context.barrier()
        return report

    # ------------------------------------------------------------------------------ training
    def _loader(self, epoch: int, start_step: int, stop_step: int) -> DataLoader:
        sampler = EpochBatchSampler(
            len(self.data.dataset), self.images_per_step, self.cfg["SEED"], epoch,
            self.context.world_size, self.context.rank, start_step, stop_step,
        )
        workers = self.cfg["WORKERS"]
        worker_seed = derive_seed(self.cfg["SEED"], Stream.WORKERS, epoch, self.context.rank)
        keyed = self.objective is not None and self.objective.teacher is not None
        return DataLoader(
            KeyedDataset(self.data.dataset, self.data.num_images) if keyed else self.data.dataset,
            batch_sampler=sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(worker_seed),
            prefetch_factor=2 if workers > 0 else None,
        )

    def _flip(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Mirror the faces drawn for flipping; draws cover the global batch, this process takes its slice.
        Returns the faces and which were mirrored (CPU bools)."""
        draws = torch.rand(self.global_batch, generator=generator) < 0.5
        mine = draws[self.context.rank * self.batch_size : (self.context.rank + 1) * self.batch_size]
        return torch.where(mine.to(images.device)[:, None, None, None], images.flip(-1), images), mine

    def _step_inputs(self, batch: Any, epoch: int, local_step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The faces (on the device), labels and teacher targets of one step: each image repeated for its
        ``VIEWS``, then flipped and augmented with the step's seeded draws."""
        images, labels = batch[0], batch[1]
        keys = batch[2] if len(batch) > 2 else None
        if self.views > 1:
            images, labels = images.repeat(self.views, 1, 1, 1), labels.repeat(self.views)
            keys = keys.repeat(self.views) if keys is not None else None
        images = images.to(self.device, non_blocking=True)
        batch_generator = seeded_generator(self.cfg["SEED"], Stream.BATCH, epoch, local_step)
        flipped = torch.zeros(images.shape[0], dtype=torch.bool)
        if self.cfg["FLIP"]:
            images, flipped = self._flip(images, batch_generator)
        if self.augmentation.active:
            images = self.augmentation(images, batch_generator)
        targets = None
        if keys is not None and self.objective is not None:
            targets = self.objective.targets(keys, flipped)
            targets = targets.to(self.device) if targets is not None else None
        return images, labels, targets

    def _write_config(self) -> None:
        if self.context.is_main:
            with atomic_write(self.out / "config.yaml", "w") as handle:
                yaml.safe_dump(self.cfg, handle, sort_keys=False, default_flow_style=None)

    def fit(self) -> dict[str, Any]:
        """Train to the end of the run (resuming where a checkpoint left off); returns a summary."""
        try:
            return self._fit()
        finally:
            if self.logger is not None:
                self.logger.close()
            if self.run_lock is not None:
                self.run_lock.release()
            if self._owns_context:
                shutdown_distributed(self.context)

    def _fit(self) -> dict[str, Any]:
        cfg = self.cfg
        self._write_config()
        if self.context.is_main:
            logger.info(
                "training %s (%s encoder, %d input channels) on %s; %d steps of %d (%d per epoch), %s",
                cfg["BACKBONE_NAME"] + (" (rank-keyed)" if cfg["RANK_KEYED"] else ""), self.encoder.name, self.encoder.out_channels, self.data.description,
                self.total_steps, self.global_batch, self.steps_per_epoch, self.device,
            )
        bar = tqdm(total=self.total_steps, initial=self.step, desc="train", unit="step",
                   disable=not (self.progress and self.context.is_main), dynamic_ncols=True)
        window: list[StepResult] = []
        last_time = time.perf_counter()
        try:
            while self.step < self.total_steps:
                epoch = self.epoch
                in_epoch = self.step - epoch * self.steps_per_epoch
                stop = min(self.steps_per_epoch, self.total_steps - epoch * self.steps_per_epoch)
                if in_epoch < stop:
                    self.classifier.train()
                    for local_step, batch in enumerate(_batches(self._loader(epoch, in_epoch, stop)), start=in_epoch):
                        images, labels, targets = self._step_inputs(batch, epoch, local_step)
                        encoder_generator = seeded_generator(cfg["SEED"], Stream.BATCH, epoch, local_step, 1 + self.context.rank)
                        seed_global(cfg["SEED"], Stream.GLOBAL, epoch, local_step, self.context.rank)
                        lr = self.optimizer.param_groups[0]["lr"]
                        result = train_step(self.model, self.optimizer, self.scheduler, self.scaler, self.encoder,
                                            images, labels, encoder_generator, self.objective, targets)
                        self.step += 1
                        self.samples_seen += self.global_batch
                        window.append(result)
                        bar.update(1)
                        if self.step % cfg["LOG_EVERY"] == 0 or self.step == self.total_steps:
                            now = time.perf_counter()
                            self._log_window(window, lr, now - last_time)
                            bar.set_postfix(loss=f"{window[-1].loss:.3f}", lr=f"{lr:.3g}")
                            window, last_time = [], now
                        if cfg["SAVE_STEPS"] and self.step % cfg["SAVE_STEPS"] == 0 and local_step + 1 < self.steps_per_epoch:
                            self.save()
                if stop == self.steps_per_epoch:
                    self.epoch += 1
                    self.evaluate()
                    self.save(keep_epoch=self.epoch in cfg["SAVE_EPOCHS"])
                else:  # the sample budget ends inside this epoch
                    self.evaluate()
                    self.save()
        finally:
            bar.close()
        return {
            "epoch": self.epoch,
            "step": self.step,
            "samples_seen": self.samples_seen,
            "checkpoint": str(self.out / CHECKPOINT_NAME),
            "metrics": self.metrics[-1] if self.metrics else None,
        }

    def _log_window(self, window: list[StepResult], lr: float, seconds: float) -> None:
        """Log the mean loss and batch accuracy of the last steps over all processes (a collective call)."""
        if not window:
            return
        part_names = sorted(window[0].parts)
        totals = torch.tensor(
            [sum(r.loss * r.batch for r in window), sum(r.correct for r in window), sum(r.batch for r in window),
             sum(r.batch if r.scored is None else r.scored for r in window),
             *(sum(r.parts[name] * r.batch for r in window) for name in part_names)],
            dtype=torch.float64,
        )
        if self.context.is_distributed:
            totals = totals.to(self.device)
            torch.distributed.all_reduce(totals)
            totals = totals.cpu()
        loss_sum, correct, images, scored, *part_sums = totals.tolist()
        if self.logger is None:
            return
        step_seconds = sum(r.step_seconds for r in window)
        self.logger.log_train({
            "step": self.step,
            "epoch": self.step / self.steps_per_epoch,
            "samples_seen": self.samples_seen,
            "lr": lr,
            "loss": loss_sum / images,
            "batch_accuracy": correct / max(scored, 1),
            **{name: value / images for name, value in zip(part_names, part_sums)},
            "images_per_second": images / max(seconds, 1e-9),
            "encode_share": sum(r.encode_seconds for r in window) / max(step_seconds, 1e-9),
        })
