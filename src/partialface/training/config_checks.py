"""Value checks of single config keys, used by the key table (:mod:`.config_keys`).

Every check is called as ``check(key, value)`` and returns the value as the resolved config holds it
(an ``int``, a registry name, a list with defaults filled in) or raises :class:`ConfigError` naming
the key. The key is passed in rather than baked into each check, so the table names every key once.
Numbers go through :mod:`partialface.checks` so that "must be an integer >= 1" reads the same in every
layer. Checks that need two keys (``STAGES`` against ``LRS``, ``CROP`` against ``INPUT_SIZE``) live in
:func:`partialface.training.config.resolve_config`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ..checks import check_choice, check_int, check_number
from ..data.augment import BatchAugmentation
from ..data.crop import CropSpec
from ..encoders import list_encoders
from ..errors import PartialFaceError
from ..models import list_heads, list_models

__all__ = [
    "Check",
    "ConfigError",
    "backbone_registry_name",
    "head_registry_name",
    "key_errors",
    "unknown_key_error",
]

Check = Callable[[str, Any], Any]

MAX_BATCH_SIZE = 4096
"""Faces per process and step: 4096 faces are 0.6 GB of input alone, the activations many times that; a
larger global batch comes from more processes."""
MAX_PROCESSES = 256


class ConfigError(PartialFaceError):
    """A bad config value. ``keys`` are the config keys at fault, so that a config combined from
    several files can name the file that set them."""

    def __init__(self, message: str, keys: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.keys = tuple(keys)


@contextmanager
def key_errors(key: str, value: Any = None) -> Iterator[None]:
    """Re-raise a lower layer's complaint about what ``key`` points at as a :class:`ConfigError`.

    The data, plan and encoder modules raise ``ValueError`` (or ``OSError``) for a missing or
    malformed file or a bad option; inside training that is the user's config at fault, so the error
    becomes a one-line :class:`~partialface.errors.PartialFaceError` that names the key (and value).
    A DataLoader worker's error arrives with the worker's traceback in its text: only its last line
    is kept.
    """
    try:
        yield
    except ConfigError:
        raise
    except (ValueError, OSError) as err:
        lines = str(err).strip().splitlines() or [type(err).__name__]
        last = re.sub(r"^[\w.]*(Error|Exception): ", "", lines[-1])  # a worker's line: "pkg.mod.SomeError: ..."
        shown = f" {os.fspath(value)!r}" if isinstance(value, (str, os.PathLike)) and value else ""
        raise ConfigError(f"{key}{shown}: {last}", (key,)) from err


def unknown_key_error(key: Any, known: Iterable[str], where: str) -> ConfigError:
    """``unknown <where> key 'X'; close matches: ...`` for a key that is not in ``known``."""
    known = list(known)
    close = difflib.get_close_matches(str(key), known, n=3, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(str(key).upper(), known, n=3, cutoff=0.6)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    return ConfigError(f"unknown {where} key {key!r}{hint}", (str(key).split(".")[0],))


# ----------------------------------------------------------------------------------- plain values
def integer(low: int | None = None) -> Check:
    return lambda key, value: check_int(key, value, low)


def processes(low: int) -> Check:
    """Threads or processes: ``low`` .. :data:`MAX_PROCESSES` (a mistyped 10000 would start ten thousand workers).

    A fixed bound, not the CPU count as on the command line: a config file is read on other machines too
    (TFace's recipe asks for 8 workers, more than a laptop has cores).
    """
    return lambda key, value: check_int(key, value, low, MAX_PROCESSES)


def number(low: float | None = None) -> Check:
    return lambda key, value: check_number(key, value, low)


def optional(check: Check) -> Check:
    """``check``, with None (the key's "not given") passed through."""
    return lambda key, value: None if value is None else check(key, value)


def boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}", (key,))
    return value


def text(key: str, value: Any) -> str:
    """A path or a name; null is the empty string."""
    if value is None:
        return ""
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"{key} must be a string (a path or a name), got {value!r}", (key,))
    return os.fspath(value)


def choice(*options: str) -> Check:
    """One of ``options``, case-insensitively (TFace writes ``'nccl'``, people write ``NCCL``)."""
    return lambda key, value: check_choice(key, value.lower() if isinstance(value, str) else value, options)


