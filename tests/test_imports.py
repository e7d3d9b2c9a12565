"""The import graph of tna/ and deploy/: one-way, without cycles, and torch-free where Lava runs.

Every module is parsed with `ast`; every import counts, also one inside a function (a lazy import
is still a dependency). An import names the most specific module it reaches: `from a.b import c`
is a.b.c when that is a module, else a.b (as import-linter/grimp count them).
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tna", "deploy")
# tna/ knows deploy/ only through these: the command line, and the documented seam
TNA_TO_DEPLOY = {"tna.cli", "tna.deployed"}
# what runs in the Lava environment (Python 3.10, no torch): deploy/lava_run.py and all it needs
LAVA_SIDE = ("deploy.lava_run", "deploy.lavanet.network", "deploy.lavanet.smoke", "deploy.lavanet.procs.lif",
             "deploy.lavanet.procs.recorder", "deploy.lavanet.procs.delay", "deploy.files", "deploy.graph.read",
             "deploy.graph.plan", "deploy.graph.compat", "deploy.loihi.fixed_point", "deploy.loihi.simulate",
             "deploy.verify")


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(name: str, path: Path, known: set, top_level_only: bool = False) -> set[str]:
    """The modules `name` imports (internal ones by name; external ones as their top-level package)."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    if top_level_only:  # also what sits under a top-level if/try (e.g. `if __package__ ...`)
        nodes = [n for top in tree.body for n in ast.walk(top) if not isinstance(top, (ast.FunctionDef, ast.ClassDef))]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()

    def resolve(target: str) -> str:
        while target and target not in known and "." in target:
            target = target.rpartition(".")[0]
        return target if target in known else target.split(".")[0]

    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {resolve(a.name) for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: `from ..x import y` in package a.b.c is a.b.x
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for a in node.names:
                found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else resolve(base))
    found.discard(name)
    return found


@pytest.fixture(scope="module")
def graph():
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def cycles(g: dict) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in g:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_every_module_is_parsed(graph):
    assert {"tna.cli", "tna.deployed", "deploy.pipeline", "deploy.graph.read", "deploy.loihi.simulate",
            "deploy.lavanet.network", "deploy.report.resources"} <= set(graph)


def test_no_import_cycles(graph):
    assert cycles(graph) == []


def test_tna_imports_deploy_only_through_the_cli_and_the_seam(graph):
    crossing = {m for m, deps in graph.items() if m.startswith("tna") and any(d.startswith("deploy") for d in deps)}
    assert crossing <= TNA_TO_DEPLOY, sorted(crossing - TNA_TO_DEPLOY)


def test_lava_side_never_imports_torch_at_import_time():
    """Statically: nothing the Lava side imports when it is imported (module level, transitively)
    is torch or a module that imports torch at its top."""
    mods = modules()
    top = {name: imports(name, path, set(mods), top_level_only=True) for name, path in mods.items()}
    seen, todo = set(), list(LAVA_SIDE)
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        assert "torch" not in top.get(m, ()) and "norse" not in top.get(m, ()), f"{m} imports torch"
        todo += [d for d in top.get(m, ()) if d in mods]
    assert {"deploy.graph.plan", "deploy.loihi.fixed_point", "tna.errors"} <= seen


def test_lava_side_imports_in_the_lava_environment_without_torch():
    """And for real: the Lava environment's Python imports every Lava-side module, and torch is not
    among the modules it loaded (it is not even installed there)."""
    from deploy.lavanet.env import lava_python

    code = ("import sys, importlib\n"
            f"for m in {LAVA_SIDE!r}: importlib.import_module(m)\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'norse', 'nirtorch'))\n"
            "print(bad)\n")
    proc = subprocess.run([str(lava_python()), "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
