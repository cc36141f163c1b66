"""Named channel-plan settings: how many channels a client sends and how many low frequencies it prunes.

A deployment chooses between accuracy and privacy with two numbers: ``s``, the channels sent per colour
(the paper's ``s = 54 / m``: fewer channels per face, more subsets), and the pruned band, every
frequency with ``u + v <= band`` (the ones people see; the paper prunes ``u + v <= 3``).
``docs/frontier.md`` measures what each preset here costs in accuracy and leaks to a trained attacker.

A :class:`PlanPreset` is a recipe, not a table: :meth:`partialface.plan.ChannelPlan.preset` draws its
tables with the project's seeded generator (:meth:`ChannelPlan.generate`), so a preset's fingerprint is
fixed by its name (listed in ``docs/frontier.md`` and pinned by the tests). ``tface`` is the exception:
TFace's published tables. The presets are public, so they are settings to compare and ship defaults
for, not secrets; a deployment that wants its own secret tables generates them with the same ``band``,
``s`` and ``n`` (``partialface plan generate``).

The kept channels must split into equal subsets of ``s``. When ``64 - |band|`` is not a multiple of
``s`` (``u + v <= 4`` keeps 49, ``u + v <= 5`` keeps 43), the preset prunes the lowest remaining
frequencies as well, as few as needed: next diagonal ``u + v`` first, along it by ascending ``8u + v``.
That rule is :func:`preset_pruned`; the extra channels are listed by ``partialface plan show NAME``.

This module is plain data (it imports no plan): ``partialface.plan`` builds the tables from it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from .errors import PartialFaceError
from .frequency import BLOCK, CHANNELS_PER_COLOUR

__all__ = ["PlanPreset", "PRESETS", "ALIASES", "PRESET_SEED", "low_frequency_channels", "preset_pruned",
           "get_preset", "is_preset_name", "preset_names", "describe_presets"]

PRESET_SEED = 14  # the seed of every generated preset (issue 14 introduced them)
PUBLISHED_PERMUTATIONS = 3  # TFace's n; every preset keeps it, so presets differ from it in s and band only


def low_frequency_channels(sigma: int = 3) -> tuple[int, ...]:
    """Per-colour channels ``8u + v`` with ``u + v <= sigma`` (the ones people see; sigma=3 gives 10)."""
    return tuple(BLOCK * u + v for u in range(BLOCK) for v in range(BLOCK) if u + v <= sigma)


def _by_frequency(channel: int) -> tuple[int, int]:
    """Sort key from low to high frequency: the diagonal ``u + v``, then ``8u + v``."""
    return (channel // BLOCK + channel % BLOCK, channel)


def preset_pruned(band: int, s: int) -> tuple[int, ...]:
    """``u + v <= band`` plus the fewest next-lowest frequencies that leave a multiple of ``s`` kept."""
    pruned = list(low_frequency_channels(band))
    remaining = sorted((c for c in range(CHANNELS_PER_COLOUR) if c not in pruned), key=_by_frequency)
    extra = len(remaining) % s
    return tuple(pruned + remaining[:extra])


@dataclass(frozen=True)
class PlanPreset:
    """One named setting.

    Attributes:
        name: how configs (``PLAN: s3``), ``protect --plan`` and ``attack --plan`` call it.
        band: frequencies with ``u + v <= band`` are pruned.
        s: channels sent per colour (a query sends ``3 * s``).
        n: permutations of each subset.
        seed: seed of :meth:`ChannelPlan.generate`; None for TFace's published tables.
        summary: one line for ``partialface plan list``.
    """

    name: str
    band: int
    s: int
    n: int = PUBLISHED_PERMUTATIONS
    seed: int | None = PRESET_SEED
    summary: str = ""

    @property
    def published(self) -> bool:
        return self.seed is None

    @property
    def pruned(self) -> tuple[int, ...]:
        return preset_pruned(self.band, self.s)

    @property
    def kept(self) -> int:
        return CHANNELS_PER_COLOUR - len(self.pruned)

    @property
    def m(self) -> int:
        """Subsets: the kept channels split into groups of ``s``."""
        return self.kept // self.s


_PRESET_LIST = (
    PlanPreset("tface", 3, 9, seed=None, summary="the published plan: TFace's tables (u+v <= 3 pruned, m=6, s=9, n=3)"),
    PlanPreset("s18", 3, 18, summary="twice the channels per face: m=3 subsets of 18"),
    PlanPreset("s9", 3, 9, summary="the published sizes from the generator (m=6, s=9): a control for tface's tables"),
    PlanPreset("s6", 3, 6, summary="two thirds of the channels per face: m=9 subsets of 6"),
    PlanPreset("s3", 3, 3, summary="a third of the channels per face: m=18 subsets of 3"),
    PlanPreset("band4-s8", 4, 8, summary="u+v <= 4 pruned (and channel 5: 48 kept), m=6 subsets of 8"),
    PlanPreset("band5-s7", 5, 7, summary="u+v <= 5 pruned (and channel 6: 42 kept), m=6 subsets of 7"),
    PlanPreset("band5-s3", 5, 3, summary="u+v <= 5 pruned (and channel 6: 42 kept), m=14 subsets of 3"),
)
PRESETS: dict[str, PlanPreset] = {preset.name: preset for preset in _PRESET_LIST}

# Names that stand for a preset above (same tables, same fingerprint). ``private`` is the setting
# docs/frontier.md recommends to deployments that must hide identity from a trained attacker: the most
# accurate measured preset whose white-box recovery stays within the target (judge verification <= 65 %,
# rank-1 <= 10 %). The shipped model ``private`` is trained on it.
ALIASES: dict[str, str] = {"private": "band5-s3"}


def preset_names() -> list[str]:
    """Every name a preset answers to: the presets in table order, then the aliases."""
    return [*PRESETS, *ALIASES]


def is_preset_name(name: object) -> bool:
    return isinstance(name, str) and (name in PRESETS or name in ALIASES)


def get_preset(name: str) -> PlanPreset:
    """The preset called ``name`` (an alias resolves to its preset); unknown names list the known ones."""
    if isinstance(name, str) and name in ALIASES:
        name = ALIASES[name]
    if not isinstance(name, str) or name not in PRESETS:
        close = difflib.get_close_matches(str(name), preset_names(), n=2, cutoff=0.5)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise PartialFaceError(f"unknown plan preset {name!r} (known: {', '.join(preset_names())}){hint}")
    return PRESETS[name]


def describe_presets(fingerprint_of) -> str:
    """``partialface plan list``: one line per preset (sizes, sent channels, fingerprint), then the aliases.

    ``fingerprint_of(name)`` gives a preset's fingerprint (the plan module builds the tables).
    """
    lines = [f"{'name':<10} {'pruned':>6} {'kept':>4} {'m':>3} {'s':>3} {'n':>2} {'sent':>4}  {'fingerprint':<16}  summary"]
    for preset in PRESETS.values():
        lines.append(f"{preset.name:<10} {len(preset.pruned):>6} {preset.kept:>4} {preset.m:>3} {preset.s:>3} "
                     f"{preset.n:>2} {3 * preset.s:>4}  {fingerprint_of(preset.name):<16}  {preset.summary}")
    lines += [f"{alias:<10} = {target}" for alias, target in ALIASES.items()]
    return "\n".join(lines)
