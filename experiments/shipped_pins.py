"""Print the test pins of shipped models, for tests/test_encoders.py's ``SHIPPED_TEMPLATES``.

    python experiments/shipped_pins.py default rgb-baseline

A shipped model's pins are what it gives for three fixed synthetic faces with a fixed rank draw: per
face, the template's sum, its index-weighted sum and its first four values. They change only when new
weights ship (experiments/ship_models.py) or when the way a shipped state is read changes, which the
test exists to catch; so after shipping, paste what this prints into the test, and at any other time a
difference is a regression. The test computes the same numbers with :func:`template_pins`.
"""

from __future__ import annotations

import argparse
import sys

import torch

FACES_SEED = 2024  # the synthetic faces
RANKS_SEED = 7     # the rank each face is sent with


def pin_faces() -> torch.Tensor:
    """Three synthetic 112x112 faces in [-1, 1], the same on every machine."""
    return torch.rand(3, 3, 112, 112, generator=torch.Generator().manual_seed(FACES_SEED)) * 2 - 1


def template_pins(model) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``model``'s templates of :func:`pin_faces` as (sums (3,), index-weighted sums (3,), first four (3,4))."""
    templates = model.embed(pin_faces(), torch.Generator().manual_seed(RANKS_SEED))
    if templates.shape != (3, 512):
        raise ValueError(f"templates of shape {tuple(templates.shape)}, expected (3, 512)")
    return templates.sum(dim=1), (templates * torch.arange(512)).sum(dim=1), templates[:, :4]


def format_pins(name: str, pins: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> str:
    """The ``SHIPPED_TEMPLATES`` entry of model ``name`` as Python source."""
    sums, weighted, first = (values.tolist() for values in pins)
    rows = ",\n         ".join(repr(row) for row in first)
    return f'    "{name}": (\n        {sums!r},\n        {weighted!r},\n        [{rows}],\n    ),'


def main(argv: list[str] | None = None) -> int:
    from partialface.api import load_model, shipped_models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", metavar="NAME", help="shipped model names (partialface.api.shipped_models)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in shipped_models()]
    if unknown:
        print(f"shipped_pins.py: no shipped model {unknown[0]!r}; shipped: {', '.join(sorted(shipped_models()))}",
              file=sys.stderr)
        return 2
    with torch.no_grad():
        for name in args.names:
            print(format_pins(name, template_pins(load_model(name))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
