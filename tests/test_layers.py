"""Imports go one way, down the layers of ARCHITECTURE.md; the worker never imports graph code."""

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parent.parent / "cascata"

# layer rank: a module may import only modules of equal or lower rank
TOP = 3
COORD = 2
EXEC = 1
BOTTOM = 0


def rank(module: str) -> int:
    parts = module.split(".")
    if parts[-1] == "__main__":
        return TOP  # an entry point (python -m cascata.worker) runs the CLI
    if parts[:3] == ["cascata", "_run", "compile"]:
        return TOP  # the one bridge from graph time to the plan: it reads the graph's ports
    if parts[:2] == ["cascata", "errors"]:
        return -1
    if parts[:2] == ["cascata", "transport"]:
        return BOTTOM
    if parts[:2] in (["cascata", "worker"], ["cascata", "log"], ["cascata", "_plan"]):
        return EXEC
    if parts[:2] in (
        ["cascata", "_run"],
        ["cascata", "_topology"],
    ):
        return COORD
    return TOP


def modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        yield name, path


def imports_of(name, path):
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("cascata"):
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("cascata"):
                if node.module is None or target in ("cascata", "cascata.worker"):
                    for alias in node.names:
                        yield f"{target}.{alias.name}"
                else:
                    yield target


@pytest.mark.parametrize(("name", "path"), list(modules()), ids=lambda v: str(v))
def test_no_upward_imports(name, path):
    if name == "cascata":
        return  # the package root only re-exports
    mine = rank(name)
    bad = [t for t in imports_of(name, path) if rank(t) > mine]
    assert not bad, f"{name} (layer {mine}) imports upward: {bad}"
