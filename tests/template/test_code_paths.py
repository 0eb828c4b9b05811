"""Every Handler, CodeUri and layer ContentUri in the template resolves to real code.

"Resolves" the way Lambda does it: the function's folder is the task root, the layer's
folder is on the path (``sam build`` copies its contents to ``/opt/python``), and the
handler's module is imported by its top-level name, in a fresh interpreter in which
the repository itself is not importable.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.template.cfn import (
    ROOT,
    Resolver,
    function_folder,
    functions,
    load_template,
    resources_of_type,
    samconfig_parameters,
)

TEMPLATE = load_template()
FUNCTIONS = functions(TEMPLATE)
[(LAYER_ID, LAYER)] = resources_of_type(TEMPLATE, "AWS::Serverless::LayerVersion").items()
LAYER_DIR = ROOT / LAYER["Properties"]["ContentUri"]

# Modules the Lambda Python runtime provides besides the standard library.
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3"}

# Functions known not to import as Lambda imports them, with the issue that owns the fix.
# An entry here is an expected failure, reported as XFAIL (or XPASS once fixed: then
# delete the entry).
KNOWN_BROKEN: dict[str, str] = {}


def _params(name: str) -> Any:
    marks = []
    folder = function_folder(FUNCTIONS[name])
    if folder in KNOWN_BROKEN:
        marks.append(pytest.mark.xfail(reason=KNOWN_BROKEN[folder], strict=False))
    return pytest.param(name, id=name, marks=marks)


def test_the_template_has_the_three_functions_and_one_layer() -> None:
    assert set(FUNCTIONS) == {"EscrowApiFunction", "JobProcessorFunction", "MonitorFunction"}
    assert LAYER_ID == "JobsCoreLayer"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_handler_names_a_function_defined_in_the_code_uri(name: str) -> None:
    props = FUNCTIONS[name]
    code_dir = ROOT / props["CodeUri"]
    assert code_dir.is_dir(), f"{name}: CodeUri {props['CodeUri']} is not a folder"
    module, _, attribute = props["Handler"].rpartition(".")
    source = code_dir / (module.replace(".", "/") + ".py")
    assert source.is_file(), f"{name}: {source.relative_to(ROOT)} does not exist"
    tree = ast.parse(source.read_text(), filename=str(source))
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                if isinstance(t, ast.Name)}  # fmt: skip
    assert attribute in defined, f"{name}: {attribute} is not defined in {source.name}"


@pytest.mark.parametrize("name", [_params(n) for n in sorted(FUNCTIONS)])
def test_handler_imports_as_lambda_imports_it(name: str) -> None:
    props = FUNCTIONS[name]
    module, _, attribute = props["Handler"].rpartition(".")
    resolver = Resolver(TEMPLATE, samconfig_parameters("default"))
    env = {k: str(v) for k, v in resolver.resolve(props["Environment"]["Variables"]).items()}
    env |= {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_FUNCTION_NAME": resolver.resolve(props["FunctionName"]),
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    probe = (
        "import importlib, importlib.util, json, sys\n"
        f"sys.path[:0] = [{str(ROOT / props['CodeUri'])!r}, {str(LAYER_DIR)!r}]\n"
        "assert importlib.util.find_spec('functions') is None, 'the repo is importable'\n"
        f"handler = getattr(importlib.import_module({module!r}), {attribute!r})\n"
        "print(json.dumps({'callable': callable(handler)}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe],
        cwd=ROOT / props["CodeUri"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{name}: importing {props['Handler']} failed:\n{done.stderr}"
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"callable": True}


def test_the_layer_holds_the_package_and_its_requirements() -> None:
    props = LAYER["Properties"]
    assert LAYER_DIR.is_dir()
    assert (LAYER_DIR / "jobs_core" / "__init__.py").is_file()
    assert (LAYER_DIR / "requirements.txt").is_file()
    assert LAYER["Metadata"]["BuildMethod"] == "python3.13"
    assert LAYER["Metadata"]["BuildArchitecture"] == "arm64"
    assert props["CompatibleRuntimes"] == ["python3.13"]
    assert props["CompatibleArchitectures"] == ["arm64"]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_runs_on_the_layers_runtime_and_uses_it(name: str) -> None:
    props = FUNCTIONS[name]
    assert props["Runtime"] in LAYER["Properties"]["CompatibleRuntimes"]
    assert props["Architectures"] == LAYER["Properties"]["CompatibleArchitectures"]
    assert {"Ref": LAYER_ID} in props["Layers"]


def _requirement_names(path: Path) -> set[str]:
    names = set()
    if path.is_file():
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                names.add(_normalise(re.split(r"[\s\[<>=!~;]", line, maxsplit=1)[0]))
    return names


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class _ImportGraph:
    """What a handler imports at cold start: the module-level imports of its module and,
    transitively, of every module it imports from the task root or the layer. Imports
    inside functions are lazy on purpose (optional drivers) and not followed."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = roots
        self.external: dict[str, set[str]] = {}  # top-level module -> files importing it
        self.seen: set[Path] = set()

    def find(self, dotted: str) -> Path | None:
        parts = dotted.split(".")
        for root in self.roots:
            for candidate in (root.joinpath(*parts).with_suffix(".py"),
                              root.joinpath(*parts, "__init__.py")):  # fmt: skip
                if candidate.is_file():
                    return candidate
        return None

    def visit_module(self, dotted: str, importer: Path) -> None:
        parts = dotted.split(".")
        found = False
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b and a.b.c
            path = self.find(".".join(parts[:i]))
            if path is not None:
                found = True
                self.visit(path, ".".join(parts[:i]))
        if not found:
            self.external.setdefault(parts[0], set()).add(str(importer.relative_to(ROOT)))

    def visit(self, path: Path, dotted: str) -> None:
        if path in self.seen:
            return
        self.seen.add(path)
        package = dotted if path.name == "__init__.py" else dotted.rpartition(".")[0]
        for node in ast.parse(path.read_text(), filename=str(path)).body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.visit_module(alias.name, path)
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    assert node.module
                    base = node.module
                else:
                    parts = package.split(".") if package else []
                    keep = len(parts) - (node.level - 1)
                    if keep < 1:
                        raise AssertionError(
                            f"{path.relative_to(ROOT)}: relative import of a top-level module"
                        )
                    base = ".".join(parts[:keep] + ([node.module] if node.module else []))
                self.visit_module(base, path)
                for alias in node.names:  # `from pkg import submodule`
                    if self.find(f"{base}.{alias.name}"):
                        self.visit_module(f"{base}.{alias.name}", path)


