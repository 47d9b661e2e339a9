"""Peak memory of ``fit`` above the data it is given (the input checks scan without
temporaries). Builds a float32 C-ordered X of ``--mb`` megabytes (784 features,
mnist's width) and integer labels, compiles on a slice, then samples the process's
resident set every millisecond during ``fit(X, y, epochs=1)`` of a small network and
prints the peak above the resident set before the call, against X's size.

    python scripts/fit_memory.py --mb 600
"""
import argparse
import os
import threading
import time

import numpy as np

import fastnn

PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def peak_during(call, interval=0.001):
    """(peak resident bytes while ``call()`` runs, resident bytes before it)."""
    before = resident_bytes()
    peak, done = [before], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], resident_bytes())
            time.sleep(interval)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        call()
    finally:
        done.set()
        sampler.join()
    return max(peak[0], resident_bytes()), before


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=600.0)
    parser.add_argument("--features", type=int, default=784)
    args = parser.parse_args(argv)
    n = int(args.mb * 2 ** 20 / 4 / args.features)
    rng = np.random.default_rng(0)
    X = np.empty((n, args.features), np.float32)
    for lo in range(0, n, 65536):                 # filled in chunks: no float64 copy
        X[lo:lo + 65536] = rng.random((min(65536, n - lo), args.features), np.float32)
    y = rng.integers(0, 10, n)
    model = fastnn.Sequential([fastnn.Dense(args.features, 16, "relu"),
                               fastnn.Dense(16, 10, "softmax")],
                              loss="categorical_crossentropy", seed=0)
    model.fit(X[:2000], y[:2000], epochs=1, batch_size=256, verbose=0)   # compile first
    model_bytes = model.params.nbytes * 4                # params, grads, Adam's two rows
    peak, before = peak_during(lambda: model.fit(X, y, epochs=1, batch_size=256, verbose=0))
    above = peak - before
    print(f"X {X.nbytes / 2**20:.1f} MB ({n} x {args.features} float32), labels "
          f"{y.nbytes / 2**20:.1f} MB; fit's peak above the resident set before it: "
          f"{above / 2**20:.1f} MB = {100 * above / X.nbytes:.2f}% of X "
          f"(model and optimizer state {model_bytes / 2**20:.2f} MB)")
    return 0


if __name__ == "__main__":
    main()
