"""The package layout: stages import only the stages before them, modules stay short.

docs/architecture.rst draws the flow; this keeps it true. Imports inside functions count,
and ``from .stage import name`` counts as an import of that stage.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "binaryvision"
#: the stages in the order data flows through them
STAGES = ["data", "transforms", "backbones", "features", "training", "decisions", "outputs"]
#: modules every stage may use
SHARED = {"exceptions", "distributed", "persistence", "_version"}
#: the fronts over the stages: nothing below may import them
FRONTS = {"classifier", "_params", "_predict", "cli", "demo", "__main__", "datasets", "export"}


def _modules() -> dict[str, Path]:
    return {
        ".".join(f.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): f
        for f in PACKAGE.rglob("*.py")
    }


def _imports(name: str, path: Path) -> set[str]:
    """Fully qualified binaryvision modules (or packages) that ``name`` imports.

    ``from package import module`` counts as an import of the module alone.
    """
    is_package = path.name == "__init__.py"
    modules = _modules()
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + is_package]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = {f"{target}.{a.name}" for a in node.names} & set(modules)
            found |= submodules if len(submodules) == len(node.names) else {target} | submodules
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {t for t in found if t.startswith("binaryvision")}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_layout_check_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from ..outputs.report import EvaluationReport\n")
    assert "binaryvision.outputs.report" in _imports("binaryvision.decisions.probe", source)


def test_no_module_is_longer_than_500_lines():
    long = {m: n for m, f in _modules().items() if (n := len(f.read_text().splitlines())) > 500}
    assert long == {}


def test_stages_import_only_earlier_stages_and_shared_modules():
    wrong = []
    for name, path in _modules().items():
        stage = _top(name)
        if stage not in STAGES:
            continue
        allowed = set(STAGES[: STAGES.index(stage) + 1]) | SHARED | {""}
        for target in _imports(name, path):
            if _top(target) not in allowed:
                wrong.append(f"{name} imports {target}")
    assert wrong == []


def test_nothing_imports_the_fronts_but_the_fronts():
    wrong = [
        f"{name} imports {target}"
        for name, path in _modules().items()
        if _top(name) not in FRONTS and name != "binaryvision"
        for target in _imports(name, path)
        if _top(target) in FRONTS
    ]
    assert wrong == []


def test_no_import_circles_between_modules():
    modules = _modules()
    graph = {m: {t for t in _imports(m, f) if t in modules and t != m} for m, f in modules.items()}
    packages = {m for m, f in modules.items() if f.name == "__init__.py"} - {"binaryvision"}

    # a package's __init__ only re-exports: follow it to what it imports
    def expand(targets: set[str]) -> set[str]:
        out, todo = set(), list(targets)
        while todo:
            t = todo.pop()
            if t in out:
                continue
            out.add(t)
            if t in packages:
                todo += [s for s in graph[t] if s.startswith(t + ".")]
        return {t for t in out if t not in packages}

    edges = {m: expand(ts - {"binaryvision"}) for m, ts in graph.items() if m not in packages}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            v = todo.pop()
            for w in edges.get(v, ()):
                if w == goal:
                    return True
                if w not in seen:
                    seen.add(w)
                    todo.append(w)
        return False

    circles = sorted(f"{a} <-> {b}" for a, ts in edges.items() for b in ts if reaches(b, a))
    assert circles == []
