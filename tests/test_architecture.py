"""The layer rule of docs/architecture.md, enforced on every module under src/partialface.

Every ``import`` statement is read with :mod:`ast`, at module level or inside a function (lazy imports
count: they run too). A module may import its own layer and the layers below; the client SDK may reach
only the bottom layer, ``data``, ``alignment`` and ``encoders`` (followed transitively, so ``encoders``
can never drag ``models`` into a client); the top-level packages may not import each other in a cycle. A module whose
package is not in :data:`LAYERS` fails the test until someone classifies it there and in the doc.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from collections import deque
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from .conftest import REPO_ROOT

PACKAGE = "partialface"
SRC = REPO_ROOT / "src"

FORMATS, FOUNDATIONS, PIPELINES, PRODUCTS = 0, 1, 2, 3

# Module or package prefix -> layer (docs/architecture.md). A new top-level module or package must be added.
LAYERS = {
    # 0: formats and the client transform (pure functions and file formats; no model, no data set)
    "partialface.errors": FORMATS,
    "partialface.checks": FORMATS,
    "partialface.atomic": FORMATS,
    "partialface.jsonfile": FORMATS,  # JSON written atomically, read with one-line errors
    "partialface.outputs": FORMATS,  # output paths checked before a run: never onto an input or a user's file
    "partialface.runlock": FORMATS,  # one run at a time per output folder (flock), stale temporaries removed
    "partialface.frequency": FORMATS,
    "partialface.plan": FORMATS,
    "partialface.plan_presets": FORMATS,  # named plan settings (data the plan module builds from)
    "partialface.protected": FORMATS,
    "partialface.preview": FORMATS,
    "partialface.checkpoint": FORMATS,
    "partialface.reference": FORMATS,
    "partialface.registry": FORMATS,  # name -> builder tables
    "partialface.wire": FORMATS,  # the client-server payload format
    "partialface.frequency_kernel": FORMATS,  # the compiled client transform (arriving with the perf branch)
    "partialface._stencil": FORMATS,  # its C extension (perf branch)
    # 1: networks, model inputs, face data, template storage
    "partialface.models": FOUNDATIONS,
    "partialface.encoders": FOUNDATIONS,
    "partialface.data": FOUNDATIONS,
    "partialface.alignment": FOUNDATIONS,  # face detection and alignment
    "partialface.gallery": FOUNDATIONS,  # enrolled templates and API keys
    "partialface.dlib_recognizer": FOUNDATIONS,  # dlib's ResNet recognizer: the judge and the distillation teacher
    # 2: what is done with them
    "partialface.training": PIPELINES,
    "partialface.evaluation": PIPELINES,
    "partialface.attacks": PIPELINES,
    # 3: what users and deployments run
    "partialface.client": PRODUCTS,
    "partialface.server": PRODUCTS,
    "partialface.api": PRODUCTS,
    "partialface.export": PRODUCTS,  # ONNX export and runtime of a loaded model (arriving with the perf branch)
    "partialface.demo": PRODUCTS,
    "partialface.protect": PRODUCTS,
    "partialface.train": PRODUCTS,
    "partialface.cli": PRODUCTS,
    "partialface.__main__": PRODUCTS,
}
ROOT_LAYER = PRODUCTS  # partialface/__init__.py: ``partialface.load_model`` reaches the inference API

CLIENT = "partialface.client"
# What a client may reach: the bottom layer, the face data and its alignment, the encoders (plan +
# per-frequency scale). Never models, training, evaluation, attacks, gallery, server or api.
CLIENT_MAY_REACH = tuple(p for p, layer in LAYERS.items() if layer == FORMATS) + (
    "partialface.data",
    "partialface.alignment",
    "partialface.encoders",
    CLIENT,
)


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (a package when a name is not a submodule)
    line: int
    text: str  # the statement as written

    def __str__(self) -> str:
        return f"{self.source} (line {self.line}: {self.text})"


# Compiled extension modules: their C/Cython source, or the built library (``_x.cpython-311-....so``).
EXTENSION_SUFFIXES = (".c", ".pyx", ".so", ".pyd")


def module_names(src: Path) -> dict[str, Path]:
    """Every module under ``src/partialface``: dotted name -> file (a package's name -> its __init__.py).

    Compiled extensions count as modules (with no imports of their own), built or not.
    """
    names = {}
    for path in sorted((src / PACKAGE).rglob("*")):
        if path.suffix != ".py" and path.suffix not in EXTENSION_SUFFIXES:
            continue
        parts = [*path.relative_to(src).parent.parts, path.name.split(".")[0]]
        if parts[-1] == "__init__":
            parts.pop()
        names.setdefault(".".join(parts), path)
    return names


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def imports_of(name: str, path: Path, known: set[str]) -> list[Import]:
    """Every import of a ``partialface`` module in the file, lazy ones included, resolved to module names."""
    source = path.read_text()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # ``from pkg import sub`` imports the submodule ``pkg.sub``; ``from pkg import name`` imports pkg.
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]
        else:
            continue
        text = " ".join(ast.get_source_segment(source, node).split())
        for target in dict.fromkeys(targets):
            if _within(target, PACKAGE):
                found.append(Import(name, target, node.lineno, text))
    return found


def layer_of(name: str) -> int | None:
    if name == PACKAGE:
        return ROOT_LAYER
    prefixes = [p for p in LAYERS if _within(name, p)]
    return LAYERS[max(prefixes, key=len)] if prefixes else None


def unit_of(name: str) -> str:
    """The top-level module or package a module belongs to (``partialface.data.crop`` -> ``partialface.data``)."""
    return ".".join(name.split(".")[:2])


def import_graph(src: Path) -> tuple[dict[str, Path], list[Import]]:
    modules = module_names(src)
    edges = [edge for name, path in modules.items() if path.suffix == ".py"
             for edge in imports_of(name, path, set(modules))]
    return modules, edges


def unclassified(modules) -> list[str]:
    return [f"{name}: no layer in LAYERS (tests/test_architecture.py) and docs/architecture.md"
            for name in modules if layer_of(name) is None]


def upward_imports(edges: list[Import]) -> list[str]:
    problems = []
    for edge in edges:
        source, target = layer_of(edge.source), layer_of(edge.target)
        if source is not None and target is not None and target > source:
            problems.append(f"{edge} imports {edge.target} (layer {target}) from layer {source}")
    return problems


def client_reach(edges: list[Import]) -> list[str]:
    """Client modules that reach, through any chain of imports, a module outside CLIENT_MAY_REACH."""
    outgoing: dict[str, list[Import]] = {}
    for edge in edges:
        outgoing.setdefault(edge.source, []).append(edge)
    problems = []
    for start in sorted({e.source for e in edges if _within(e.source, CLIENT)}):
        via: dict[str, Import] = {}
        queue = deque([start])
        while queue:
            for edge in outgoing.get(queue.popleft(), []):
                if edge.target in via or edge.target == start:
                    continue
                via[edge.target] = edge
                if any(_within(edge.target, allowed) for allowed in CLIENT_MAY_REACH):
                    queue.append(edge.target)
                    continue
                chain, step = [], edge
                while True:
                    chain.append(str(step))
                    if step.source == start:
                        break
                    step = via[step.source]
                problems.append(f"client module {start} reaches {edge.target}: " + " <- ".join(chain))
    return problems


def package_cycles(edges: list[Import]) -> list[str]:
    """An import cycle among top-level modules and packages, each step with the imports that make it."""
    depends: dict[str, set[str]] = {}
    for edge in edges:
        a, b = unit_of(edge.source), unit_of(edge.target)
        if a != b:
            depends.setdefault(a, set()).add(b)
    try:
        TopologicalSorter({a: sorted(b) for a, b in sorted(depends.items())}).prepare()  # sorted: one report
    except CycleError as err:
        cycle = err.args[1][::-1]  # graphlib lists dependencies first; read it as "a imports b imports ..."
        steps = [f"{e} imports {e.target}" for a, b in zip(cycle, cycle[1:]) for e in edges
                 if unit_of(e.source) == a and unit_of(e.target) == b]
        return [f"import cycle {' -> '.join(cycle)}: " + "; ".join(steps)]
    return []


def violations(src: Path) -> list[str]:
    modules, edges = import_graph(src)
    return unclassified(modules) + upward_imports(edges) + client_reach(edges) + package_cycles(edges)


# ------------------------------------------------------------------------------------------ the real tree
def test_every_module_has_a_layer():
    modules, _ = import_graph(SRC)
    assert len(modules) > 40  # the walk found the package
    assert unclassified(modules) == []


def test_no_module_imports_a_higher_layer():
    _, edges = import_graph(SRC)
    assert upward_imports(edges) == []


def test_the_client_reaches_only_formats_data_and_encoders():
    _, edges = import_graph(SRC)
    assert client_reach(edges) == []


def test_no_import_cycle_between_packages():
    _, edges = import_graph(SRC)
    assert package_cycles(edges) == []


def test_what_a_client_may_import_loads_no_model_training_or_server_code():
    """At run time too: importing every module a client may use leaves the upper layers unloaded."""
    modules = [name for name in module_names(SRC) if any(_within(name, p) for p in CLIENT_MAY_REACH)]
    code = textwrap.dedent(f"""
        import importlib, sys
        for name in {modules!r}:
            importlib.import_module(name)
        print(" ".join(sorted(sys.modules)))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                            timeout=300).stdout.split()
    assert "partialface.data" in loaded and "partialface.plan" in loaded
    outside = [m for m in loaded if _within(m, PACKAGE) and m != PACKAGE
               and not any(_within(m, p) for p in CLIENT_MAY_REACH)]
    assert outside == []


