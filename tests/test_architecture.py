"""The import rules of the house, read from the source (every import, lazy ones included).

- Inside the layer, lower layers never import higher ones:
  errors → config, models, keys, backoff → scripts → backends → queue → processor →
  workers → the composition root (``defaults`` and the package's ``__init__``).
- Workers receive a job and the clients they need: they never import the queue or the
  processor.
- Shipped code (the layer, the functions, the operator CLI) and the local stack never
  import ``tests``; the operator CLI and the functions never import the local stack.
- Functions import from ``jobs_core`` only its public names.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jobs_core
import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "jobs_core"
FUNCTIONS = ROOT / "functions"
TOOLS = ROOT / "tools"

# Rank of each part of the layer, matched by the longest dotted prefix. A module may
# import modules of its own rank or lower.
LAYER_RANKS: dict[str, int] = {
    "jobs_core.errors": 0,
    "jobs_core.clock": 1,
    "jobs_core.redact": 1,
    "jobs_core.secret_refs": 1,
    "jobs_core.config": 1,
    "jobs_core.payloads": 1,
    "jobs_core.models": 1,
    "jobs_core.ids": 1,
    "jobs_core.backoff": 1,
    "jobs_core.webhook_urls": 1,
    "jobs_core.logging": 1,
    "jobs_core.tracing": 2,
    "jobs_core.queue.keys": 1,
    "jobs_core.queue.backends.base": 2,
    "jobs_core.queue.scripts": 3,
    "jobs_core.queue.backends": 4,
    "jobs_core.queue": 5,
    "jobs_core.views": 5,
    "jobs_core.processor": 6,
    "jobs_core.workers": 7,
    "jobs_core.defaults": 8,
    "jobs_core": 8,
}


@dataclass(frozen=True, slots=True)
class Import:
    source: Path
    line: int
    module: str  # the absolute dotted name imported
    names: tuple[str, ...]  # the names of a ``from`` import; empty for ``import x``


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path) -> Iterator[Import]:
    """Every import in ``path`` as an absolute name, with ``root`` as the path entry."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name, ())
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(base)
                module = f"{prefix}.{node.module}" if node.module else prefix
            else:
                module = node.module or ""
            # ``from . import scripts`` imports the submodule ``scripts``, not the package.
            submodules = {a.name for a in node.names if _is_module(root, f"{module}.{a.name}")}
            names = tuple(a.name for a in node.names if a.name not in submodules)
            if names:
                yield Import(path, node.lineno, module, names)
            for submodule in sorted(submodules):
                yield Import(path, node.lineno, f"{module}.{submodule}", ())


def _is_module(root: Path, dotted: str) -> bool:
    target = root.joinpath(*dotted.split("."))
    return target.with_suffix(".py").is_file() or (target / "__init__.py").is_file()


def python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def layer_rank(module: str) -> int | None:
    for prefix in sorted(LAYER_RANKS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return LAYER_RANKS[prefix]
    return None


def where(imp: Import) -> str:
    return f"{imp.source.relative_to(ROOT)}:{imp.line} imports {imp.module}"


LAYER_FILES = python_files(LAYER / "jobs_core")


def test_every_layer_module_has_a_rank() -> None:
    unranked = [p for p in LAYER_FILES if layer_rank(module_name(p, LAYER)) is None]
    assert unranked == []


@pytest.mark.parametrize("path", LAYER_FILES, ids=lambda p: str(p.relative_to(LAYER)))
def test_layer_modules_never_import_a_higher_layer(path: Path) -> None:
    own = layer_rank(module_name(path, LAYER))
    assert own is not None
    upward = [
        where(imp)
        for imp in imports_of(path, LAYER)
        if (rank := layer_rank(imp.module)) is not None and rank > own
    ]
    assert upward == []


def test_workers_never_touch_the_queue_or_the_processor() -> None:
    touching = [
        where(imp)
        for path in python_files(LAYER / "jobs_core" / "workers")
        for imp in imports_of(path, LAYER)
        if imp.module.startswith(("jobs_core.queue", "jobs_core.processor", "jobs_core.defaults"))
    ]
    assert touching == []


SHIPPED = [
    (LAYER, LAYER / "jobs_core"),
    (ROOT, FUNCTIONS),
    (TOOLS, TOOLS / "escrow_jobs_cli"),
    (TOOLS, TOOLS / "local_stack"),
    (ROOT, ROOT / "bench"),
]


@pytest.mark.parametrize(("root", "folder"), SHIPPED, ids=lambda v: v.name)
def test_shipped_code_and_the_local_stack_never_import_the_tests(root: Path, folder: Path) -> None:
    assert folder.is_dir()
    from_tests = [
        where(imp)
        for path in python_files(folder)
        for imp in imports_of(path, root)
        if imp.module == "tests" or imp.module.startswith("tests.")
    ]
    assert from_tests == []


@pytest.mark.parametrize(
    ("root", "folder"),
    [(ROOT, FUNCTIONS), (TOOLS, TOOLS / "escrow_jobs_cli"), (LAYER, LAYER / "jobs_core")],
    ids=lambda v: v.name,
)
def test_what_operators_install_never_imports_the_local_stack(root: Path, folder: Path) -> None:
    dev_only = [
        where(imp)
        for path in python_files(folder)
        for imp in imports_of(path, root)
        if imp.module == "local_stack" or imp.module.startswith("local_stack.")
    ]
    assert dev_only == []


def test_functions_import_only_the_public_names_of_jobs_core() -> None:
    public = set(jobs_core.__all__)
    private = [
        f"{where(imp)} ({', '.join(imp.names) or 'a submodule'})"
        for path in python_files(FUNCTIONS)
        for imp in imports_of(path, ROOT)
        if imp.module.startswith("jobs_core")
        and (imp.module != "jobs_core" or not set(imp.names) <= public)
    ]
    assert private == []


def test_the_rules_see_a_violation() -> None:
    # The checks above pass vacuously if the parser finds no imports: show it finds them.
    drain = LAYER / "jobs_core" / "processor" / "drain.py"
    found = {imp.module for imp in imports_of(drain, LAYER)}
    assert "jobs_core.queue" in found
    assert layer_rank("jobs_core.queue.backends.redis_tcp") == 4
    assert layer_rank("jobs_core.workers.webhook") == 7
