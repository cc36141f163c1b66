"""``KEY=VALUE`` overrides and dotted keys (``DATASETS.0.batch_size``) that reach inside nested values.

A dotted key names a path into the config: mapping keys and list indices separated by dots. It is how
``--set`` changes one entry of ``DATASETS`` or ``CROP`` without restating the rest, and a config file
may use the same form (see :func:`partialface.training.config.combine_configs`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from ..errors import PartialFaceError

__all__ = ["apply_overrides", "parse_overrides", "set_dotted"]


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["KEY=VALUE", ...]`` -> ``{KEY: yaml-parsed VALUE}`` (``LRS=[0.1,0.01]``, ``AMP=false``, ...).

    ``DATASETS.0.batch_size=32`` style dotted keys address nested values; an empty VALUE is ``""``.
    """
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise PartialFaceError(f"override {item!r} must look like KEY=VALUE")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as err:
            first = str(err).strip().splitlines()[0]
            raise PartialFaceError(f"override {item!r}: value is not valid YAML ({first})") from err
        parsed[key] = value
    return parsed


def set_dotted(config: dict[str, Any], dotted: str, value: Any, where: str) -> None:
    """Set ``config[a][b]...`` for ``dotted = "a.b..."`` in place; missing mappings on the way are created.

    A list is indexed by a number within its length. Raises PartialFaceError starting with ``where``.
    """
    parts = dotted.split(".")
    target: Any = config
    for depth, part in enumerate(parts[:-1]):
        path = ".".join(parts[: depth + 1])
        if isinstance(target, list):
            if not part.isdigit() or int(part) >= len(target):
                raise PartialFaceError(f"{where}: {path} is not an index of a {len(target)}-item list")
            target = target[int(part)]
        elif isinstance(target, dict):
            if part not in target or not isinstance(target[part], (dict, list)):
                target[part] = {}
            target = target[part]
        else:
            raise PartialFaceError(f"{where}: {path} is not a mapping or list")
    last = parts[-1]
    if isinstance(target, list):
        if not last.isdigit() or int(last) >= len(target):
            raise PartialFaceError(f"{where}: {last} is not an index of a {len(target)}-item list")
        target[int(last)] = copy.deepcopy(value)
    else:
        target[last] = copy.deepcopy(value)


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``raw`` with ``overrides`` set; dotted keys (``DATASETS.0.batch_size``) go into nesting."""
    result = copy.deepcopy(dict(raw))
    for dotted, value in overrides.items():
        set_dotted(result, dotted, value, f"override {dotted}")
    return result
