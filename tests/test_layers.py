"""The layout holds by construction: imports run one way, from the top layer down, and the
domain packages never import each other (ADR 0015). Read from the source's own imports."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import taskhub

SOURCE = Path(taskhub.__file__).parent

# From the top down; a unit may import only units of the layers below its own.
LAYERS: list[set[str]] = [
    {"__main__", "main"},
    {"worker"},
    {"tasks", "projects", "comments", "notifications"},  # the domains: never each other
    {"auth"},  # identity: accounts, sessions, the auth dependency
    {"http"},
    {"access"},  # who may see or do what
    {"ratelimit", "security", "logs", "pagination", "etags", "tables"},
    {"errors", "moving_windows", "redis_health", "schemas"},
    {"db"},
    {"config", "context", "clock", "migrate"},
]
LAYER_OF = {unit: depth for depth, layer in enumerate(LAYERS) for unit in layer}


def _unit(module: str) -> str:
    """The top-level package or module of `taskhub` that `module` belongs to."""
    parts = module.removesuffix(".__init__").split(".")
    return parts[1] if len(parts) > 1 else "taskhub"


def imports() -> Iterator[tuple[str, str, str]]:
    """(importing unit, imported unit, file) for every import between two units of taskhub."""
    for path in sorted(SOURCE.rglob("*.py")):
        module = ".".join(path.relative_to(SOURCE.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(
                "taskhub"
            ):
                continue
            named = [node.module] if node.module != "taskhub" else []
            named += [f"taskhub.{alias.name}" for alias in node.names if node.module == "taskhub"]
            for target in named:
                if _unit(target) != _unit(module):
                    yield _unit(module), _unit(target), str(path.relative_to(SOURCE))


def test_every_unit_of_the_source_has_a_layer() -> None:
    units = {
        _unit(".".join(p.relative_to(SOURCE.parent).with_suffix("").parts))
        for p in SOURCE.rglob("*.py")
    }
    assert units - {"taskhub"} <= LAYER_OF.keys(), "place the new unit in LAYERS"


def test_no_import_runs_back_up_a_layer() -> None:
    upward = [
        f"{where}: {importer} imports {imported}"
        for importer, imported, where in imports()
        if LAYER_OF[imported] <= LAYER_OF[importer]
    ]
    assert upward == []


def test_no_two_domain_packages_import_each_other() -> None:
    domains = LAYERS[2]
    ties = [
        f"{where}: {importer} imports {imported}"
        for importer, imported, where in imports()
        if importer in domains and imported in domains
    ]
    assert ties == []
