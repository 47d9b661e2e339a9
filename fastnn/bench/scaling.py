"""Threads, precision and start-up, each run in fresh processes, rounds alternating:

    threads   ms/step with fastnn.set_num_threads(1) and (2) on bike, mnist and wide
    float64   ms/step in float64 against float32 on mnist and wide
    start-up  with a warm kernel cache: first epoch's seconds minus the second's

Every figure is the median over rounds of each process's best epoch (ms per step).
"""
import argparse
import json
import statistics
import subprocess
import sys

from fastnn.bench.contenders import fit_epoch_times
from fastnn.bench.workloads import WORKLOADS, steps


def child(name, threads, dtype, epochs):
    """In this process: train ``epochs`` epochs; returns each epoch's seconds."""
    import fastnn

    if threads:
        fastnn.set_num_threads(threads)
    return fit_epoch_times(WORKLOADS[name], epochs, dtype)


def fresh(name, threads=0, dtype="float32", epochs=3):
    out = subprocess.run([sys.executable, "-m", "fastnn.bench.scaling", "--child", name,
                          str(threads), dtype, str(epochs)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(rounds):
    """{figure: list over rounds}."""
    runs = {}

    def add(key, value):
        runs.setdefault(key, []).append(value)

    for _ in range(rounds):
        for name in ("bike", "mnist", "wide"):
            for threads in (1, 2):
                add(f"{name} {threads} thread(s) ms/step",
                    min(fresh(name, threads)[1:]) / steps(WORKLOADS[name]) * 1e3)
        for name in ("mnist", "wide"):
            for dtype in ("float32", "float64"):
                add(f"{name} {dtype} ms/step",
                    min(fresh(name, dtype=dtype)[1:]) / steps(WORKLOADS[name]) * 1e3)
        for name in ("bike", "mnist"):
            first, second = fresh(name, epochs=2)
            add(f"{name} first - second epoch s", first - second)
    return runs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=4, metavar=("WORKLOAD", "THREADS", "DTYPE", "EPOCHS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        name, threads, dtype, epochs = args.child
        print(json.dumps(child(name, int(threads), dtype, int(epochs))))
        return 0
    runs = measure(args.rounds)
    med = {key: statistics.median(values) for key, values in runs.items()}
    for key, values in runs.items():
        print(f"{key:<32}{med[key]:10.4f}   rounds {' '.join(f'{v:.4f}' for v in values)}")
    for name in ("bike", "mnist", "wide"):
        speedup = med[f"{name} 1 thread(s) ms/step"] / med[f"{name} 2 thread(s) ms/step"]
        print(f"2 threads / 1 thread speed-up, {name}: {speedup:.2f}x")
    for name in ("mnist", "wide"):
        ratio = med[f"{name} float64 ms/step"] / med[f"{name} float32 ms/step"]
        print(f"float64 / float32 time, {name}: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
