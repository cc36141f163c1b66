"""The fused CPU kernel of the client transform, and the memory its output goes into.

Why a compiled kernel: every coefficient is a 3x3 stencil of the 112x112 face (see
:mod:`partialface.frequency`), 6 multiply-adds per output value. Eager PyTorch evaluates that as six
elementwise passes over the output; ``torch.compile`` fuses them but needs tens of seconds of
compilation per shape and dtype in every fresh process and did not run faster here; a GEMM
formulation spends 10-40x the arithmetic on the zeros of the banded matrices
(``benchmarks/transform.py --alternatives`` measures all of them). The C kernel ``_stencil.c``
computes each output row from three input rows in L1 and writes it once, so the transform runs at
the speed the machine writes memory. It is built at install time by setup.py from the repository's
own file with the machine's C compiler, and is optional: without it :func:`available` is False
and the transform runs its PyTorch path, with the same results to float rounding.

Why a special allocation: the output of a batch is large (64 faces x 27 channels x 112x112 float32 =
87 MB) and on virtual machines every first touch of a fresh 4 KB page is a trap into the hypervisor;
those page faults cost more than the transform itself (about 50 ms of the 87 MB, measured on the
development VM). :func:`empty` maps large outputs with transparent huge pages (2 MB, 512x fewer
faults) where Linux offers them. The tensor owns the mapping, which is unmapped when it is freed.
"""

from __future__ import annotations

import functools
import math
import mmap
import os

import numpy as np
import torch

try:  # built by setup.py; absent where the machine had no C compiler at install time
    from . import _stencil
except ImportError:  # pragma: no cover - depends on the installation
    _stencil = None

__all__ = ["available", "disabled_by_environment", "empty", "run"]

# Outputs of at least this many bytes are mapped with huge pages (below it malloc reuses memory anyway).
_HUGE_PAGE_MIN_BYTES = 4 << 20
# Below this many output values per thread, starting another thread costs more than it saves.
_VALUES_PER_THREAD = 1 << 18
# PARTIALFACE_TRANSFORM=torch forces the PyTorch path (to compare the two, or to rule the kernel out).
_ENVIRONMENT = "PARTIALFACE_TRANSFORM"


def disabled_by_environment() -> bool:
    return os.environ.get(_ENVIRONMENT, "").strip().lower() == "torch"


def available() -> bool:
    """True when the compiled kernel is installed and not disabled through PARTIALFACE_TRANSFORM."""
    return _stencil is not None and not disabled_by_environment()


def empty(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An uninitialised tensor; large CPU ones are backed by transparent huge pages (see the module doc)."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    nbytes = math.prod(shape) * itemsize
    if device.type != "cpu" or nbytes < _HUGE_PAGE_MIN_BYTES or not hasattr(mmap, "MADV_HUGEPAGE"):
        return torch.empty(shape, dtype=dtype, device=device)
    region = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        region.madvise(mmap.MADV_HUGEPAGE)
    except OSError:  # THP disabled in this kernel: ordinary pages, still correct
        pass
    return torch.frombuffer(region, dtype=dtype).view(shape)


@functools.lru_cache(maxsize=16)
def _weights(stencil_weights, n: int, dtype: torch.dtype) -> np.ndarray:
    """``stencil_weights(n)`` (8, 3, n) in ``dtype``, computed once per size."""
    return torch.as_tensor(stencil_weights(n)).to(dtype).contiguous().numpy()




def run(
    x: torch.Tensor,
    channels: torch.Tensor,
    out: torch.Tensor,
    stencil_weights,
    colour: np.ndarray,
    frequency_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Fill ``out`` (B,J,H,W) with the transform of CPU faces ``x`` (B,3,H,W) at ``channels`` ((J,) or (B,J)).

    The caller has validated the values and indices; ``stencil_weights(n)`` gives the (8, 3, n) float64
    taps, ``colour`` the (3, 4) affine YCbCr map (3 weights and an offset per row),
    and ``frequency_scale`` (192,), when given, divides every channel by its entry.
    """
    b, _, h, w = x.shape
    j = channels.shape[-1]
    rows = _weights(stencil_weights, h, x.dtype)
    cols = _weights(stencil_weights, w, x.dtype)
    scale = None
    if frequency_scale is not None:  # divided in the kernel's last pass over each L1-resident row
        scale = frequency_scale.detach().to(device="cpu", dtype=x.dtype).contiguous().numpy()
    index = channels.reshape(-1, j).to(device="cpu", dtype=torch.int64).contiguous()
    threads = max(1, min(torch.get_num_threads(), (b * j * h * w) // _VALUES_PER_THREAD))
    target = out if out.is_contiguous() else torch.empty_like(out, memory_format=torch.contiguous_format)
    _stencil.forward(
        x.contiguous().numpy(), target.numpy(), rows, cols, index.numpy(), scale, colour.ravel().tolist(),
        b, h, w, j, index.shape[0], x.element_size(), threads,
    )
    if target is not out:
        out.copy_(target)
    return out
