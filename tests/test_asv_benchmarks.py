"""The asv suite's code runs: every benchmark of asv_benchmarks/benchmarks, in this
process, for every value of each of its parameters (``combinations``). asv's own run
(docs/performance.md, "Benchmarks") times them; CI checks the suite's discovery with ``asv check``."""
import importlib
import inspect
import math
import pathlib
import subprocess
import sys

import pytest

SUITE = pathlib.Path(__file__).resolve().parent.parent / "asv_benchmarks"
KINDS = ("time_", "track_", "peakmem_", "mem_", "timeraw_")
sys.path.insert(0, str(SUITE))
try:
    MODULES = {p.stem: importlib.import_module(f"benchmarks.{p.stem}")
               for p in sorted((SUITE / "benchmarks").glob("bench_*.py"))}
finally:
    sys.path.remove(str(SUITE))


def benchmarks():
    """(module name, class or None, names of its benchmark functions)."""
    for name, module in MODULES.items():
        functions = [f for f, fn in inspect.getmembers(module, inspect.isfunction)
                     if f.startswith(KINDS) and fn.__module__ == module.__name__]
        if functions:
            yield name, None, functions
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__:
                methods = [m for m in dir(cls) if m.startswith(KINDS)]
                if methods:
                    yield name, cls_name, methods


def combinations(cls):
    """Each value of the first parameter with each value of the others: the others in
    step, cycling (so every value of every parameter runs, with both paths of a
    serial/parallel pair)."""
    params = getattr(cls, "params", None)
    if not params:
        return [()]
    grid = params if len(getattr(cls, "param_names", [])) > 1 else [params]
    rest = grid[1:]
    steps = max((len(p) for p in rest), default=1)
    return [(first, *(p[i % len(p)] for p in rest)) for first in grid[0] for i in range(steps)]


CASES = list(benchmarks())


def test_the_suite_has_every_benchmark_module():
    assert {"bench_kernels", "bench_workloads", "bench_startup", "bench_persistence",
            "bench_sklearn"} <= set(MODULES)
    assert len(CASES) >= 12


@pytest.mark.parametrize("module,cls_name,methods", CASES,
                         ids=[f"{m}.{c or 'functions'}" for m, c, _ in CASES])
def test_every_benchmark_runs(module, cls_name, methods):
    if cls_name is None:          # timeraw_: asv runs the script (after its setup) in a fresh
        for name in methods:      # process; a cold one (its own empty cache) only compiles here
            result = getattr(MODULES[module], name)()
            for code in (result if isinstance(result, tuple) else (result,)):
                compile(code, name, "exec")
            if isinstance(result, str):
                subprocess.run([sys.executable, "-c", result], check=True, timeout=600)
        return
    cls = getattr(MODULES[module], cls_name)
    for args in combinations(cls):
        bench = cls()
        if hasattr(bench, "setup"):
            bench.setup(*args)
        try:
            for name in methods:
                result = getattr(bench, name)(*args)
                if name.startswith("track_"):
                    assert isinstance(result, (int, float)) and math.isfinite(result) and \
                        result > 0, (name, args, result)
        finally:
            if hasattr(bench, "teardown"):
                bench.teardown(*args)
