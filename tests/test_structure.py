"""The package's shape: no import cycles, small modules, a napari-free core."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "napari_xrfquant"
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, name: str) -> set[str]:
    """Modules of the package that ``path`` imports (any depth: lazy imports count)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("napari_xrfquant")}


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        # a package import means its __init__; an attribute import, the module if it is one
        targets = {m if m in files else m.rpartition(".")[0] for m in _imports(path, name)}
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _without_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # A package __init__ that re-exports its modules is imported by them only for
    # its public names; lazy packages import nothing at import time. Cycles through
    # an __init__ are therefore not cycles of modules.
    packages = {name for name in graph if (PACKAGE.parent / name.replace(".", "/")).is_dir()}
    return {n: {t for t in ts if t not in packages} for n, ts in graph.items() if n not in packages}


def test_no_module_import_cycles():
    assert _cycles(_without_packages(_graph())) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_source_file_over_500_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_core_imports_neither_napari_nor_qt():
    import re

    gui = re.compile(r"^\s*(from|import)\s+(napari|qtpy|PyQt\d|PySide\d|superqt|magicgui)(\.|\s|$)")
    core = [p for p in PACKAGE.rglob("*.py") if "_napari" not in p.parts]
    for path in core:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert not gui.match(line), f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"


def test_the_readers_and_the_instrument_import_no_folder_above_them():
    """file -> cube (io/) and the instrument file sit at the bottom of the core: they read
    xraylib themselves rather than import the physics, inference or training above them."""
    above = ("physics", "inference", "models", "training", "calibration", "results",
             "evaluation", "campaign", "cli", "_napari")
    graph = _graph()
    bottom = [name for name in graph if name.startswith("napari_xrfquant.io")
              or name.split(".")[-1] in ("instrument", "instrument_tube", "instrument_sample",
                                         "instrument_path", "instrument_geometry", "xray_tube")]
    assert len(bottom) > 15
    upward = {name: sorted(t for t in graph[name] if t.split(".")[1] in above)
              for name in bottom}
    assert {name: targets for name, targets in upward.items() if targets} == {}


#: The core's layers, bottom first: file -> cube -> spectra -> model or physics fit ->
#: maps -> layers / files. A module imports from its own layer or those below, never
#: from a layer above (top-level modules by name, folders by folder).
LAYERS = (
    ("errors", "_files", "_schema", "jobs", "xray_tube", "instrument_sample",
     "instrument_path", "instrument_geometry", "instrument_tube", "instrument",
     "instrument_parameters"),
    ("io",),
    ("physics",),
    ("models",),
    ("results",),
    ("inference",),
    ("training",),
    ("calibration", "evaluation"),
    ("campaign", "sample"),
    ("cli", "_napari"),
)


def _layer(module: str) -> int | None:
    """The layer of ``napari_xrfquant.<unit>...`` (None for the package root)."""
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the package's own __init__: its version and lazy public names
    unit = parts[1]
    for number, members in enumerate(LAYERS):
        if unit in members:
            return number
    raise AssertionError(f"{module}: in no layer of LAYERS; add it where it belongs")


def _upward_imports(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    out = {}
    for name, targets in graph.items():
        layer = _layer(name)
        if layer is None:
            continue
        above = sorted(t for t in targets if (other := _layer(t)) is not None and other > layer)
        if above:
            out[name] = above
    return out


def test_no_module_of_the_core_imports_a_folder_above_it():
    """The folders show the one-way flow: e.g. training may use the instrument's
    parameter space (instrument_parameters) and the fitted channels (inference), but
    not the calibration, which retrains above it; inference does not import training."""
    assert _upward_imports(_graph()) == {}


def test_the_folder_walk_finds_an_upward_import():
    graph = {"napari_xrfquant.inference.refine": {"napari_xrfquant.calibration.fit"},
             "napari_xrfquant.calibration.fit": {"napari_xrfquant.inference.fit_quality"}}
    assert _upward_imports(graph) == {
        "napari_xrfquant.inference.refine": ["napari_xrfquant.calibration.fit"]}