def mapping(key: str, value: Any) -> dict[str, Any]:
    """Keyword options (``ENCODER_OPTIONS``, ``MODEL_OPTIONS``); null is no options."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{key} must be a mapping of option: value, got {value!r}", (key,))
    return dict(value)


def without(*reserved: str, because: str) -> Check:
    """A :func:`mapping` that must not set ``reserved`` options (other keys decide them)."""

    def check(key: str, value: Any) -> dict[str, Any]:
        options = mapping(key, value)
        clash = sorted(set(reserved) & set(options))
        if clash:
            raise ConfigError(f"{key} must not set {clash}: they follow {because}", (key,))
        return options

    return check


def int_list(low: int | None = None) -> Check:
    """A list of integers (a single integer is a list of one; null is empty)."""

    def check(key: str, value: Any) -> list[int]:
        if value is None:
            return []
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"{key} must be a list of integers, got {value!r}", (key,))
        if low is not None and any(v < low for v in value):
            raise ConfigError(f"{key} values must be >= {low}, got {list(value)}", (key,))
        return [int(v) for v in value]

    return check


def _numbers(key: str, value: Any) -> list[float]:
    if not isinstance(value, (list, tuple)) or not value or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        raise ConfigError(f"{key} must be a non-empty list of numbers, got {value!r}", (key,))
    return [check_number(key, v) for v in value]


def learning_rates(key: str, value: Any) -> list[float]:
    rates = _numbers(key, value)
    if any(rate <= 0 for rate in rates):
        raise ConfigError(f"{key} must all be positive, got {rates}", (key,))
    return rates


def half_normalisation(key: str, value: Any) -> list[float]:
    """TFace's ``RGB_MEAN`` / ``RGB_STD``: accepted only as 0.5, the normalisation every encoder assumes."""
    values = _numbers(key, value)
    if [round(v, 6) for v in values] != [0.5] * 3:
        raise ConfigError(
            f"RGB_MEAN and RGB_STD must be [0.5, 0.5, 0.5] (encoders take faces in [-1, 1]), got {key} {values}", (key,)
        )
    return values


def stages(key: str, value: Any) -> list[int | float]:
    """Learning-rate boundaries, ascending; ints stay ints (TFace epochs)."""
    if value is None or value == []:
        return []
    _numbers(key, value)
    if list(value) != sorted(value) or any(s < 0 for s in value):
        raise ConfigError(f"{key} must be non-negative and ascending, got {list(value)}", (key,))
    return list(value)


def start_epoch(key: str, value: Any) -> int:
    value = check_int(key, value, 0)
    if value != 0:
        raise ConfigError(
            f"{key} must be 0 (got {value}): a run resumes by itself from OUT/checkpoint.pt, or from META_RESUME", (key,)
        )
    return value


def loss_name(key: str, value: Any) -> str:
    """TFace's ``DistCrossEntropy`` or ``Softmax``: both are cross-entropy on the head's logits."""
    name = text(key, value)
    if _normalise(name) not in {"distcrossentropy", "softmax", "crossentropy"}:
        raise ConfigError(f"{key} must be DistCrossEntropy or Softmax (cross-entropy), got {name!r}", (key,))
    return name


def input_size(key: str, value: Any) -> int:
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value) or value[0] != value[1]:
            raise ConfigError(f"{key} must be an int or a square [n, n], got {value!r}", (key,))
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key} must be a positive int or [n, n], got {value!r}", (key,))
    return int(value)


# ------------------------------------------------------------------------------- nested mappings
DATASET_DEFAULTS = {"name": "", "batch_size": 64, "weight": 1.0, "scale": 64.0, "margin": 0.5}
# Later DATASETS entries only add images: the batch and the head are the first entry's.
EXTRA_DATASET_OPTIONS = ("name", "root", "teacher_root")


def datasets(key: str, value: Any) -> list[dict[str, Any]]:
    """TFace's ``DATASETS``: a list of dataset mappings (a bare mapping is a list of one).

    The first entry gives the batch size and the head's scale and margin; every entry may give its own
    ``root`` folder (default ``DATA_ROOT/name``) and ``teacher_root`` (the folder of the photos whose
    teacher descriptors stand for its images, by relative path: an aligned copy of a data set shares the
    descriptors of its source); later entries give only ``name``, ``root`` and ``teacher_root``.
    """
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(entry, dict) for entry in value):
        count = len(value) if isinstance(value, list) else type(value).__name__
        raise ConfigError(
            f"{key} must be a list of dataset mappings (name, root, batch_size, scale, margin), got {count}", (key,)
        )
    for option in value[0]:
        if option not in (*DATASET_DEFAULTS, "root", "teacher_root"):
            raise unknown_key_error(option, (*DATASET_DEFAULTS, "root", "teacher_root"), f"{key} entry")
    entry = {**DATASET_DEFAULTS, **value[0]}
    first = {
        "name": text(f"{key} name", entry["name"]),
        "batch_size": check_int(f"{key} batch_size", entry["batch_size"], 1, MAX_BATCH_SIZE),
        "weight": check_number(f"{key} weight", entry["weight"], 0.0),
        "scale": check_number(f"{key} scale", entry["scale"], 0.0, strict_low=True),
        "margin": check_number(f"{key} margin", entry["margin"]),
    }
    for option in ("root", "teacher_root"):
        if entry.get(option):
            first[option] = text(f"{key} {option}", entry[option])
    resolved = [first]
    for number, extra in enumerate(value[1:], start=2):
        for option in extra:
            if option not in EXTRA_DATASET_OPTIONS:
                raise ConfigError(f"{key} entry {number}: {option!r} is not allowed; later entries give only name, "
                                  "root and teacher_root (the batch and the head are the first entry's)", (key,))
        if not extra.get("name") and not extra.get("root"):
            raise ConfigError(f"{key} entry {number} needs a name or a root", (key,))
        resolved.append({"name": text(f"{key} name", extra.get("name", "")),
                         **{option: text(f"{key} {option}", extra[option])
                            for option in ("root", "teacher_root") if extra.get(option)}})
    return resolved


