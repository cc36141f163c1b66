"""Every training-config key, declared once: its default, its check, whether it may change on resume, its meaning.

:data:`KEYS` is the one table. :data:`DEFAULTS`, :data:`RUNTIME_KEYS`, :data:`ALIASES` and the
per-key checks of :func:`partialface.training.config.resolve_config` are derived from it, and so is
the key reference ``docs/config.md`` (:func:`key_reference`; ``partialface train --keys`` prints it,
and a test keeps the file equal to it). Adding a key is one entry here.

``tface`` marks the keys of TFace's PartialFace ``train.yaml``, accepted with their meaning there;
``runtime`` marks the keys a resumed run may change: they do not change what the finished weights
are, or they only extend or shorten the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from . import config_checks as c

__all__ = ["ALIASES", "BY_NAME", "DEFAULTS", "KEYS", "REQUIRED", "RUNTIME_KEYS", "ConfigKey", "key_reference"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()  # the default of a key that every config must give


@dataclass(frozen=True)
class ConfigKey:
    """One config key: ``check(name, value)`` returns the resolved value or raises naming the key."""

    name: str
    default: Any
    check: c.Check
    doc: str
    tface: bool = False
    runtime: bool = False
    alias_of: str | None = None  # the same setting under TFace's name; setting one in a later file replaces both


def _tface(name: str, default: Any, check: c.Check, doc: str, **flags: Any) -> ConfigKey:
    return ConfigKey(name, default, check, doc, tface=True, **flags)


KEYS: tuple[ConfigKey, ...] = (
    # ---- TFace train.yaml
    _tface("SEED", 1337, c.integer(0), "seed of every random draw (initialisation, sampling, flips, ranks)"),
    _tface("DATA_ROOT", REQUIRED, c.text, "the folder holding the training data (see `DATA_FORMAT`)", runtime=True),
    _tface("INDEX_ROOT", "", c.text, "the folder of TFace index files (`DATA_FORMAT: index`)", runtime=True),
    _tface("DATASETS", REQUIRED, c.datasets,
           "the training sets: the first entry gives `name`, `batch_size` per process (64, at most 4096), `weight` (1.0), and the "
           "head's `scale` (64) and `margin` (0.5); each entry may give its own `root` folder (default "
           "`DATA_ROOT/name`) and `teacher_root` (where the photos lie whose teacher descriptors stand for its images, "
           "by relative path: an aligned copy shares its source's), later entries only `name`, `root` and "
           "`teacher_root` (folders and index data: they train together, labels following on)"),
    _tface("BACKBONE_RESUME", "", c.text, "a partialface checkpoint whose backbone weights initialise the run"),
    _tface("HEAD_RESUME", "", c.text, "a partialface checkpoint whose head weights initialise the run"),
    _tface("META_RESUME", "", c.text, "a partialface checkpoint to resume from instead of `OUT/checkpoint.pt`",
           runtime=True),
    _tface("INPUT_SIZE", 112, c.input_size, "face size in pixels: an int or `[n, n]`"),
    _tface("BACKBONE_NAME", "IR_18", c.backbone, "`IR_18`, `IR_50`, `MobileFaceNet`, ... or a registry name"),
    _tface("EMBEDDING_SIZE", 512, c.integer(1), "length of the face embedding"),
    _tface("MODEL_ROOT", "", c.text, "the run folder when `OUT` is empty", runtime=True),
    _tface("LOG_ROOT", "", c.text, "tensorboard folder (default `OUT/tensorboard`)", runtime=True),
    _tface("DIST_FC", False, c.boolean, "accepted; the head is always replicated (data parallel)"),
    _tface("HEAD_NAME", "ArcFace", c.head, "`ArcFace`, `CosFace`, `CurricularFace` or `Softmax`"),
    _tface("LOSS_NAME", "DistCrossEntropy", c.loss_name,
           "`DistCrossEntropy` or `Softmax`: both are cross-entropy on the head's logits"),
    _tface("RGB_MEAN", [0.5, 0.5, 0.5], c.half_normalisation, "must be 0.5: encoders take faces in [-1, 1]"),
    _tface("RGB_STD", [0.5, 0.5, 0.5], c.half_normalisation, "must be 0.5: encoders take faces in [-1, 1]"),
    _tface("LRS", [0.1, 0.01, 0.001, 0.0001], c.learning_rates, "learning rates, one per stage"),
    _tface("WARMUP_STEP", -1, c.integer(), "linear warm-up steps; <= 0 for none"),
    _tface("STAGES", [10, 18, 22], c.stages,
           "boundaries between the `LRS` (one fewer than `LRS`), in the unit of `STAGES_UNIT`"),
    _tface("START_EPOCH", 0, c.start_epoch, "must be 0: resuming is automatic"),
    _tface("NUM_EPOCH", 24, c.integer(1), "epochs of the run", runtime=True),
    _tface("SAVE_EPOCHS", [], c.int_list(1), "epochs whose checkpoint is also kept as `OUT/epoch_NNN.pt`",
           runtime=True),
    _tface("WEIGHT_DECAY", 0.0005, c.number(0.0), "SGD weight decay (not on BatchNorm parameters and biases)"),
    _tface("MOMENTUM", 0.9, c.number(0.0), "SGD momentum"),
    _tface("WORLD_SIZE", 1, c.integer(1), "accepted; torchrun's environment decides", runtime=True),
    _tface("RANK", 0, c.integer(0), "accepted; torchrun's environment decides", runtime=True),
    _tface("LOCAL_RANK", 0, c.integer(0), "accepted; torchrun's environment decides", runtime=True),
    _tface("DIST_BACKEND", "auto", c.choice("auto", "nccl", "gloo"), "`auto`, `nccl` or `gloo`; CPU runs use gloo",
           runtime=True),
    _tface("DIST_URL", "env://", c.text, "accepted; torchrun's environment decides", runtime=True),
    _tface("NUM_WORKERS", None, c.optional(c.processes(0)), "TFace's name of `WORKERS`", runtime=True,
           alias_of="WORKERS"),
    _tface("AMP", True, c.boolean, "mixed precision (float16) for the backbone; CUDA only"),
    _tface("METHOD", None, c.optional(c.encoder), "TFace's name of `ENCODER` (`PartialFace` -> `partialface`)",
           alias_of="ENCODER"),
    _tface("NUM_AUG", 3, c.integer(1), "copies of every image per epoch, for encoders that draw random ranks"),
    _tface("NUM_CHS", None, c.optional(c.integer(1)), "`s`, channels per subset; checked against the plan"),
    # ---- partialface
    ConfigKey("ENCODER", None, c.optional(c.encoder),
              "the input encoder: `rgb`, `partialface`, `fixed`, `pruned`, `frequency` (default `partialface`)"),
    ConfigKey("ENCODER_OPTIONS", {}, c.without("plan", "frequency_scale", "train_repeats",
                                               because="PLAN, the data and NUM_AUG"),
              "extra keyword arguments of `partialface.encoders.get_encoder`, e.g. `{subset: 2}` for `fixed`"),
    ConfigKey("PLAN", "tface", c.plan, "a plan preset (`tface`, `s3`, `private`, ...: `partialface plan list`), a path "
              "to a plan JSON, or `{generate: SEED, m: 6, n: 6}`"),
    ConfigKey("RANK_KEYED", False, c.boolean, "PartialFace only: wrap `BACKBONE_NAME` in `rank_keyed` "
              "(`partialface.models.rank_keyed`): the model names the rank of each input and weights its channels "
              "by frequency, not by slot; the rank identifier is fitted on `FREQUENCY_SCALE_SAMPLES` training faces"),
    ConfigKey("MODEL_OPTIONS", {}, c.without("in_channels", "embedding_size", "input_size",
                                             because="ENCODER, EMBEDDING_SIZE, INPUT_SIZE"),
              "extra keyword arguments of `get_model`, e.g. `{width: 0.5}`"),
    ConfigKey("DATA_FORMAT", "folders", c.choice("folders", "index", "recordio"),
              "`folders`: `DATA_ROOT/name/<person>/<image>`; `index`: `INDEX_ROOT/name.txt` of `path<TAB>label` "
              "lines relative to `DATA_ROOT`; `recordio`: `DATA_ROOT/name/train.rec` and `train.idx`"),
    ConfigKey("MIN_IMAGES", 1, c.integer(1), "people with fewer images are left out"),
    ConfigKey("EXCLUDE_PAIRS", "", c.text, "an LFW `pairs.txt`: with `EXCLUDE_FOLDS`, the people to leave out",
              runtime=True),
    ConfigKey("EXCLUDE_FOLDS", [], c.int_list(1), "every person in these folds of `EXCLUDE_PAIRS` is left out"),
    ConfigKey("CROP", None, c.crop_shape, "`{box: [l, t, r, b] or null, size: n}`; `size` must equal `INPUT_SIZE`"),
    ConfigKey("FLIP", True, c.boolean, "random horizontal flips"),
    ConfigKey("WORKERS", 2, c.processes(0), "DataLoader processes (at most 256)", runtime=True),
    ConfigKey("THREADS", 0, c.processes(0), "torch threads per process (at most 256); 0 keeps torch's default",
              runtime=True),
    ConfigKey("DEV_PAIRS", "", c.text, "an LFW `pairs.txt` or an InsightFace `.bin` evaluated after every epoch; "
              "empty for none", runtime=True),
    ConfigKey("DEV_FOLDS", [], c.int_list(1), "folds of `DEV_PAIRS` to evaluate; empty for all", runtime=True),
    ConfigKey("DEV_IMAGES", "", c.text, "image folder of an LFW `DEV_PAIRS`", runtime=True),
    ConfigKey("DEV_BATCH_SIZE", 0, c.integer(0), "evaluation batch; 0: the training batch size", runtime=True),
    ConfigKey("MAX_SAMPLES", 0, c.integer(0), "stop after this many training samples, all processes together; "
              "0 for no budget", runtime=True),
    ConfigKey("STAGES_UNIT", "epoch", c.choice("epoch", "fraction"),
              "`epoch`: `STAGES` are epochs (TFace); `fraction`: fractions of the whole run, so that runs of "
              "different budgets decay at the same point (a resumed run with another `NUM_EPOCH` or `MAX_SAMPLES` "
              "follows the new length from where it is)"),
    ConfigKey("DEVICE", "auto", c.choice("auto", "cpu", "cuda"), "`auto`, `cpu` or `cuda`", runtime=True),
    ConfigKey("OUT", "", c.text, "the run folder (checkpoints, logs); required unless `MODEL_ROOT` is given",
              runtime=True),
    ConfigKey("SAVE_STEPS", 0, c.integer(0), "also checkpoint every this many steps inside an epoch; 0: epoch ends only",
              runtime=True),
    ConfigKey("LOG_EVERY", 10, c.integer(1), "steps between rows of `OUT/train_log.csv`", runtime=True),
    ConfigKey("TENSORBOARD", False, c.boolean, "also log to tensorboard (needs the `tensorboard` package)",
              runtime=True),
    ConfigKey("FREQUENCY_SCALE_SAMPLES", 256, c.integer(1), "training faces that estimate the per-frequency input scale"),
    ConfigKey("CACHE_IMAGES", False, c.boolean, "decode and crop every image once and keep it in memory as uint8 "
              "(folders and index data; best with `WORKERS: 0`)", runtime=True),
    ConfigKey("SKIP_UNREADABLE", False, c.boolean, "leave out training images that cannot be read or cropped: "
              "each image is decoded once before training, the count and first names go to the log; off, the first "
              "unreadable image stops the run with its name"),
    ConfigKey("CHANNELS_LAST", False, c.boolean, "run the backbone channels-last (fast mixed precision on CUDA)",
              runtime=True),
    ConfigKey("CPU_BFLOAT16", False, c.boolean, "on the CPU, run the backbone under bfloat16 autocast (faster where "
              "the CPU has AVX-512 BF16 or AMX: benchmarks/train_step.py; the numbers change, so runs differ)"),
    # ---- partialface: the training recipe beyond the margin loss (partialface.training.objective)
    ConfigKey("MARGIN_MIN_IMAGES", 1, c.integer(1), "people with fewer training images than this get no class in the "
              "head (no margin loss); they still teach through distillation and view consistency (with `MIN_IMAGES: 1`, "
              "LFW's single-photo people)"),
    ConfigKey("AUGMENT", {}, c.augmentation, "random changes of each training face after the flip, seeded per step: "
              "`{shift: 0.04, scale: 0.05, rotate: 5, brightness: 0.1, contrast: 0.1, saturation: 0.1}` (fractions "
              "of the face side, relative changes, degrees); `{}` for none"),
    ConfigKey("VIEWS", 1, c.integer(1), "each image of a batch is drawn this many times (own flip, augmentation and "
              "rank), so a batch holds `batch_size / VIEWS` images; `CONSISTENCY_WEIGHT` pulls their embeddings together"),
    ConfigKey("TEACHER_CACHE", "", c.text, "dlib descriptors of the training images (`partialface teacher CONFIG` "
              "builds it); needed by `DISTILL_WEIGHT` and `RELATION_WEIGHT`", runtime=True),
    ConfigKey("MARGIN_WEIGHT", 1.0, c.number(0.0), "weight of the margin head's cross-entropy"),
    ConfigKey("DISTILL_WEIGHT", 0.0, c.number(0.0), "weight of embedding distillation: 1 - cosine between a learned "
              "linear projection of the embedding and the teacher's descriptor (centred)"),
    ConfigKey("RELATION_WEIGHT", 0.0, c.number(0.0), "weight of relational distillation: mean squared difference "
              "between the batch's embedding cosine matrix and the teacher's"),
    ConfigKey("CONSISTENCY_WEIGHT", 0.0, c.number(0.0), "weight of view consistency: 1 - cosine between the "
              "embeddings of the `VIEWS` of one image (for PartialFace: the same face under different ranks)"),
)

BY_NAME: dict[str, ConfigKey] = {key.name: key for key in KEYS}
DEFAULTS: dict[str, Any] = {key.name: key.default for key in KEYS}
RUNTIME_KEYS: frozenset[str] = frozenset(key.name for key in KEYS if key.runtime)
ALIASES: dict[str, str] = {
    **{key.name: key.alias_of for key in KEYS if key.alias_of},
    **{key.alias_of: key.name for key in KEYS if key.alias_of},
}

_INTRO = """\
# Training config keys

