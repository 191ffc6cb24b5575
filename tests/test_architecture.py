"""What may import what in kiln and kiln_edge: a layer order, no import circles, no workflow in a component.

Every module of kiln/ and kiln_edge/ is parsed with ``ast`` (nothing is imported), and each
``import``/``from ... import`` becomes an edge *importer -> imported kiln module*, wherever it
stands: at module level, inside a function (a lazy import), or in a class body. Lazy imports count
because they are circles all the same: they only move the failure from import time to call time,
and they hide which way a dependency runs. Not edges: imports under ``if TYPE_CHECKING:`` (never
run), and ``importlib.import_module(name)`` with a computed name (loading a saved model imports the
class its file names; ``kiln.zoo`` and ``kiln/__init__.py`` import their members on first use).

The rules, each failure naming file:line:

1. Layers: every module belongs to the first entry of ``LAYERS`` whose prefix it has; a module may
   import its own layer and those below it, never one above (``ALLOWED_UPWARD`` and
   ``BEING_REPLACED`` list the exceptions, each with its reason).
2. Components (everything below the workflow layer) never import a workflow or the CLI.
3. No import circles between modules, counting lazy imports (``ALLOWED_CIRCLE_EDGES`` and
   ``BEING_REPLACED`` list the edges knowingly left; the circle without them must be gone).
4. ``kiln_edge`` imports nothing of kiln but ``kiln.errors``, and ``kiln.errors`` imports nothing
   of kiln and nothing heavy: checked in a subprocess.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kiln", "kiln_edge")

# Lowest first. A module may import modules of its own layer or a lower one.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("kiln.errors", "kiln.__init__"),  # the package itself imports nothing at load (PEP 562)
    ("kiln_edge",),  # torch-free preprocessing and ONNX serving: kiln.errors only (rule 4)
    ("kiln.utils", "kiln.backend"),
    ("kiln.activations", "kiln.initializers", "kiln.regularizers", "kiln.constraints", "kiln.losses", "kiln.metrics",
     "kiln.optimizers"),  # numerics on tensors
    # File formats and class references: knows no layer, model or model family (a saved config names
    # its classes "module:qualname"; a model's extra files come through its save_assets hook), so
    # layers (TimeDistributed's inner layer) and models (Model.save) use it from above.
    ("kiln.saving",),
    ("kiln.layers",),
    ("kiln.ops",),  # Keras's ops take symbolic tensors too, so they sit on kiln.layers
    # the loop trains any nn.Module; its callbacks are its hooks; distribution is how it runs on N ranks
    ("kiln.training", "kiln.callbacks", "kiln.distribution"),
    ("kiln.models",),  # a Model owns a Trainer (compile)
    ("kiln.zoo",),
    ("kiln.data",),  # sources, splits and fitted features (feed models; the zoo never needs them)
    ("kiln.config", "kiln.explain", "kiln.export", "kiln.reports", "kiln.compress", "kiln.privacy"),  # from outside
    ("kiln.workflows", "kiln.serve", "kiln.tune", "kiln.tuners"),  # workflows: components wired into a run
    ("kiln.cli", "kiln.__main__"),
)
WORKFLOWS = ("kiln.workflows", "kiln.serve", "kiln.tune", "kiln.tuners", "kiln.cli", "kiln.__main__")

# (importer, imported): why the upward import stays.
ALLOWED_UPWARD = {
    ("kiln.models.model", "kiln.compress.quantize"):
        "Keras 3's model.quantize('int8'): a thin door to kiln.compress (arrives with the compress work)",
}
# (importer, imported): lazy imports that close a circle, and why they stay.
ALLOWED_CIRCLE_EDGES = {
    ("kiln.models.model", "kiln.models.functional"):
        "Keras's Model(inputs, outputs) returns a Functional, a subclass of Model",
    ("kiln.layers.symbolic", "kiln.layers.merge"):
        "Keras's KerasTensor arithmetic: x + y on symbolic tensors builds an Add layer",
}
# Imports their owners are replacing (kiln/data/features and kiln/config belong to other work):
# allowed until then, and not checked for staleness, so that their fix does not fail this test.
# Delete an entry once its import is gone.
BEING_REPLACED: dict = {}


# ---------------------------------------------------------------------------- the import walker
@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    path: Path
    line: int
    lazy: bool

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path}:{self.line}"


def module_files(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """``{"kiln.layers.dense": path, "kiln.layers": .../__init__.py, ...}`` for every .py file."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: dict) -> str | None:
    """The longest prefix of ``name`` that is one of our modules (``a.b.func`` -> ``a.b``)."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in modules:
            return ".".join(parts)
        parts.pop()
    return None


def import_edges(modules: dict[str, Path]) -> list[Edge]:
    edges = []
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), filename=str(path))

        def visit(node, lazy: bool):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                    for other in child.orelse:
                        visit(other, lazy)
                    continue
                targets = []
                if isinstance(child, ast.Import):
                    targets = [alias.name for alias in child.names]
                elif isinstance(child, ast.ImportFrom):
                    if child.level:  # relative: from .x import y
                        base = module.split(".") if is_package else module.split(".")[:-1]
                        base = base[:len(base) - (child.level - 1)]
                        source = ".".join(base + ([child.module] if child.module else []))
                    else:
                        source = child.module or ""
                    # `from kiln import layers` imports the module kiln.layers; `from kiln.x import f` kiln.x.
                    targets = [f"{source}.{alias.name}" for alias in child.names]
                for imported in dict.fromkeys(_resolve(target, modules) for target in targets):
                    if imported is not None and imported != module:  # one edge per module a line imports
                        edges.append(Edge(module, imported, path, child.lineno, lazy))
                visit(child, lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

        visit(tree, False)
    return edges


# ---------------------------------------------------------------------------- the rules
def layer_of(module: str) -> int:
    key = "kiln.__init__" if module == "kiln" else module
    for rank, prefixes in enumerate(LAYERS):
        if any(key == p or key.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} is in no entry of LAYERS in tests/test_architecture.py: add it where it belongs")


def upward_imports(edges: list[Edge], allowed=ALLOWED_UPWARD.keys() | BEING_REPLACED.keys()) -> list[str]:
    return [f"{e.where()}: {e.importer} ({LAYERS[layer_of(e.importer)][0]} layer) imports {e.imported} "
            f"({LAYERS[layer_of(e.imported)][0]} layer, above it){' lazily' if e.lazy else ''}"
            for e in edges
            if layer_of(e.imported) > layer_of(e.importer) and (e.importer, e.imported) not in allowed]


def workflow_imports(edges: list[Edge]) -> list[str]:
    def is_workflow(m):
        return any(m == w or m.startswith(w + ".") for w in WORKFLOWS)
    return [f"{e.where()}: component {e.importer} imports the workflow {e.imported}"
            for e in edges if is_workflow(e.imported) and not is_workflow(e.importer)]


def import_circles(edges: list[Edge], allowed=ALLOWED_CIRCLE_EDGES.keys() | BEING_REPLACED.keys()) -> list[str]:
    """Each strongly connected group of modules, as the edges that join it (Tarjan's algorithm)."""
    graph = defaultdict(set)
    for e in edges:
        if (e.importer, e.imported) not in allowed:
            graph[e.importer].add(e.imported)
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def connect(v):  # recursive Tarjan: the graph is a few hundred modules deep at most
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(set(graph)):
        if v not in index:
            connect(v)
    def joining(group):
        return [e for e in edges
                if e.importer in group and e.imported in group and (e.importer, e.imported) not in allowed]
    return ["circle among " + ", ".join(sorted(group)) + ": " + "; ".join(
                f"{e.where()} {e.importer} -> {e.imported}{' (lazy)' if e.lazy else ''}" for e in joining(group))
            for group in groups]


@pytest.fixture(scope="module")
def edges():
    return import_edges(module_files(ROOT))


# ---------------------------------------------------------------------------- kiln itself
def test_every_module_has_a_layer(edges):
    for module in module_files(ROOT):
        layer_of(module)


def test_no_module_imports_a_layer_above_its_own(edges):
    problems = upward_imports(edges)
    assert not problems, ("imports against the layer order (LAYERS in tests/test_architecture.py):\n"
                          + "\n".join(problems))


def test_components_never_import_workflows_or_the_cli(edges):
    problems = workflow_imports(edges)
    assert not problems, "\n".join(problems)


def test_no_import_circles(edges):
    problems = import_circles(edges)
    assert not problems, "\n".join(problems)


def test_the_allowlists_hold_only_edges_that_exist(edges):
    # Stale: both modules exist and the import is gone (an entry may wait for a module still to come).
    present, modules = {(e.importer, e.imported) for e in edges}, module_files(ROOT)
    stale = sorted(pair for pair in [*ALLOWED_UPWARD, *ALLOWED_CIRCLE_EDGES]
                   if pair not in present and all(m in modules for m in pair))
    assert not stale, f"remove from the allowlists in tests/test_architecture.py (no such import any more): {stale}"


def test_kiln_edge_imports_only_kiln_errors_from_kiln(edges):
    problems = [f"{e.where()}: {e.importer} imports {e.imported}" for e in edges
                if e.importer.split(".")[0] == "kiln_edge" and e.imported.split(".")[0] == "kiln"
                and e.imported != "kiln.errors"]
    assert not problems, "kiln_edge must run without torch:\n" + "\n".join(problems)


def test_kiln_errors_and_kiln_edge_errors_import_nothing_heavy():
    code = textwrap.dedent("""
        import sys
        import kiln.errors, kiln_edge.errors
        ours = sorted(m for m in sys.modules if m.split(".")[0] in ("kiln", "kiln_edge"))
        heavy = sorted(m for m in ("torch", "numpy", "pandas", "yaml", "pydantic") if m in sys.modules)
        print(ours, heavy)
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['kiln', 'kiln.errors', 'kiln_edge', 'kiln_edge.errors'] []"


def test_kiln_edge_errors_are_kiln_errors():
    from kiln.errors import DataError, KilnError
    from kiln_edge.errors import EdgeDataError, EdgeError, UnsupportedFeatureError
    assert issubclass(EdgeError, KilnError) and issubclass(EdgeError, ValueError)
    assert issubclass(EdgeDataError, DataError) and issubclass(EdgeDataError, EdgeError)
    assert issubclass(UnsupportedFeatureError, EdgeError)


# ---------------------------------------------------------------------------- the walker can fail
@pytest.fixture
def toy(tmp_path):
    """A package ``kiln`` in tmp_path with a lazy circle, an upward import and a workflow import."""
    files = {
        "kiln/__init__.py": "",
        "kiln/errors.py": "",
        "kiln/layers/__init__.py": "from kiln.layers.dense import Dense\n",
        "kiln/layers/dense.py": "from kiln import errors\n\ndef f():\n    from kiln.models import Model\n",
        "kiln/models/__init__.py": "from kiln.layers import Dense\nModel = 1\n",
        "kiln/zoo.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from kiln.cli import main\n"
                       "def g():\n    import kiln.workflows.train\n",
        "kiln/workflows/__init__.py": "",
        "kiln/workflows/train.py": "from ..layers import dense\n",
        "kiln/cli.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return import_edges(module_files(tmp_path, ("kiln",)))


def test_the_walker_finds_lazy_relative_and_type_checking_imports(toy):
    found = {(e.importer, e.imported, e.line, e.lazy) for e in toy}
    assert ("kiln.layers.dense", "kiln.models", 4, True) in found  # inside a function
    assert ("kiln.layers.dense", "kiln.errors", 1, False) in found  # `from kiln import errors`
    assert ("kiln.workflows.train", "kiln.layers.dense", 1, False) in found  # relative
    assert ("kiln.zoo", "kiln.workflows.train", 5, True) in found
    assert not any(e.imported == "kiln.cli" for e in toy)  # under TYPE_CHECKING: never runs


def test_the_rules_name_file_and_line(toy, tmp_path):
    root = tmp_path
    assert sorted(upward_imports(toy)) == [
        f"{root / 'kiln/layers/dense.py'}:4: kiln.layers.dense (kiln.layers layer) imports kiln.models "
        f"(kiln.models layer, above it) lazily",
        f"{root / 'kiln/zoo.py'}:5: kiln.zoo (kiln.zoo layer) imports kiln.workflows.train "
        f"(kiln.workflows layer, above it) lazily"]
    assert [p.split(": ")[1] for p in workflow_imports(toy)] == ["component kiln.zoo imports the workflow "
                                                                  "kiln.workflows.train"]
    circles = import_circles(toy)
    assert len(circles) == 1 and circles[0].startswith("circle among kiln.layers, kiln.layers.dense, kiln.models: ")
    assert "kiln/layers/dense.py:4 kiln.layers.dense -> kiln.models (lazy)" in circles[0]
    assert import_circles(toy, allowed={("kiln.layers.dense", "kiln.models")}) == []
