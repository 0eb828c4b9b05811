"""Cold import of the Lambda handlers against their dependencies (issue 12): a table, no test.

    python -m bench.cold_import_bench              # 9 fresh interpreters per figure
    python -m bench.cold_import_bench --runs 5

Each function is imported the way Lambda imports it: a fresh interpreter (``-I``: no
current directory, no user site) whose path starts with the function's folder (the task
root) and the layer's folder (``/opt/python`` after ``sam build``), then ``import app``.
A first interpreter records which third-party modules that import loads, in load order
(the standard library and our own packages left out); then, alternating, fresh
interpreters time ``import app`` and the import of exactly those third-party modules.
The ratio of the medians is what our own code adds at cold start; the target is 1.2x.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "jobs_core"
FIRST_PARTY = ("app", "jobs_core", "operator_api", "queue_monitor", "escrow")
FUNCTIONS = {
    "processor": ROOT / "functions" / "job_processor",
    "monitor": ROOT / "functions" / "monitor",
    "escrow API": ROOT / "functions" / "escrow_api",
}
TARGETS = {"processor": 1.2, "monitor": 1.2}  # the escrow API's row is for information

# Run in the fresh interpreter: argv = task root, layer, "app" | a JSON file of modules.
PROBE = """
import importlib, json, sys, time
root, layer, what = sys.argv[1:4]
sys.path[:0] = [root, layer]
before = set(sys.modules)
t0 = time.perf_counter()
if what == "app":
    import app
else:
    for name in json.load(open(what)):
        importlib.import_module(name)
seconds = time.perf_counter() - t0
skip = set(sys.stdlib_module_names) | set(json.loads(sys.argv[4]))
loaded = [n for n in sys.modules if n not in before and not n.startswith("_")
          and n.split(".")[0] not in skip]
print(json.dumps({"seconds": seconds, "third_party": loaded}))
"""


def _probe(root: Path, what: str) -> dict[str, object]:
    argv = [sys.executable, "-I", "-c", PROBE, str(root), str(LAYER), what]
    argv.append(json.dumps(FIRST_PARTY))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    result: dict[str, object] = json.loads(proc.stdout.splitlines()[-1])
    return result


def measure(root: Path, runs: int) -> tuple[float, float, int]:
    """(median s of ``import app``, median s of its third-party modules, their count)."""
    modules = _probe(root, "app")["third_party"]
    assert isinstance(modules, list)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(modules, f)
    app_s: list[float] = []
    deps_s: list[float] = []
    for _ in range(runs):  # alternated, so machine drift hits both alike
        app_s.append(float(_probe(root, "app")["seconds"]))  # type: ignore[arg-type]
        deps_s.append(float(_probe(root, f.name)["seconds"]))  # type: ignore[arg-type]
    Path(f.name).unlink()
    return statistics.median(app_s), statistics.median(deps_s), len(modules)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per figure")
    args = parser.parse_args(argv)
    print(f"\n== Cold import as Lambda does it (median of {args.runs} fresh interpreters)")
    head = f"{'function':<12} {'import app':>11} {'its deps':>9} {'modules':>8} {'ratio':>6}  goal"
    print(head + "\n" + "-" * len(head))
    for name, root in FUNCTIONS.items():
        app_s, deps_s, count = measure(root, args.runs)
        ratio = app_s / deps_s if deps_s else float("inf")
        target = TARGETS.get(name)
        goal = "—" if target is None else f"<= {target}x {'yes' if ratio <= target else 'NO'}"
        print(
            f"{name:<12} {app_s * 1000:>9.0f}ms {deps_s * 1000:>7.0f}ms {count:>8} "
            f"{ratio:>5.2f}x  {goal}"
        )
    print("its deps: the third-party modules that `import app` loads, imported alone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