Generated from `src/partialface/training/config_keys.py` by `partialface train --keys`; do not edit.

A config is a YAML mapping of these keys; relative paths are taken from the working directory, as TFace
does. `partialface train A.yaml B.yaml --set KEY=VALUE` combines files: a key in a later file replaces
the earlier value wholesale, a mapping or a list included (`CROP`, `DATASETS`, `PLAN`); a dotted key
(`DATASETS.0.batch_size: 256`, `CROP.box: [5, 5, 117, 117]`) changes one entry inside instead, in a file
as in `--set`. Setting one of two names of a setting (`METHOD` / `ENCODER`, `NUM_WORKERS` / `WORKERS`)
replaces both. `--set` comes last. The resolved config (every key, defaults filled in) is what a
checkpoint stores; `partialface train ... --print-config` shows it.

"May change on resume": a run resumed from its checkpoint refuses a changed value of any other key.
"""


def _inline(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=1000).removesuffix("...\n").strip()


def key_reference() -> str:
    """The markdown reference of every key (the content of ``docs/config.md``)."""
    lines = [_INTRO]
    for title, tface in (("TFace `train.yaml` keys", True), ("partialface keys", False)):
        lines += [f"## {title}", "", "| key | default | may change on resume | meaning |", "| --- | --- | --- | --- |"]
        for key in KEYS:
            if key.tface == tface:
                default = "*required*" if key.default is REQUIRED else f"`{_inline(key.default)}`"
                cells = (f"`{key.name}`", default, "yes" if key.runtime else "", key.doc)
                lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        lines.append("")
    return "\n".join(lines)