# ------------------------------------------------------------------------------------------ the checker
def _write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / PACKAGE / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_the_checker_names_module_line_and_import_of_each_violation(tmp_path):
    src = _write(tmp_path, {
        "__init__.py": "from .plan import ChannelPlan\n",
        "errors.py": "",
        "plan.py": "import torch\n\ndef lazy():\n    from .training.trainer import Trainer\n    return Trainer\n",
        "training/__init__.py": "",
        "training/trainer.py": "from ..evaluation import metrics\nfrom partialface import errors\n",
        "evaluation/__init__.py": "",
        "evaluation/metrics.py": "from ..training import trainer\n",
        "encoders.py": "from .models import get_model\n",
        "models/__init__.py": "def get_model():\n    pass\n",
        "client/__init__.py": "from ..encoders import get_model\nfrom . import session\n",
        "client/session.py": "import partialface.errors\n",
        "newthing.py": "",
    })
    found = violations(src)
    assert found == [
        "partialface.newthing: no layer in LAYERS (tests/test_architecture.py) and docs/architecture.md",
        "partialface.plan (line 4: from .training.trainer import Trainer) imports partialface.training.trainer "
        "(layer 2) from layer 0",
        "client module partialface.client reaches partialface.models: partialface.encoders (line 1: "
        "from .models import get_model) <- partialface.client (line 1: from ..encoders import get_model)",
        "import cycle partialface.training -> partialface.evaluation -> partialface.training: "
        "partialface.training.trainer (line 1: from ..evaluation import metrics) imports partialface.evaluation.metrics; "
        "partialface.evaluation.metrics (line 1: from ..training import trainer) imports partialface.training.trainer",
    ]


