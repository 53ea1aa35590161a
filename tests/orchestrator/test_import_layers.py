"""The orchestrator's layers: planning, training and recall do not import one another; only the kinds of
study (orchestrator/kinds) tie them together, and the typed trial imports nothing of ours.

Read from the source (every import, including those inside functions), so a lazy import cannot hide a
back-up arrow; and checked in a fresh interpreter for what importing a module really loads.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

ORCHESTRATOR = REPO / "orchestrator"


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("orchestrator")}


GRAPH = {
    _module(path): _imports(path) for path in ORCHESTRATOR.rglob("*.py") if "migrations" not in path.parts
}


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# (importer, imported): arrows that must not exist
FORBIDDEN = [
    ("orchestrator.planning", "orchestrator.recall"),
    ("orchestrator.planning", "orchestrator.training"),
    ("orchestrator.planning", "orchestrator.kinds"),
    ("orchestrator.recall", "orchestrator.planning"),
    ("orchestrator.recall", "orchestrator.training"),
    ("orchestrator.recall", "orchestrator.kinds"),
    ("orchestrator.recall", "orchestrator.cli"),
    ("orchestrator.training", "orchestrator.recall"),
    ("orchestrator.training", "orchestrator.planning"),
    ("orchestrator.training", "orchestrator.kinds"),
    ("orchestrator.trial", "orchestrator"),  # the typed trial stands on its own
]


@pytest.mark.parametrize("importer, imported", FORBIDDEN, ids=lambda p: p.removeprefix("orchestrator."))
def test_no_arrow(importer: str, imported: str):
    arrows = [
        f"{source} -> {target}"
        for source, targets in GRAPH.items()
        if _under(source, importer)
        for target in targets
        if _under(target, imported) and not _under(target, importer)
    ]
    assert not arrows, arrows


def test_planning_training_recall_trial_and_kinds_hold_no_import_cycle():
    layers = ("orchestrator.planning", "orchestrator.recall", "orchestrator.training", "orchestrator.trial")
    nodes = {m for m in GRAPH if any(_under(m, p) for p in (*layers, "orchestrator.kinds"))}
    edges = {m: {t for t in GRAPH[m] if t in nodes and t != m} for m in nodes}
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                raise AssertionError(" -> ".join([*path[path.index(target) :], target]))
            if target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(nodes):
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize(
    "module, never",
    [
        (
            "orchestrator.training.loop",
            ("orchestrator.recall", "orchestrator.planning", "orchestrator.kinds"),
        ),
        ("orchestrator.recall.tasks", ("orchestrator.planning", "orchestrator.kinds", "orchestrator.cli")),
        ("orchestrator.planning", ("orchestrator.recall.planning", "orchestrator.training")),
        ("orchestrator.store", ("torch", "ray", "deepspeed")),
    ],
)
def test_importing_loads_nothing_above(module: str, never: tuple[str, ...]):
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert not [m for m in loaded.stdout.split() if any(_under(m, n) for n in never)]
