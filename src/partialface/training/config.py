"""Training configuration: TFace ``train.yaml`` keys plus partialface's own, validated and resolved.

A configuration is a YAML mapping of upper-case keys. Every key of TFace's PartialFace ``train.yaml``
is accepted with its meaning there; partialface adds keys for the input encoder, the channel plan, the
data layout, the development evaluation and the training budget. :func:`resolve_config` checks every
value and returns a plain dict holding *every* key (defaults filled in, names mapped to the registries),
which is what a checkpoint stores.

TFace keys
----------
``SEED`` (1337), ``DATA_ROOT``, ``INDEX_ROOT``, ``DATASETS`` (exactly one entry: ``name``,
``batch_size`` per process, ``weight``, ``scale`` and ``margin`` of the head), ``BACKBONE_RESUME`` /
``HEAD_RESUME`` (a partialface checkpoint whose backbone / head weights initialise the run),
``META_RESUME`` (a partialface checkpoint to resume from instead of ``OUT/checkpoint.pt``),
``INPUT_SIZE`` (an int or ``[n, n]``), ``BACKBONE_NAME`` (``IR_18``, ``IR_50``, ``MobileFaceNet``, or a
registry name), ``EMBEDDING_SIZE``, ``MODEL_ROOT`` (used as ``OUT`` when ``OUT`` is empty), ``LOG_ROOT``
(tensorboard folder), ``DIST_FC`` (accepted; the head is always replicated, data-parallel),
``HEAD_NAME`` (``ArcFace``, ``CosFace``, ``CurricularFace``, ``Softmax``), ``LOSS_NAME``
(``DistCrossEntropy`` or ``Softmax``: both are cross-entropy on the head's logits), ``RGB_MEAN`` /
``RGB_STD`` (must be 0.5: encoders take faces in [-1, 1]), ``LRS``, ``WARMUP_STEP`` (linear warm-up
steps, <= 0 for none), ``STAGES``, ``START_EPOCH`` (must be 0; resuming is automatic), ``NUM_EPOCH``,
``SAVE_EPOCHS`` (epochs whose checkpoint is also kept as ``OUT/epoch_NNN.pt``), ``WEIGHT_DECAY``,
``MOMENTUM``, ``WORLD_SIZE`` / ``RANK`` / ``LOCAL_RANK`` / ``DIST_URL`` (accepted; torchrun's
environment decides), ``DIST_BACKEND`` (``auto``, ``nccl`` or ``gloo``; CPU runs always use gloo),
``NUM_WORKERS`` (alias of ``WORKERS``), ``AMP`` (mixed precision for the backbone, CUDA only),
``METHOD`` (alias of ``ENCODER``: ``PartialFace`` -> ``partialface``), ``NUM_AUG`` (copies of every
image per epoch for encoders that draw random ranks), ``NUM_CHS`` (``s``; checked against the plan).

partialface keys
----------------
``ENCODER`` (``rgb``, ``partialface``, ``fixed``, ``pruned``, ``frequency``), ``ENCODER_OPTIONS``
(extra keyword arguments of :func:`partialface.encoders.get_encoder`, e.g. ``{subset: 2}`` for
``fixed``), ``PLAN`` (``tface``, a path to a plan JSON, or ``{generate: seed, m: 6, n: 6}``),
``MODEL_OPTIONS`` (extra keyword arguments of ``get_model``, e.g. ``{width: 0.5}``), ``DATA_FORMAT``
(``folders``: ``DATA_ROOT/name/<person>/<image>``; ``index``: ``INDEX_ROOT/name.txt`` of
``path<TAB>label`` lines relative to ``DATA_ROOT``; ``recordio``: ``DATA_ROOT/name/train.rec`` and
``train.idx``), ``MIN_IMAGES`` (people with fewer images are dropped), ``EXCLUDE_PAIRS`` +
``EXCLUDE_FOLDS`` (every person appearing in those folds of an LFW ``pairs.txt`` is left out of
training), ``CROP`` (``{box: [l, t, r, b] or null, size: n}``; ``size`` must equal ``INPUT_SIZE``),
``FLIP`` (random horizontal flips), ``WORKERS`` (DataLoader processes), ``THREADS`` (torch threads per
process; 0 keeps torch's default), ``DEV_PAIRS`` (an LFW ``pairs.txt`` or an InsightFace ``.bin``;
empty for no evaluation), ``DEV_FOLDS`` (folds of ``DEV_PAIRS`` to evaluate; empty for all),
``DEV_IMAGES`` (image root of ``DEV_PAIRS``), ``DEV_BATCH_SIZE`` (0: the training batch size),
``MAX_SAMPLES`` (stop after this many training samples, all processes together; 0 for no budget),
``STAGES_UNIT`` (``epoch``: ``STAGES`` are epochs as in TFace; ``fraction``: fractions of the whole run,
so that runs with different budgets or ``NUM_AUG`` decay at the same point of their budget; a resumed
run with a changed ``NUM_EPOCH`` or ``MAX_SAMPLES`` then follows the new run length from where it is),
``DEVICE`` (``auto``, ``cpu``, ``cuda``), ``OUT`` (run folder), ``SAVE_STEPS`` (also checkpoint every
this many steps inside an epoch; 0 for epoch ends only), ``LOG_EVERY`` (steps between CSV log rows),
``TENSORBOARD`` (also log to tensorboard; needs the ``tensorboard`` package),
``FREQUENCY_SCALE_SAMPLES`` (training faces used to estimate the per-frequency input scale),
``CACHE_IMAGES`` (folders/index data: decode and crop every image once and keep it in memory as
uint8; best with ``WORKERS: 0``), ``CHANNELS_LAST`` (run the backbone in channels-last memory format,
the fast layout for mixed-precision convolutions on CUDA).

Relative paths are taken relative to the working directory, as TFace does (the shipped configs
expect to be run from the repository root).
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ..data.crop import CropSpec
from ..encoders import list_encoders
from ..models import list_heads, list_models

__all__ = [
    "DEFAULTS",
    "RUNTIME_KEYS",
    "load_config",
    "resolve_config",
    "parse_overrides",
    "apply_overrides",
    "backbone_registry_name",
    "head_registry_name",
    "config_differences",
]

_REQUIRED = object()

# Every accepted key with its default (``_REQUIRED``: must be given).
DEFAULTS: dict[str, Any] = {
    # ---- TFace train.yaml
    "SEED": 1337,
    "DATA_ROOT": _REQUIRED,
    "INDEX_ROOT": "",
    "DATASETS": _REQUIRED,
    "BACKBONE_RESUME": "",
    "HEAD_RESUME": "",
    "META_RESUME": "",
    "INPUT_SIZE": 112,
    "BACKBONE_NAME": "IR_18",
    "EMBEDDING_SIZE": 512,
    "MODEL_ROOT": "",
    "LOG_ROOT": "",
    "DIST_FC": False,
    "HEAD_NAME": "ArcFace",
    "LOSS_NAME": "DistCrossEntropy",
    "RGB_MEAN": [0.5, 0.5, 0.5],
    "RGB_STD": [0.5, 0.5, 0.5],
    "LRS": [0.1, 0.01, 0.001, 0.0001],
    "WARMUP_STEP": -1,
    "STAGES": [10, 18, 22],
    "START_EPOCH": 0,
    "NUM_EPOCH": 24,
    "SAVE_EPOCHS": [],
    "WEIGHT_DECAY": 0.0005,
    "MOMENTUM": 0.9,
    "WORLD_SIZE": 1,
    "RANK": 0,
    "LOCAL_RANK": 0,
    "DIST_BACKEND": "auto",
    "DIST_URL": "env://",
    "NUM_WORKERS": None,
    "AMP": True,
    "METHOD": None,
    "NUM_AUG": 3,
    "NUM_CHS": None,
    # ---- partialface
    "ENCODER": None,
    "ENCODER_OPTIONS": {},
    "PLAN": "tface",
    "MODEL_OPTIONS": {},
    "DATA_FORMAT": "folders",
    "MIN_IMAGES": 1,
    "EXCLUDE_PAIRS": "",
    "EXCLUDE_FOLDS": [],
    "CROP": None,
    "FLIP": True,
    "WORKERS": 2,
    "THREADS": 0,
    "DEV_PAIRS": "",
    "DEV_FOLDS": [],
    "DEV_IMAGES": "",
    "DEV_BATCH_SIZE": 0,
    "MAX_SAMPLES": 0,
    "STAGES_UNIT": "epoch",
    "DEVICE": "auto",
    "OUT": "",
    "SAVE_STEPS": 0,
    "LOG_EVERY": 10,
    "TENSORBOARD": False,
    "FREQUENCY_SCALE_SAMPLES": 256,
    "CACHE_IMAGES": False,
    "CHANNELS_LAST": False,
}

# Keys that may change when a run is resumed (they do not change what the finished weights are, or
# they only extend/shorten the run).
RUNTIME_KEYS = frozenset(
    {
        "NUM_EPOCH", "MAX_SAMPLES", "WORKERS", "NUM_WORKERS", "THREADS", "DEVICE", "OUT", "MODEL_ROOT",
        "LOG_ROOT", "SAVE_EPOCHS", "SAVE_STEPS", "LOG_EVERY", "TENSORBOARD", "DEV_PAIRS", "DEV_FOLDS",
        "DEV_IMAGES", "DEV_BATCH_SIZE", "META_RESUME", "WORLD_SIZE", "RANK", "LOCAL_RANK", "DIST_URL",
        "DIST_BACKEND", "DATA_ROOT", "INDEX_ROOT", "EXCLUDE_PAIRS", "CACHE_IMAGES", "CHANNELS_LAST",
    }
)

_DATASET_KEYS = {"name": "", "batch_size": 64, "weight": 1.0, "scale": 64.0, "margin": 0.5}
_BACKBONE_ALIASES = {"ir101": "ir100", "irse50": "ir_se50", "mobilefacenets": "mobilefacenet"}
_HEAD_ALIASES = {"arcface": "arcface", "cosface": "cosface", "curricularface": "curricularface",
                 "softmax": "softmax"}
_LOSS_NAMES = {"distcrossentropy", "softmax", "crossentropy"}
_DATA_FORMATS = ("folders", "index", "recordio")
_DEVICES = ("auto", "cpu", "cuda")
_BACKENDS = ("auto", "nccl", "gloo")
_STAGE_UNITS = ("epoch", "fraction")


# --------------------------------------------------------------------------------------------- I/O
def load_config(path: str | os.PathLike[str], overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Read a YAML config, apply ``KEY=VALUE`` overrides and return the resolved config.

    Raises ValueError naming the file for unreadable or malformed YAML, and naming the key for any
    invalid value (see :func:`resolve_config`).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"cannot read config {os.fspath(path)!r}: {err}") from err
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"config {os.fspath(path)!r} is not valid YAML: {err}") from err
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValueError(f"config {os.fspath(path)!r} must be a mapping of KEY: value, got {type(raw).__name__}")
    raw = apply_overrides(raw, parse_overrides(overrides))
    try:
        return resolve_config(raw)
    except ValueError as err:
        raise ValueError(f"config {os.fspath(path)!r}: {err}") from None


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["KEY=VALUE", ...]`` -> ``{KEY: yaml-parsed VALUE}`` (``LRS=[0.1,0.01]``, ``AMP=false``, ...).

    ``DATASETS.0.batch_size=32`` style dotted keys address nested values.
    """
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"override {item!r} must look like KEY=VALUE")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as err:
            raise ValueError(f"override {item!r}: value is not valid YAML: {err}") from err
        parsed[key] = value
    return parsed


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``raw`` with ``overrides`` set; dotted keys (``DATASETS.0.batch_size``) go into nesting."""
    result = copy.deepcopy(dict(raw))
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        target: Any = result
        for depth, part in enumerate(parts[:-1]):
            where = ".".join(parts[: depth + 1])
            if isinstance(target, list):
                if not part.isdigit() or int(part) >= len(target):
                    raise ValueError(f"override {dotted}: {where} is not an index of a {len(target)}-item list")
                target = target[int(part)]
            elif isinstance(target, dict):
                if part not in target or not isinstance(target[part], (dict, list)):
                    target[part] = {}
                target = target[part]
            else:
                raise ValueError(f"override {dotted}: {where} is not a mapping or list")
        last = parts[-1]
        if isinstance(target, list):
            if not last.isdigit() or int(last) >= len(target):
                raise ValueError(f"override {dotted}: {last} is not an index of a {len(target)}-item list")
            target[int(last)] = value
        else:
            target[last] = value
    return result


# ------------------------------------------------------------------------------------ name mapping
def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "").replace("-", "")


def _map_name(name: Any, key: str, known: list[str], aliases: Mapping[str, str]) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{key} must be a non-empty string, got {name!r}")
    if name in known:
        return name
    wanted = _normalise(name)
    by_normal = {_normalise(k): k for k in known}
    target = aliases.get(wanted, wanted)
    if target in known:
        return target
    if target in by_normal:
        return by_normal[target]
    close = difflib.get_close_matches(wanted, list(by_normal), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(by_normal[c] for c in close)}?" if close else ""
    raise ValueError(f"{key} {name!r} is not a known name (known: {', '.join(known)}){hint}")


def backbone_registry_name(name: str) -> str:
    """TFace's ``IR_18`` / ``IR_50`` / ``IR_SE_50`` / ``IR_101`` / ``MobileFaceNet`` -> registry names."""
    return _map_name(name, "BACKBONE_NAME", list_models(), _BACKBONE_ALIASES)


