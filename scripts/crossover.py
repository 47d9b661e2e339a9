"""GFLOP/s of the two matmul paths (BLAS, hand-written loops) on the dense layer's three
products, across sizes: where the loops stop beating BLAS (the limits in kernels._crossover).

Each product is timed inside one compiled loop of repeats, as training calls it
(no Python per call): n outputs x n inputs x batch b, float32,
    forward  Y (n, b) = W (n, n) · X (n, b)
    weights  dW (n, n) = dZ (n, b) · Xᵀ
    inputs   dX (n, b) = Wᵀ · dZ (n, b)
"""
import argparse
import sys
import json
import time

import numpy as np
from numba import njit

from fastnn.atomic_file import atomic_write
from fastnn.kernels._crossover import DOT_FORM_LIMIT, OUTER_FORM_LIMIT, OVERRIDE
from fastnn.kernels._matmul import matmul_blas, matmul_loops

PATHS = {"blas": matmul_blas, "loops": matmul_loops}
PRODUCTS = ("forward", "weights", "inputs")
SIZES = (4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256)
FORMS = {"dot": ("forward",), "outer": ("weights", "inputs")}
#: the loops count as level with BLAS while their time is within this factor of its time
LEVEL = 1.05


def _repeat(path):
    @njit
    def repeat(product, W, X, D, out_w, out_x, count):
        for _ in range(count):
            if product == 0:
                path(W, X, out_x)
            elif product == 1:
                path(D, X.T, out_w)
            else:
                path(W.T, D, out_x)
    return repeat


_REPEATS = {}


def operands(n, batch, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, n), dtype=np.float32)
    X = np.asfortranarray(rng.standard_normal((n, batch), dtype=np.float32))
    D = np.asfortranarray(rng.standard_normal((n, batch), dtype=np.float32))
    return W, X, D, np.empty_like(W), np.asfortranarray(np.empty_like(X))


def gflops(path, product, n, batch, seconds=0.02):
    """Best-of-5 GFLOP/s of ``product`` through ``path`` at n x n x batch."""
    if path not in _REPEATS:
        _REPEATS[path] = _repeat(PATHS[path])
    repeat, args, code = _REPEATS[path], operands(n, batch), PRODUCTS.index(product)
    repeat(code, *args, 1)
    count = max(1, int(seconds / max(2.0 * n * n * batch / 5e10, 1e-7)))
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        repeat(code, *args, count)
        best = min(best, (time.perf_counter() - start) / count)
    return 2.0 * n * n * batch / best / 1e9


def measure(sizes=SIZES, batches=(None,)):
    """rows of (product, n, batch, blas GF/s, loops GF/s); batch None means batch = n."""
    rows = []
    for product in PRODUCTS:
        for n in sizes:
            for batch in batches:
                b = n if batch is None else batch
                rows.append((product, n, b, gflops("blas", product, n, b),
                             gflops("loops", product, n, b)))
    return rows


def crossovers(rows):
    """{form: m·k·n limit}: for each loop form, the largest m·k·n up to which the loops'
    time for the form's products stays within LEVEL x BLAS's at every measured size."""
    limits = {}
    for form, products in FORMS.items():
        by_size = {}
        for product, n, b, blas, loops in rows:
            if product in products:
                flops = 2.0 * n * n * b
                t = by_size.setdefault(n * n * b, [0.0, 0.0])
                t[0], t[1] = t[0] + flops / blas, t[1] + flops / loops
        limits[form] = 0
        for size in sorted(by_size):
            blas_time, loops_time = by_size[size]
            if loops_time > LEVEL * blas_time:
                break
            limits[form] = size
    return limits


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--batch", type=int, default=None, help="batch (default: = n)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = measure(sizes, (args.batch,))
    print(f"{'product':<9}{'n':>5}{'batch':>6}{'m·k·n':>10}{'BLAS GF/s':>11}{'loops GF/s':>11}"
          f"{'loops/BLAS':>11}")
    for product, n, b, blas, loops in rows:
        print(f"{product:<9}{n:>5}{b:>6}{n * n * b:>10}{blas:>11.1f}{loops:>11.1f}"
              f"{loops / blas:>11.2f}")
    limits = crossovers(rows)
    print(f"matmul uses the loops up to m·k·n = {DOT_FORM_LIMIT} (dot form: forward) and "
          f"{OUTER_FORM_LIMIT} (outer form: weights, inputs)")
    print(f"measured here: {OVERRIDE}={limits['dot']},{limits['outer']}")
    if args.json:
        saved = {"rows": [dict(zip(("product", "n", "batch", "blas", "loops"), r))
                          for r in rows],
                 "measured": limits, "used": {"dot": DOT_FORM_LIMIT, "outer": OUTER_FORM_LIMIT}}
        with atomic_write(args.json, what="the results") as f:
            f.write(json.dumps(saved, indent=1).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
