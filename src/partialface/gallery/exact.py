"""Exact search in memory: every template in one float32 matrix, one matrix-vector product per query.

The SQLite store keeps an :class:`ExactIndex` beside the database as a cache (the database is the
truth; the store appends the rows added and removes the rows deleted since the index last looked).
At 1 M x 512 templates the matrix is 2 GB and a query one pass over it; the numbers against pgvector's
HNSW are in ``docs/gallery.md``.

Per-subject scores come from per-subject template *sums* kept up to date on append: the mean of a
subject's cosines is ``q . sum / n`` and the cosine to its normalised mean template is
``q . sum / |sum|``, so ``mean`` and ``fused`` cost one product with the (subjects x dim) sum matrix,
and ``max`` reads the best templates in order until ``top_k`` distinct subjects have appeared.
"""

from __future__ import annotations

import numpy as np

from .base import Match

__all__ = ["ExactIndex"]

_COMPACT_CHUNK = 65536


def _grown(array: np.ndarray, rows: int) -> np.ndarray:
    """``array`` with room for at least ``rows`` rows (capacity doubles, so appends are amortised)."""
    if rows <= array.shape[0]:
        return array
    bigger = np.zeros((max(rows, 2 * array.shape[0], 1024),) + array.shape[1:], dtype=array.dtype)
    bigger[: array.shape[0]] = array
    return bigger


class ExactIndex:
    """Templates (rows) with their ids and subjects; exact ``max``/``mean``/``fused`` search."""

    def __init__(self, dim: int):
        self.dim = dim
        self.size = 0                 # templates
        self.max_id = 0               # the largest template id held (ids only grow in the stores)
        self._matrix = np.zeros((0, dim), np.float32)
        self._ids = np.zeros(0, np.int64)
        self._row_slot = np.zeros(0, np.int64)   # subject slot of each row
        self._slot_of: dict[int, int] = {}       # store subject id -> slot
        self._names: list[str] = []              # slot -> subject name
        self._sums = np.zeros((0, dim), np.float32)
        self._counts = np.zeros(0, np.int64)
        self._norms: np.ndarray | None = None    # |sum| per subject, computed on demand

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays (capacity included)."""
        arrays = (self._matrix, self._ids, self._row_slot, self._sums, self._counts)
        return sum(a.nbytes for a in arrays)

    def append(self, ids: np.ndarray, subject_ids: np.ndarray, names: dict[int, str], vectors: np.ndarray) -> None:
        """Add rows: template ids (each larger than :attr:`max_id`), their store subject ids, the names of
        those subjects, and the ``(N, dim)`` float32 vectors."""
        count = len(ids)
        if count == 0:
            return
        for subject_id in np.unique(subject_ids).tolist():
            if subject_id not in self._slot_of:
                self._slot_of[subject_id] = len(self._names)
                self._names.append(names[subject_id])
        slots = np.fromiter((self._slot_of[s] for s in subject_ids.tolist()), np.int64, count)
        end = self.size + count
        self._matrix = _grown(self._matrix, end)
        self._ids = _grown(self._ids, end)
        self._row_slot = _grown(self._row_slot, end)
        self._matrix[self.size:end] = vectors
        self._ids[self.size:end] = ids
        self._row_slot[self.size:end] = slots
        subjects = len(self._names)
        self._sums = _grown(self._sums, subjects)
        self._counts = _grown(self._counts, subjects)
        order = np.argsort(slots, kind="stable")
        touched, starts = np.unique(slots[order], return_index=True)
        self._sums[touched] += np.add.reduceat(vectors[order], starts, axis=0)
        self._counts[:subjects] += np.bincount(slots, minlength=subjects)
        self.size = end
        self.max_id = max(self.max_id, int(ids.max()))
        self._norms = None

    def remove(self, template_ids: np.ndarray) -> int:
        """Drop the rows of these template ids (ids not held are ignored); how many were dropped.
        The matrix is compacted in place and the subjects' sums lose the removed vectors."""
        gone = np.isin(self._ids[: self.size], template_ids)
        removed = int(gone.sum())
        if removed == 0:
            return 0
        slots = self._row_slot[: self.size][gone]
        order = np.argsort(slots, kind="stable")
        touched, starts = np.unique(slots[order], return_index=True)
        self._sums[touched] -= np.add.reduceat(self._matrix[: self.size][gone][order], starts, axis=0)
        self._counts[: len(self._names)] -= np.bincount(slots, minlength=len(self._names))
        emptied = touched[self._counts[touched] == 0]
        self._sums[emptied] = 0  # no rounding residue for a subject with no template left
        keep = np.flatnonzero(~gone)
        for start in range(0, keep.size, _COMPACT_CHUNK):  # in place: keep[i] >= i, so no row is read after
            rows = keep[start:start + _COMPACT_CHUNK]          # it was overwritten, and no 2 GB copy at 1 M
            for array in (self._matrix, self._ids, self._row_slot):
                array[start:start + rows.size] = array[rows]
        self.size = keep.size
        self._norms = None
        return removed

    def search(self, query: np.ndarray, top_k: int, strategy: str) -> list[Match]:
        if self.size == 0:
            return []
        return getattr(self, f"_search_{strategy}")(query, top_k)

    def _search_max(self, query: np.ndarray, top_k: int) -> list[Match]:
        scores = self._matrix[: self.size] @ query
        slots = self._row_slot[: self.size]
        wanted = min(self.size, 8 * top_k)
        while True:
            best = np.argpartition(-scores, wanted - 1)[:wanted] if wanted < self.size else np.arange(self.size)
            best = best[np.argsort(-scores[best], kind="stable")]
            seen: dict[int, int] = {}
            for row in best.tolist():
                seen.setdefault(int(slots[row]), row)
                if len(seen) == top_k:
                    break
            if len(seen) == top_k or wanted == self.size:
                break
            wanted = min(self.size, 4 * wanted)
        return [Match(self._names[s], float(scores[r]), int(self._ids[r])) for s, r in seen.items()]

    def _subject_scores(self, query: np.ndarray, top_k: int, scale: np.ndarray) -> list[Match]:
        subjects = len(self._names)
        alive = self._counts[:subjects] > 0
        scores = np.where(alive, (self._sums[:subjects] @ query) / np.where(alive, scale, 1), -np.inf)
        top = min(top_k, int(alive.sum()))
        best = np.argpartition(-scores, top - 1)[:top] if top < subjects else np.arange(subjects)
        best = best[np.argsort(-scores[best], kind="stable")][:top]
        return [Match(self._names[s], float(scores[s])) for s in best.tolist()]

    def _search_mean(self, query: np.ndarray, top_k: int) -> list[Match]:
        return self._subject_scores(query, top_k, self._counts[: len(self._names)].astype(np.float32))

    def _search_fused(self, query: np.ndarray, top_k: int) -> list[Match]:
        if self._norms is None:
            norms = np.linalg.norm(self._sums[: len(self._names)], axis=1)
            self._norms = np.where(norms > 0, norms, 1.0).astype(np.float32)
        return self._subject_scores(query, top_k, self._norms)