def head_registry_name(name: str) -> str:
    """TFace's ``ArcFace`` / ``CosFace`` / ``CurricularFace`` -> registry names."""
    return _map_name(name, "HEAD_NAME", list_heads(), _HEAD_ALIASES)


# ------------------------------------------------------------------------------------- validation
def _unknown_key_error(key: str, known: Iterable[str], where: str) -> ValueError:
    known = list(known)
    close = difflib.get_close_matches(str(key), known, n=3, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(str(key).upper(), known, n=3, cutoff=0.6)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    return ValueError(f"unknown {where} key {key!r}{hint}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int(key: str, low: int | None = None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if not _is_int(value) or (low is not None and value < low):
            bound = f" >= {low}" if low is not None else ""
            raise ValueError(f"{key} must be an integer{bound}, got {value!r}")
        return int(value)

    return check


def _float(key: str, low: float | None = None) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if not _is_number(value) or (low is not None and value < low):
            bound = f" >= {low}" if low is not None else ""
            raise ValueError(f"{key} must be a number{bound}, got {value!r}")
        return float(value)

    return check


def _bool(key: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r}")
        return value

    return check


def _string(key: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value is None:
            return ""
        if not isinstance(value, (str, os.PathLike)):
            raise ValueError(f"{key} must be a string (a path or a name), got {value!r}")
        return os.fspath(value)

    return check


def _choice(key: str, choices: Iterable[str]) -> Callable[[Any], str]:
    choices = tuple(choices)

    def check(value: Any) -> str:
        text = str(value).lower() if isinstance(value, str) else value
        if text not in choices:
            raise ValueError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
        return text

    return check


def _int_list(key: str, low: int | None = None) -> Callable[[Any], list[int]]:
    def check(value: Any) -> list[int]:
        if value is None:
            return []
        if _is_int(value):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(_is_int(v) for v in value):
            raise ValueError(f"{key} must be a list of integers, got {value!r}")
        if low is not None and any(v < low for v in value):
            raise ValueError(f"{key} values must be >= {low}, got {list(value)}")
        return [int(v) for v in value]

    return check


def _mapping(key: str) -> Callable[[Any], dict[str, Any]]:
    def check(value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ValueError(f"{key} must be a mapping of option: value, got {value!r}")
        return dict(value)

    return check


def _number_list(key: str) -> Callable[[Any], list[float]]:
    def check(value: Any) -> list[float]:
        if not isinstance(value, (list, tuple)) or not value or not all(_is_number(v) for v in value):
            raise ValueError(f"{key} must be a non-empty list of numbers, got {value!r}")
        return [float(v) for v in value]

    return check


def _stages(value: Any) -> list[int | float]:
    if value is None or value == []:
        return []
    _number_list("STAGES")(value)  # type check; keep ints as ints (TFace epochs)
    return list(value)


def _input_size(value: Any) -> int:
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(_is_int(v) for v in value) or value[0] != value[1]:
            raise ValueError(f"INPUT_SIZE must be an int or a square [n, n], got {value!r}")
        value = value[0]
    if not _is_int(value) or value < 1:
        raise ValueError(f"INPUT_SIZE must be a positive int or [n, n], got {value!r}")
    return int(value)


def _datasets(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], dict):
        count = len(value) if isinstance(value, list) else type(value).__name__
        raise ValueError(
            f"DATASETS must be a list of exactly one dataset mapping (name, batch_size, scale, margin), got {count}"
        )
    entry = dict(value[0])
    for key in entry:
        if key not in _DATASET_KEYS:
            raise _unknown_key_error(key, _DATASET_KEYS, "DATASETS entry")
    resolved = {**_DATASET_KEYS, **entry}
    resolved["name"] = _string("DATASETS name")(resolved["name"])
    resolved["batch_size"] = _int("DATASETS batch_size", 1)(resolved["batch_size"])
    resolved["weight"] = _float("DATASETS weight", 0.0)(resolved["weight"])
    resolved["scale"] = _float("DATASETS scale", 0.0)(resolved["scale"])
    resolved["margin"] = _float("DATASETS margin")(resolved["margin"])
    if resolved["scale"] <= 0:
        raise ValueError(f"DATASETS scale must be positive, got {resolved['scale']}")
    return [resolved]


def _crop(value: Any, input_size: int) -> dict[str, Any]:
    if value is None:
        value = {"box": None, "size": input_size}
    if not isinstance(value, dict):
        raise ValueError(f"CROP must be a mapping {{box: [l, t, r, b] or null, size: n}}, got {value!r}")
    for key in value:
        if key not in ("box", "size"):
            raise _unknown_key_error(key, ("box", "size"), "CROP")
    value = {"box": value.get("box"), "size": value.get("size", input_size)}
    try:
        spec = CropSpec.from_dict(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"CROP: {err}") from None
    if spec.size != input_size:
        raise ValueError(f"CROP size {spec.size} must equal INPUT_SIZE {input_size}")
    return spec.to_dict()


def _plan(value: Any) -> str | dict[str, int]:
    if value is None or value == "":
        return "tface"
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    if isinstance(value, dict):
        allowed = {"generate": None, "m": 6, "n": 6}
        for key in value:
            if key not in allowed:
                raise _unknown_key_error(key, allowed, "PLAN")
        if "generate" not in value:
            raise ValueError("PLAN mapping needs 'generate: SEED' (and optionally m, n)")
        plan = {**allowed, **value}
        for key in plan:
            _int(f"PLAN {key}", 0 if key == "generate" else 1)(plan[key])
        return {k: int(v) for k, v in plan.items()}
    raise ValueError(f"PLAN must be 'tface', a path to a plan JSON or {{generate: seed, m, n}}, got {value!r}")


def _encoder_name(value: Any, key: str) -> str:
    return _map_name(value, key, list_encoders(), {})


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "SEED": _int("SEED", 0),
    "DATA_ROOT": _string("DATA_ROOT"),
    "INDEX_ROOT": _string("INDEX_ROOT"),
    "DATASETS": _datasets,
    "BACKBONE_RESUME": _string("BACKBONE_RESUME"),
    "HEAD_RESUME": _string("HEAD_RESUME"),
    "META_RESUME": _string("META_RESUME"),
    "INPUT_SIZE": _input_size,
    "BACKBONE_NAME": backbone_registry_name,
    "EMBEDDING_SIZE": _int("EMBEDDING_SIZE", 1),
    "MODEL_ROOT": _string("MODEL_ROOT"),
    "LOG_ROOT": _string("LOG_ROOT"),
    "DIST_FC": _bool("DIST_FC"),
    "HEAD_NAME": head_registry_name,
    "LOSS_NAME": _string("LOSS_NAME"),
    "RGB_MEAN": _number_list("RGB_MEAN"),
    "RGB_STD": _number_list("RGB_STD"),
    "LRS": _number_list("LRS"),
    "WARMUP_STEP": _int("WARMUP_STEP"),
    "STAGES": _stages,
    "START_EPOCH": _int("START_EPOCH", 0),
    "NUM_EPOCH": _int("NUM_EPOCH", 1),
    "SAVE_EPOCHS": _int_list("SAVE_EPOCHS", 1),
    "WEIGHT_DECAY": _float("WEIGHT_DECAY", 0.0),
    "MOMENTUM": _float("MOMENTUM", 0.0),
    "WORLD_SIZE": _int("WORLD_SIZE", 1),
    "RANK": _int("RANK", 0),
    "LOCAL_RANK": _int("LOCAL_RANK", 0),
    "DIST_BACKEND": _choice("DIST_BACKEND", _BACKENDS),
    "DIST_URL": _string("DIST_URL"),
    "NUM_WORKERS": lambda v: None if v is None else _int("NUM_WORKERS", 0)(v),
    "AMP": _bool("AMP"),
    "METHOD": lambda v: None if v is None else _encoder_name(v, "METHOD"),
    "NUM_AUG": _int("NUM_AUG", 1),
    "NUM_CHS": lambda v: None if v is None else _int("NUM_CHS", 1)(v),
    "ENCODER": lambda v: None if v is None else _encoder_name(v, "ENCODER"),
    "ENCODER_OPTIONS": _mapping("ENCODER_OPTIONS"),
    "PLAN": _plan,
    "MODEL_OPTIONS": _mapping("MODEL_OPTIONS"),
    "DATA_FORMAT": _choice("DATA_FORMAT", _DATA_FORMATS),
    "MIN_IMAGES": _int("MIN_IMAGES", 1),
    "EXCLUDE_PAIRS": _string("EXCLUDE_PAIRS"),
    "EXCLUDE_FOLDS": _int_list("EXCLUDE_FOLDS", 1),
    "CROP": lambda v: v,  # checked with INPUT_SIZE below
    "FLIP": _bool("FLIP"),
    "WORKERS": _int("WORKERS", 0),
    "THREADS": _int("THREADS", 0),
    "DEV_PAIRS": _string("DEV_PAIRS"),
    "DEV_FOLDS": _int_list("DEV_FOLDS", 1),
    "DEV_IMAGES": _string("DEV_IMAGES"),
    "DEV_BATCH_SIZE": _int("DEV_BATCH_SIZE", 0),
    "MAX_SAMPLES": _int("MAX_SAMPLES", 0),
    "STAGES_UNIT": _choice("STAGES_UNIT", _STAGE_UNITS),
    "DEVICE": _choice("DEVICE", _DEVICES),
    "OUT": _string("OUT"),
    "SAVE_STEPS": _int("SAVE_STEPS", 0),
    "LOG_EVERY": _int("LOG_EVERY", 1),
    "TENSORBOARD": _bool("TENSORBOARD"),
    "FREQUENCY_SCALE_SAMPLES": _int("FREQUENCY_SCALE_SAMPLES", 1),
    "CACHE_IMAGES": _bool("CACHE_IMAGES"),
    "CHANNELS_LAST": _bool("CHANNELS_LAST"),
}
assert set(_CHECKS) == set(DEFAULTS)


def resolve_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``raw`` and return every key with defaults filled in and names mapped.

    Raises ValueError naming the offending key: an unknown key (with close matches), a missing
    required key, a value of the wrong type or range, or keys that contradict each other.
    """
    if not isinstance(raw, Mapping):
        raise ValueError(f"a config must be a mapping of KEY: value, got {type(raw).__name__}")
    for key in raw:
        if key not in DEFAULTS:
            raise _unknown_key_error(key, DEFAULTS, "config")
    missing = [k for k, v in DEFAULTS.items() if v is _REQUIRED and raw.get(k) in (None, "", [])]
    if missing:
        raise ValueError(f"missing required config key(s): {', '.join(missing)}")
    cfg: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        value = copy.deepcopy(raw[key]) if key in raw else copy.deepcopy(default)
        cfg[key] = _CHECKS[key](value)

    cfg["CROP"] = _crop(cfg["CROP"], cfg["INPUT_SIZE"])
    if [round(v, 6) for v in cfg["RGB_MEAN"]] != [0.5] * 3 or [round(v, 6) for v in cfg["RGB_STD"]] != [0.5] * 3:
        raise ValueError(
            f"RGB_MEAN and RGB_STD must be [0.5, 0.5, 0.5] (encoders take faces in [-1, 1]), "
            f"got {cfg['RGB_MEAN']} and {cfg['RGB_STD']}"
        )
    if _normalise(cfg["LOSS_NAME"]) not in _LOSS_NAMES:
        raise ValueError(f"LOSS_NAME must be DistCrossEntropy or Softmax (cross-entropy), got {cfg['LOSS_NAME']!r}")
    if any(lr <= 0 for lr in cfg["LRS"]):
        raise ValueError(f"LRS must all be positive, got {cfg['LRS']}")
    if len(cfg["STAGES"]) != len(cfg["LRS"]) - 1:
        raise ValueError(
            f"STAGES needs one entry fewer than LRS (a boundary between consecutive learning rates): "
            f"LRS has {len(cfg['LRS'])}, STAGES {len(cfg['STAGES'])}"
        )
    if cfg["STAGES"] != sorted(cfg["STAGES"]) or any(s < 0 for s in cfg["STAGES"]):
        raise ValueError(f"STAGES must be non-negative and ascending, got {cfg['STAGES']}")
    if cfg["STAGES_UNIT"] == "fraction" and any(s > 1 for s in cfg["STAGES"]):
        raise ValueError(f"with STAGES_UNIT: fraction, STAGES must lie in [0, 1], got {cfg['STAGES']}")
    if cfg["START_EPOCH"] != 0:
        raise ValueError(
            f"START_EPOCH must be 0 (got {cfg['START_EPOCH']}): a run resumes by itself from OUT/checkpoint.pt, "
            "or from META_RESUME"
        )

    # Aliases: METHOD -> ENCODER, NUM_WORKERS -> WORKERS.
    method, encoder = cfg["METHOD"], cfg["ENCODER"]
    if method and encoder and method != encoder:
        raise ValueError(f"METHOD ({method}) and ENCODER ({encoder}) disagree; give one of them")
    cfg["ENCODER"] = encoder or method or "partialface"
    cfg["METHOD"] = cfg["ENCODER"]
    if "NUM_WORKERS" in raw and "WORKERS" in raw and cfg["NUM_WORKERS"] != cfg["WORKERS"]:
        raise ValueError(f"NUM_WORKERS ({cfg['NUM_WORKERS']}) and WORKERS ({cfg['WORKERS']}) disagree; give one")
    if cfg["NUM_WORKERS"] is not None and "WORKERS" not in raw:
        cfg["WORKERS"] = cfg["NUM_WORKERS"]
    cfg["NUM_WORKERS"] = cfg["WORKERS"]

    if not cfg["OUT"]:
        if not cfg["MODEL_ROOT"]:
            raise ValueError("OUT (the run folder) is required (MODEL_ROOT is used when OUT is empty)")
        cfg["OUT"] = cfg["MODEL_ROOT"]
    if cfg["DATA_FORMAT"] == "index" and not cfg["INDEX_ROOT"]:
        raise ValueError("DATA_FORMAT: index needs INDEX_ROOT (the folder holding DATASETS name + '.txt')")
    if cfg["DATA_FORMAT"] == "recordio" and (cfg["EXCLUDE_FOLDS"] or cfg["MIN_IMAGES"] > 1):
        raise ValueError("EXCLUDE_FOLDS and MIN_IMAGES need person names or a label scan: use folders or index data")
    if bool(cfg["EXCLUDE_PAIRS"]) != bool(cfg["EXCLUDE_FOLDS"]):
        raise ValueError("EXCLUDE_PAIRS and EXCLUDE_FOLDS go together (the pairs file and the folds to leave out)")
    if cfg["DEV_PAIRS"] and not cfg["DEV_PAIRS"].endswith(".bin") and not cfg["DEV_IMAGES"]:
        raise ValueError("DEV_PAIRS as an LFW pairs file needs DEV_IMAGES (the folder of <Name>/<Name>_NNNN.jpg)")
    if cfg["SAVE_EPOCHS"] and max(cfg["SAVE_EPOCHS"]) > cfg["NUM_EPOCH"]:
        raise ValueError(f"SAVE_EPOCHS {cfg['SAVE_EPOCHS']} names epochs beyond NUM_EPOCH {cfg['NUM_EPOCH']}")
    if cfg["ENCODER"] == "rgb" and cfg["ENCODER_OPTIONS"]:
        raise ValueError(f"ENCODER rgb takes no ENCODER_OPTIONS, got {cfg['ENCODER_OPTIONS']}")
    reserved = {"in_channels", "embedding_size", "input_size"} & set(cfg["MODEL_OPTIONS"])
    if reserved:
        raise ValueError(f"MODEL_OPTIONS must not set {sorted(reserved)}: they follow ENCODER, EMBEDDING_SIZE, INPUT_SIZE")
    reserved = {"plan", "frequency_scale", "train_repeats"} & set(cfg["ENCODER_OPTIONS"])
    if reserved:
        raise ValueError(f"ENCODER_OPTIONS must not set {sorted(reserved)}: they follow PLAN, the data and NUM_AUG")
    return cfg


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any], ignore: Iterable[str] = RUNTIME_KEYS) -> list[str]:
    """Keys (outside ``ignore``) whose values differ between two resolved configs, sorted."""
    ignored = set(ignore)
    keys = (set(saved) | set(current)) - ignored
    return sorted(k for k in keys if saved.get(k) != current.get(k))