def augmentation(key: str, value: Any) -> dict[str, float]:
    """``AUGMENT``: the options of :class:`partialface.data.augment.BatchAugmentation` (null: none)."""
    if value is not None and not isinstance(value, dict):
        raise ConfigError(f"{key} must be a mapping (shift, scale, rotate, brightness, contrast, saturation), "
                          f"got {value!r}", (key,))
    try:
        spec = BatchAugmentation.from_dict(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{key}: {err}", (key,)) from None
    return {name: amount for name, amount in spec.to_dict().items() if amount}


def crop_shape(key: str, value: Any) -> dict[str, Any] | None:
    """The form of ``CROP`` (``{box, size}`` or null); :func:`finish_crop` checks it against INPUT_SIZE."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a mapping {{box: [l, t, r, b] or null, size: n}}, got {value!r}", (key,))
    for option in value:
        if option not in ("box", "size"):
            raise unknown_key_error(option, ("box", "size"), key)
    return dict(value)


def finish_crop(value: dict[str, Any] | None, input_size: int) -> dict[str, Any]:
    """``CROP`` with its size defaulting to (and required to equal) ``INPUT_SIZE``."""
    value = value or {}
    spec_dict = {"box": value.get("box"), "size": value.get("size", input_size)}
    try:
        spec = CropSpec.from_dict(spec_dict)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"CROP: {err}", ("CROP",)) from None
    if spec.size != input_size:
        raise ConfigError(f"CROP size {spec.size} must equal INPUT_SIZE {input_size}", ("CROP", "INPUT_SIZE"))
    return spec.to_dict()


def plan(key: str, value: Any) -> str | dict[str, int]:
    """A preset name (``tface``, ``s3``: :mod:`partialface.plan_presets`), a path to a plan JSON, or
    ``{generate: seed, m, n}``; a name that is neither a preset nor a file is refused when the plan is built."""
    if value is None or value == "":
        return "tface"
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    if isinstance(value, dict):
        defaults = {"generate": None, "m": 6, "n": 6}
        for option in value:
            if option not in defaults:
                raise unknown_key_error(option, defaults, key)
        if "generate" not in value:
            raise ConfigError(f"{key} mapping needs 'generate: SEED' (and optionally m, n)", (key,))
        spec = {**defaults, **value}
        return {k: check_int(f"{key} {k}", v, 0 if k == "generate" else 1) for k, v in spec.items()}
    raise ConfigError(f"{key} must be a preset name (tface, s3, ...), a path to a plan JSON or {{generate: seed, m, n}}, "
                      f"got {value!r}", (key,))


# ----------------------------------------------------------------------------------- registries
_BACKBONE_ALIASES = {"ir101": "ir100", "irse50": "ir_se50", "mobilefacenets": "mobilefacenet"}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "").replace("-", "")


def registry(known: Callable[[], list[str]], aliases: Mapping[str, str] | None = None) -> Check:
    """A registry name from TFace's spelling (``IR_18`` -> ``ir18``, ``ArcFace`` -> ``arcface``)."""

    def check(key: str, name: Any) -> str:
        names = known()
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{key} must be a non-empty string, got {name!r}", (key,))
        if name in names:
            return name
        wanted = _normalise(name)
        by_normal = {_normalise(k): k for k in names}
        target = (aliases or {}).get(wanted, wanted)
        if target in names:
            return target
        if target in by_normal:
            return by_normal[target]
        close = difflib.get_close_matches(wanted, list(by_normal), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(by_normal[c] for c in close)}?" if close else ""
        raise ConfigError(f"{key} {name!r} is not a known name (known: {', '.join(names)}){hint}", (key,))

    return check


backbone = registry(list_models, _BACKBONE_ALIASES)
head = registry(list_heads)
encoder = registry(list_encoders)


def backbone_registry_name(name: str) -> str:
    """TFace's ``IR_18`` / ``IR_50`` / ``IR_SE_50`` / ``IR_101`` / ``MobileFaceNet`` -> registry names."""
    return backbone("BACKBONE_NAME", name)


def head_registry_name(name: str) -> str:
    """TFace's ``ArcFace`` / ``CosFace`` / ``CurricularFace`` -> registry names."""
    return head("HEAD_NAME", name)
