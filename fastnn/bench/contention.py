"""``scripts/contention.py``: fastnn where the user runs it — beside other work, and
inside joblib's workers. Every figure comes from fresh processes (warm kernel cache),
the cases alternating round by round; medians over rounds.

    threads     a fit of a reference workload (5 epochs) with the default pool and with
                NUMBA_NUM_THREADS=1, on an idle machine and beside one busy neighbour
                process (a Python spin loop): seconds, and default / one thread
    search      scikit-learn's GridSearchCV of fastnn.MLPRegressor on the bike data
                (hidden (64, 64), batch 64, 30 epochs, alpha × learning rate 2 × 2, cv=3)
                with n_jobs=1 and n_jobs=2 (joblib's default processes, and its threads:
                ``joblib.parallel_config(backend="threading")``): seconds, and the
                speed-ups — the first search of a process (joblib starts its worker
                processes: each imports scikit-learn and fastnn and loads the kernels)
                and a second one (the workers reused)

Goals on 2 cores: beside a busy neighbour the default pool within 1.2x of one thread;
idle, no slower than one thread; n_jobs=2 at least 1.6x faster than n_jobs=1.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

NEIGHBOUR = "while True: pass"


def fit_seconds(name, epochs):
    """In this process: a fit of workload ``name`` for ``epochs`` epochs after a one-epoch
    fit that loads its kernels (the thread choices it learnt forgotten)."""
    from fastnn.bench.workloads import WORKLOADS, build_model, data, fit_options
    from fastnn.threads import ThreadChooser

    w = WORKLOADS[name]
    X, y = data(w)
    model = build_model(w)
    model.fit(X, y, epochs=1, batch_size=w.batch, verbose=0, **fit_options(w))
    ThreadChooser._last.clear()
    began = time.perf_counter()
    model.fit(X, y, epochs=epochs, batch_size=w.batch, verbose=0, **fit_options(w))
    return time.perf_counter() - began


#: the searches compared: label -> (n_jobs, joblib backend)
SEARCHES = {"n_jobs=1": (1, "loky"), "n_jobs=2": (2, "loky"),
            "n_jobs=2, threads": (2, "threading")}


def search_seconds(n_jobs, backend):
    """In this process: [first, second] GridSearchCV of fastnn.MLPRegressor on bike with
    ``n_jobs`` on joblib's ``backend``, seconds."""
    import warnings

    import joblib
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV

    import fastnn
    from fastnn.bench.sklearn_swap import load

    warnings.simplefilter("ignore", ConvergenceWarning)   # 30 epochs: by design
    X, y = load("bike")
    times = []
    for _ in range(2):
        search = GridSearchCV(
            fastnn.MLPRegressor(hidden_layer_sizes=(64, 64), batch_size=64, max_iter=30,
                                tol=0, random_state=0, dtype="float32"),
            {"alpha": [1e-4, 1e-3], "learning_rate_init": [1e-3, 3e-3]}, cv=3, n_jobs=n_jobs)
        began = time.perf_counter()
        with joblib.parallel_config(backend=backend):
            search.fit(X, y)
        times.append(time.perf_counter() - began)
    return times


def _child(args):
    what = args[0]
    if what == "fit":
        return fit_seconds(args[1], int(args[2]))
    return search_seconds(int(args[1]), args[2])


def fresh(args, env=None, busy=False):
    """Seconds measured by a fresh process running ``_child(args)`` (beside a spinning
    neighbour process when ``busy``)."""
    neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR]) if busy else None
    try:
        if busy:
            time.sleep(0.3)   # the neighbour is running
        out = subprocess.run([sys.executable, "-m", "fastnn.bench.contention", "--child",
                              *map(str, args)], env={**os.environ, **(env or {})},
                             capture_output=True, text=True, check=True)
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    return json.loads(out.stdout.strip().splitlines()[-1])


POOLS = {"default pool": {}, "one thread": {"NUMBA_NUM_THREADS": "1"}}


def measure_threads(workloads, rounds, epochs, log=print):
    """{(workload, situation, pool): [seconds per round]}."""
    for name in workloads:   # compile (or load) every kernel first
        for env in POOLS.values():
            fresh(["fit", name, 1], env)
    runs = {}
    for r in range(rounds):
        for name in workloads:
            for busy in (False, True):
                for pool, env in POOLS.items():
                    key = (name, "busy neighbour" if busy else "idle", pool)
                    runs.setdefault(key, []).append(fresh(["fit", name, epochs], env, busy))
        log(f"round {r + 1}/{rounds} done")
    return runs


def measure_search(rounds, log=print):
    """{search label: [[first, second] seconds per round]}."""
    fresh(["search", 1, "loky"])   # compile (or load) first
    runs = {label: [] for label in SEARCHES}
    for r in range(rounds):
        for label, (n_jobs, backend) in SEARCHES.items():
            runs[label].append(fresh(["search", n_jobs, backend]))
        log(f"search round {r + 1}/{rounds} done")
    return runs


def threads_table(runs, workloads, epochs):
    lines = [f"{'fit of ' + str(epochs) + ' epochs, s':<34}{'default pool':>14}"
             f"{'one thread':>12}{'default / one':>15}"]
    for name in workloads:
        for situation in ("idle", "busy neighbour"):
            default = statistics.median(runs[(name, situation, "default pool")])
            one = statistics.median(runs[(name, situation, "one thread")])
            lines.append(f"{name + ', ' + situation:<34}{default:>14.3f}{one:>12.3f}"
                         f"{default / one:>14.2f}x")
    return "\n".join(lines)


def search_table(runs):
    lines = [f"{'GridSearchCV on bike (12 fits + refit), s':<40}"
             + "".join(f"{label:>19}" for label in SEARCHES)]
    for i, situation in enumerate(("first search of a process",
                                   "second search (workers reused)")):
        seconds = {label: statistics.median(r[i] for r in runs[label]) for label in SEARCHES}
        one = seconds["n_jobs=1"]
        lines.append(f"{situation:<40}" + "".join(
            f"{s:>10.2f} ({one / s:4.2f}x)" for s in seconds.values()))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="scripts/contention.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default="bike,mnist",
                        help="reference workloads, comma-separated (default: bike,mnist)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-search", action="store_true", help="skip the GridSearchCV figure")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child)))
        return 0
    from fastnn.sysinfo import cpu

    name, extensions = cpu()
    workloads = args.workloads.split(",")
    widest = next((x for x in ("avx512f", "avx2", "avx", "neon") if x in extensions), "")
    print(f"{name} ({widest or 'no AVX'}), "
          f"{os.cpu_count()} cores; medians of {args.rounds} fresh processes each")
    runs = measure_threads(workloads, args.rounds, args.epochs, log=lambda s: None)
    print(threads_table(runs, workloads, args.epochs))
    if not args.no_search:
        print(search_table(measure_search(args.rounds, log=lambda s: None)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