def _missing_distributions(graph: _ImportGraph, requirement_files: list[Path]) -> dict[str, Any]:
    provided = set().union(*(_requirement_names(p) for p in requirement_files))
    dists = importlib.metadata.packages_distributions()
    missing: dict[str, Any] = {}
    for module, files in graph.external.items():
        if module in sys.stdlib_module_names or module == "__future__":
            continue
        if module in RUNTIME_PROVIDED:
            continue
        owners = {_normalise(d) for d in dists.get(module, [module])}
        if not owners & provided:
            missing[module] = sorted(files)
    return missing


@pytest.mark.parametrize("name", [_params(n) for n in sorted(FUNCTIONS)])
def test_what_a_handler_imports_is_installed_by_the_layer_or_its_own_requirements(
    name: str,
) -> None:
    props = FUNCTIONS[name]
    code_dir = ROOT / props["CodeUri"]
    module = props["Handler"].rpartition(".")[0]
    graph = _ImportGraph([code_dir, code_dir.parent, LAYER_DIR])
    entry = graph.find(module)
    assert entry is not None
    graph.visit(entry, module)
    # Modules a package imports lazily (inside functions) ship with it all the same:
    # every module of a package at the task root counts as imported at cold start.
    for init in sorted(code_dir.glob("*/__init__.py")):
        for source in sorted(init.parent.rglob("*.py")):
            dotted = ".".join(source.relative_to(code_dir).with_suffix("").parts)
            graph.visit(source, dotted.removesuffix(".__init__"))
    assert any(p.is_relative_to(LAYER_DIR) for p in graph.seen), "the layer is never imported"
    requirements = [LAYER_DIR / "requirements.txt", code_dir / "requirements.txt"]
    assert _missing_distributions(graph, requirements) == {}
