"""Where compile time goes: per function and per compiler pass, from an empty Numba cache.

    python scripts/compile_times.py bike          # what a cold ``fastnn train bike`` compiles
    python scripts/compile_times.py kernel-set    # the reference models (fastnn.bench.kernel_set)
    python scripts/compile_times.py every-kind    # models using every kernel the model layer has
    python scripts/compile_times.py bike --warm   # the same run against the existing cache
    python scripts/compile_times.py changes       # what each kind of change to a model costs
    python scripts/compile_times.py first-fits    # first fits of common models, empty cache

A function's *self* time excludes the callees compiled while it was being typed (Numba
compiles a callee the first time a caller's type inference meets it), so the self times
add up to the wall time spent compiling. The pass table splits the same time into Numba's
pipeline stages (type inference, lowering to LLVM IR, LLVM's optimisation and code
generation inside ``NativeLowering``...), again excluding nested compiles.
"""
import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict


def _workload(name):
    if name == "bike":
        from fastnn.cli import main
        return lambda: main(["train", "bike", "--quiet", "--epochs", "2"])

    from fastnn.bench.kernel_set import compile_all
    return lambda: compile_all(name)


class CompileProfile:
    """A numba event listener keeping inclusive and self time per (function, signature)
    and self time per compiler pass."""

    def __init__(self):
        self.stack = []            # [name, start, nested seconds]
        self.passes = []           # same, for numba:run_pass
        self.self_time = defaultdict(float)
        self.pass_time = defaultdict(float)
        self.count = defaultdict(int)

    def on_start_compile(self, event):
        d = event.data
        fn = d["dispatcher"].py_func
        name = f"{fn.__module__.replace('fastnn.kernels.', '')}.{fn.__qualname__}"
        sig = ",".join(str(a) for a in d["args"])
        self.stack.append([f"{name}", sig, time.perf_counter(), 0.0])

    def on_end_compile(self, event):
        name, sig, start, nested = self.stack.pop()
        total = time.perf_counter() - start
        self.self_time[name] += total - nested
        self.count[name] += 1
        if self.stack:
            self.stack[-1][3] += total
        if self.passes:   # a nested compile inside a pass of the caller
            self.passes[-1][2] += total

    def on_start_pass(self, event):
        self.passes.append([event.data["name"], time.perf_counter(), 0.0])

    def on_end_pass(self, event):
        name, start, nested = self.passes.pop()
        total = time.perf_counter() - start
        self.pass_time[name.split(" [")[0]] += total - nested
        if self.passes:
            self.passes[-1][2] += total


def changes():
    """Seconds of fit + predict of the base model and each change of it (fastnn.bench.
    kernel_set.CHANGE), each in a fresh process whose cache the base model filled."""
    import shutil

    from fastnn.bench.kernel_set import CHANGE, CHANGES, seconds_in_fresh_process

    base, unchanged = tempfile.mkdtemp(prefix="fastnn-changes-"), CHANGE.format(change="")
    print(f"{'change':<22}{'seconds':>8}")
    for label in ("none, empty cache", "none, warm cache"):
        print(f"{label:<22}{seconds_in_fresh_process(unchanged, base):8.1f}")
    for change in CHANGES:
        cache = tempfile.mkdtemp(prefix="fastnn-change-")
        shutil.copytree(base, cache, dirs_exist_ok=True)
        seconds = seconds_in_fresh_process(CHANGE.format(change=change), cache)
        print(f"{change:<22}{seconds:8.1f}", flush=True)


def first_fits():
    """Seconds of the first fit of each common model, empty cache, fresh process."""
    from fastnn.bench.kernel_set import FIRST_FITS, seconds_in_fresh_process

    print(f"{'first fit, empty cache':<34}{'seconds':>8}")
    for name, code in FIRST_FITS.items():
        seconds = seconds_in_fresh_process(code, tempfile.mkdtemp(prefix="fastnn-first-"))
        print(f"{name:<34}{seconds:8.1f}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=("bike", "kernel-set", "every-kind", "changes",
                                             "first-fits"))
    parser.add_argument("--warm", action="store_true", help="keep the existing Numba cache")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    if args.workload in ("changes", "first-fits"):
        return changes() if args.workload == "changes" else first_fits()
    if not args.warm:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="fastnn-cold-cache-")

    started = time.perf_counter()
    from numba.core import event
    profile = CompileProfile()

    class Compiles(event.Listener):
        on_start = profile.on_start_compile
        on_end = profile.on_end_compile

    class Passes(event.Listener):
        on_start = profile.on_start_pass
        on_end = profile.on_end_pass

    import fastnn  # noqa: F401  (import time counted in the wall figure)
    imported = time.perf_counter()
    run = _workload(args.workload)
    event.register("numba:compile", Compiles())
    event.register("numba:run_pass", Passes())
    saved, sys.stdout = sys.stdout, open(os.devnull, "w")
    try:
        run()
    finally:
        sys.stdout = saved
    wall = time.perf_counter() - started
    compiling = sum(profile.self_time.values())
    print(f"{args.workload} ({'warm' if args.warm else 'cold'} cache): {wall:.1f} s wall, "
          f"{imported - started:.1f} s importing, {compiling:.1f} s compiling "
          f"{sum(profile.count.values())} signatures")
    print(f"\n{'self s':>7} {'n':>3}  function")
    for name, t in sorted(profile.self_time.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"{t:7.2f} {profile.count[name]:3d}  {name}")
    print(f"\n{'self s':>7}  compiler pass")
    for name, t in sorted(profile.pass_time.items(), key=lambda kv: -kv[1])[:12]:
        print(f"{t:7.2f}  {name}")


if __name__ == "__main__":
    main()