def test_imports_resolve_to_submodules_and_packages(tmp_path):
    src = _write(tmp_path, {
        "__init__.py": "", "errors.py": "", "data/__init__.py": "", "data/crop.py": "",
        "data/pairs.py": "from . import crop\nfrom .. import errors\nfrom ..data import read_pairs\n"
                         "import partialface.errors as e\nfrom partialface import __version__\nfrom . import _fast\n",
        "data/_fast.c": "/* a C extension, not built here */\n",
    })
    modules, edges = import_graph(src)
    assert "partialface.data._fast" in modules
    assert [(e.target, e.line) for e in edges] == [
        ("partialface.data.crop", 1), ("partialface.errors", 2), ("partialface.data", 3), ("partialface.errors", 4),
        ("partialface", 5), ("partialface.data._fast", 6),
    ]


def test_the_checker_passes_a_tree_that_follows_the_rule(tmp_path):
    src = _write(tmp_path, {
        "__init__.py": "def load_model():\n    from .api import load_model\n",
        "api.py": "from .models import get_model\nfrom .data import crop\n",
        "models/__init__.py": "from .registry import get_model\n",
        "models/registry.py": "from ..errors import PartialFaceError\n",
        "errors.py": "",
        "data/__init__.py": "",
        "data/crop.py": "from ..checks import check_int\n",
        "checks.py": "from .errors import PartialFaceError\n",
        "client/__init__.py": "from ..data.crop import x\nfrom ..plan import ChannelPlan\n",
        "plan.py": "",
    })
    assert violations(src) == []


@pytest.mark.parametrize("name, layer", [("partialface.data.crop", FOUNDATIONS), ("partialface", PRODUCTS),
                                          ("partialface.server.app", PRODUCTS), ("partialface.datasets", None)])
def test_layers_match_whole_name_parts(name, layer):
    assert layer_of(name) == layer
