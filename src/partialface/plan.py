"""Channel plans: which frequencies are pruned, how the rest split into subsets, how subsets are permuted.

A :class:`ChannelPlan` is the secret of a PartialFace deployment (the paper allows a plan to be drawn
per model). A *rank* is one (subset, permutation) pair: the client sends the ``s`` kept frequencies of
``subsets[subset]`` in the order ``permutations[permutation]``, for each of Y, Cb and Cr, so
``3 * s`` channels. Plans are stored as JSON and identified by a stable fingerprint.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from .atomic import atomic_write
from .checks import check_int
from .errors import PartialFaceError
from .frequency import CHANNELS_PER_COLOUR, to_frequency
from .plan_presets import get_preset, is_preset_name, low_frequency_channels, preset_names

__all__ = ["ChannelPlan", "TFACE_PRUNED", "low_frequency_channels"]

_FORMAT = "partialface.channel-plan/1"


TFACE_PRUNED = low_frequency_channels(3)  # (0, 1, 2, 3, 8, 9, 10, 16, 17, 24)
_TFACE_SUBSETS = (
    (1, 24, 28, 12, 32, 45, 47, 40, 52),
    (35, 39, 44, 42, 10, 4, 37, 31, 53),
    (0, 50, 19, 6, 22, 51, 49, 23, 21),
    (38, 8, 25, 13, 17, 30, 7, 33, 9),
    (26, 29, 16, 2, 43, 14, 5, 11, 48),
    (36, 41, 46, 34, 15, 27, 18, 20, 3),
)
_TFACE_PERMUTATIONS = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8),
    (7, 3, 0, 6, 5, 4, 1, 2, 8),
    (4, 8, 6, 0, 2, 5, 3, 7, 1),
)


@dataclass(frozen=True)
class ChannelPlan:
    """Pruned channels, ``m`` disjoint subsets of ``s`` kept channels, ``n`` permutations of ``s``.

    Attributes:
        pruned: per-colour channels (0..63) never sent.
        subsets: ``m`` rows of ``s`` indices into :attr:`kept`.
        permutations: ``n`` permutations of ``range(s)``.
    """

    pruned: tuple[int, ...]
    subsets: tuple[tuple[int, ...], ...]
    permutations: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "pruned", tuple(_index("pruned channel", c) for c in self.pruned))
        object.__setattr__(self, "subsets", tuple(tuple(_index("subset index", i) for i in row) for row in self.subsets))
        object.__setattr__(
            self, "permutations", tuple(tuple(_index("permutation index", i) for i in row) for row in self.permutations)
        )
        self._validate()

    # ----------------------------------------------------------------- construction
    @classmethod
    def tface(cls) -> "ChannelPlan":
        """The published default: TFace's exact tables (m=6 subsets of s=9, n=3 permutations)."""
        return cls(TFACE_PRUNED, _TFACE_SUBSETS, _TFACE_PERMUTATIONS)

    @classmethod
    def preset(cls, name: str) -> "ChannelPlan":
        """A named setting of :mod:`partialface.plan_presets` (``tface``, ``s3``, ``band5-s7``, ...).

        Generated presets are drawn by :meth:`generate` from their recorded seed, so a name always gives
        the same tables (fingerprints in ``docs/frontier.md``).
        """
        spec = get_preset(name)
        if spec.published:
            return cls.tface()
        return cls.generate(spec.seed, m=spec.m, n=spec.n, pruned=spec.pruned)

    @classmethod
    def from_name_or_path(cls, spec: str | os.PathLike) -> "ChannelPlan":
        """A preset name (``s3``) or a plan JSON path: what ``--plan`` and a config's ``PLAN`` accept.

        A preset name wins over a file of the same name in the working folder (write ``./s3`` for the file).
        """
        if is_preset_name(spec):
            return cls.preset(spec)
        path = Path(spec)
        if not path.exists():
            raise PartialFaceError(f"plan {os.fspath(spec)!r} is neither a preset ({', '.join(preset_names())}) "
                                   "nor an existing plan file")
        return cls.load(path)

    @classmethod
    def generate(
        cls, seed: int, m: int = 6, n: int = 6, pruned: Sequence[int] = TFACE_PRUNED
    ) -> "ChannelPlan":
        """A fresh random plan: the kept channels shuffled into ``m`` equal subsets, ``n`` permutations.

        The first permutation is the identity (as in TFace); the others are distinct random ones.
        """
        seed, m, n = check_int("seed", seed), check_int("m", m, low=1), check_int("n", n, low=1)
        kept = CHANNELS_PER_COLOUR - len(set(pruned))
        if kept % m:
            raise PartialFaceError(f"cannot split {kept} kept channels into m={m} equal subsets")
        s = kept // m
        if n > math.factorial(s):
            raise PartialFaceError(f"n={n} permutations requested but s={s} channels have only {math.factorial(s)}")
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(kept, generator=g).tolist()
        subsets = [order[i * s : (i + 1) * s] for i in range(m)]
        perms = [tuple(range(s))]
        while len(perms) < n:
            p = tuple(torch.randperm(s, generator=g).tolist())
            if p not in perms:
                perms.append(p)
        return cls(tuple(pruned), subsets, perms)

    # ----------------------------------------------------------------- derived sizes
    @property
    def kept(self) -> tuple[int, ...]:
        """Per-colour channels (0..63) that are not pruned, ascending."""
        pruned = set(self.pruned)
        return tuple(c for c in range(CHANNELS_PER_COLOUR) if c not in pruned)

    @property
    def m(self) -> int:
        return len(self.subsets)

    @property
    def s(self) -> int:
        return len(self.subsets[0])

    @property
    def n(self) -> int:
        return len(self.permutations)

    @property
    def num_ranks(self) -> int:
        return self.m * self.n

    @property
    def out_channels(self) -> int:
        """Channels one rank sends (3 colours x s)."""
        return 3 * self.s

    # ----------------------------------------------------------------- channels and transform
    def channels(self, subset, permutation) -> torch.Tensor:
        """Indices into the 192 frequency channels that a rank sends, in the order it sends them.

        ``subset`` and ``permutation`` are ints (returns (3s,)) or per-sample integer tensors (returns
        (B,3s)); a float or boolean index is an error, never truncated:
        ``out[c*s + j] = c*64 + kept[subsets[subset][permutations[permutation][j]]]``.
        """
        table = self._channel_table()  # (m, n, 3s)
        if isinstance(subset, torch.Tensor) or isinstance(permutation, torch.Tensor):
            sub = _index_tensor("subset", subset)
            per = _index_tensor("permutation", permutation)
            sub, per = torch.broadcast_tensors(sub.reshape(-1), per.reshape(-1))
            self._check_rank(sub, per)
            return table[sub, per]
        subset = _index("subset", subset, self.m - 1)
        permutation = _index("permutation", permutation, self.n - 1)
        return table[subset, permutation]

    def all_channels(self) -> torch.Tensor:
        """Indices (into 0..191) of all 3 * (64 - len(pruned)) kept channels, colour-major, ascending."""
        kept = torch.tensor(self.kept)
        return torch.cat([c * CHANNELS_PER_COLOUR + kept for c in range(3)])

    def protect(self, x: torch.Tensor, subset, permutation, out: torch.Tensor | None = None) -> torch.Tensor:
        """(B,3,H,W) faces in [-1,1] -> (B,3s,H,W): the channels of one rank (per sample or shared)."""
        idx = self.channels(subset, permutation)
        if idx.dim() == 2 and idx.shape[0] != x.shape[0]:
            if idx.shape[0] != 1:
                raise PartialFaceError(f"{idx.shape[0]} ranks given for a batch of {x.shape[0]} faces")
            idx = idx[0]
        return to_frequency(x, idx, out=out)

    # ----------------------------------------------------------------- rank sampling
    def allowed_subsets(self, labels: torch.Tensor) -> torch.Tensor:
        """TFace's label-keyed rule: ``label % C(m, m//2)`` picks the m//2 subsets an identity may use.

        The combinations are taken in ``itertools.combinations`` (lexicographic) order. Returns (B, m//2).
        """
        labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        if labels.numel() and int(labels.min()) < 0:
            raise PartialFaceError(f"labels must be non-negative, got {int(labels.min())}")
        combos = self.__dict__.get("_combos")
        if combos is None:  # C(18, 9) = 48,620 rows for m=18: built once, not per batch
            combos = torch.tensor(list(itertools.combinations(range(self.m), max(1, self.m // 2))))
            object.__setattr__(self, "_combos", combos)
        return combos.to(labels.device)[labels % len(combos)]

    def sample_training_ranks(
        self, labels: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training ranks: subset uniform among the identity's allowed ones, permutation uniform."""
        allowed = self.allowed_subsets(labels)
        b = allowed.shape[0]
        pick = torch.randint(allowed.shape[1], (b,), generator=generator)
        subset = allowed.cpu()[torch.arange(b), pick]
        permutation = torch.randint(self.n, (b,), generator=generator)
        return subset, permutation

    def sample_query_ranks(
        self, batch: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Query ranks: uniform over all m * n (subset, permutation) pairs.

        One draw per face, in order, so the ranks a seeded generator gives do not depend on how the
        faces are split into batches (``sample_query_ranks(256, g)`` equals four calls of 64).
        """
        rank = torch.randint(self.m * self.n, (int(batch),), generator=generator)
        return rank // self.n, rank % self.n

    # ----------------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        return {
            "format": _FORMAT,
            "pruned": list(self.pruned),
            "subsets": [list(r) for r in self.subsets],
            "permutations": [list(r) for r in self.permutations],
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_dict(cls, data: dict, source: str = "plan") -> "ChannelPlan":
        if not isinstance(data, dict):
            raise PartialFaceError(f"{source}: a channel plan must be a JSON object, got {type(data).__name__}")
        missing = [k for k in ("pruned", "subsets", "permutations") if k not in data]
        if missing:
            raise PartialFaceError(f"{source}: channel plan lacks {', '.join(missing)}")
        try:
            plan = cls(data["pruned"], data["subsets"], data["permutations"])
        except (TypeError, ValueError) as err:
            raise PartialFaceError(f"{source}: invalid channel plan: {err}") from err
        stored = data.get("fingerprint")
        if stored is not None and stored != plan.fingerprint:
            raise PartialFaceError(f"{source}: fingerprint {stored} does not match the tables ({plan.fingerprint})")
        return plan

    def save(self, path: str | os.PathLike) -> Path:
        """Write the plan as JSON, atomically."""
        with atomic_write(path, "w") as fh:
            json.dump(self.to_dict(), fh, indent=1)
            fh.write("\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ChannelPlan":
        """Read and validate a plan written by :meth:`save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except OSError as err:
            raise PartialFaceError(f"{path}: cannot read channel plan: {err}") from err
        except (json.JSONDecodeError, UnicodeDecodeError) as err:  # a photo or a binary file given by mistake
            raise PartialFaceError(f"{path}: not valid JSON: {err}") from err
        return cls.from_dict(data, source=str(path))

    @property
    def fingerprint(self) -> str:
        """A stable 16-hex-digit identifier of the tables (sha256 of their canonical JSON)."""
        canonical = json.dumps(
            {"pruned": sorted(self.pruned), "subsets": self.subsets, "permutations": self.permutations},
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    # ----------------------------------------------------------------- internals
    def _validate(self) -> None:
        pruned = self.pruned
        if len(set(pruned)) != len(pruned):
            raise PartialFaceError(f"pruned channels repeat: {list(pruned)}")
        bad = [c for c in pruned if not 0 <= c < CHANNELS_PER_COLOUR]
        if bad:
            raise PartialFaceError(f"pruned channels must lie in 0..{CHANNELS_PER_COLOUR - 1}, got {bad}")
        kept = CHANNELS_PER_COLOUR - len(pruned)
        if not self.subsets:
            raise PartialFaceError("a plan needs at least one subset")
        s = len(self.subsets[0])
        if s == 0 or any(len(r) != s for r in self.subsets):
            raise PartialFaceError(f"subsets must all have the same, non-zero size, got sizes {[len(r) for r in self.subsets]}")
        flat = [i for r in self.subsets for i in r]
        out_of_range = sorted({i for i in flat if not 0 <= i < kept})
        if out_of_range:
            raise PartialFaceError(f"subset indices must lie in 0..{kept - 1} (indices into the kept channels), got {out_of_range}")
        if len(set(flat)) != len(flat):
            repeated = sorted({i for i in flat if flat.count(i) > 1})
            raise PartialFaceError(f"subsets must be disjoint; indices in more than one subset: {repeated}")
        if len(flat) != kept:
            missing = sorted(set(range(kept)) - set(flat))
            raise PartialFaceError(f"subsets must cover all {kept} kept channels; missing: {missing}")
        if not self.permutations:
            raise PartialFaceError("a plan needs at least one permutation")
        for k, p in enumerate(self.permutations):
            if sorted(p) != list(range(s)):
                raise PartialFaceError(f"permutation {k} is not a permutation of 0..{s - 1}: {list(p)}")
        if len(set(self.permutations)) != len(self.permutations):
            raise PartialFaceError("permutations repeat")

    def _channel_table(self) -> torch.Tensor:
        cached = self.__dict__.get("_table")
        if cached is None:
            kept = torch.tensor(self.kept)
            sub = torch.tensor(self.subsets)  # (m, s)
            per = torch.tensor(self.permutations)  # (n, s)
            freq = kept[sub[:, None, :].expand(-1, self.n, -1).gather(2, per[None].expand(self.m, -1, -1))]
            cached = torch.cat([c * CHANNELS_PER_COLOUR + freq for c in range(3)], dim=2)  # (m, n, 3s)
            object.__setattr__(self, "_table", cached)
        return cached

    def _check_rank(self, subset: torch.Tensor, permutation: torch.Tensor) -> None:
        if subset.numel() == 0:
            return
        if int(subset.min()) < 0 or int(subset.max()) >= self.m:
            raise PartialFaceError(f"subset must lie in 0..{self.m - 1}, got {subset.tolist()}")
        if int(permutation.min()) < 0 or int(permutation.max()) >= self.n:
            raise PartialFaceError(f"permutation must lie in 0..{self.n - 1}, got {permutation.tolist()}")


def _index(name: str, value, high: int | None = None) -> int:
    """A table index as a plain int in ``0..high``: Python or NumPy integers only (31.5 and True are refused)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)  # NumPy integers, e.g. from a loaded array
    return check_int(name, value, 0, high)


def _index_tensor(name: str, value) -> torch.Tensor:
    """Rank indices as a CPU LongTensor; floats and booleans are refused, not truncated (31.5 is no index)."""
    tensor = torch.as_tensor(value)
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise PartialFaceError(f"{name} must hold integers, got {tensor.dtype}")
    return tensor.to(device="cpu", dtype=torch.long)
