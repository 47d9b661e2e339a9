"""Where a workload's step goes: each part of fastnn's training step timed alone, in
its own compiled loop over an epoch's minibatches (µs per step, best of ``repeats``).

    epoch          train_batches over a whole epoch as fit runs it (shuffled order, the plan
                   fit picks: a split plan's minibatches split across threads), for the total
    products       the step's 8 matrix products as the model's plan runs them (matmul:
                   loops or BLAS; a parallel plan: matmul_parallel across threads)
    floor          the same products through BLAS alone (the GEMM floor)
    gather         copying the shuffled minibatch into the workspace
    epilogues      bias + activation after each forward product (BatchNorm's training
                   pass instead, for a BatchNorm block)
    dropout        the dropout masks of the forward pass (regularized workloads)
    loss           the (fused) loss and its gradient at the output
    delta + db     dZ = dA ⊙ f'(Z) (through the dropout) and db = row-sum(dZ), every
                   layer (BatchNorm's backward pass instead, for a BatchNorm block)
    count          correct predictions
    clip           the global gradient norm (regularized workloads)
    update         the optimizer (Adam; AdamW for regularized workloads), unclipped

A part timed alone runs with warmer caches than inside the step, so the parts add up
to about the epoch, not exactly. Everything runs as ``fit`` runs it: the plan's
kernels (parallel ones for a parallel plan), BLAS held at one thread for a parallel
plan (fastnn.threads.one_pool) — except that the parts of a split plan's step (bike's)
are timed as the serial plan runs them on the whole minibatch. ``--threads 1,2`` times every part at each thread count
and prints each part's parallel fraction p (Amdahl: t(N) = t(1)·(1 − p + p/N), from
t(1) and t(2)) and the step time the parts predict at 16 and 64 threads.
``--remedies`` instead times whole steps of a workload with each remedy of its
regularized form alone (BatchNorm, Dropout, AdamW, clip_norm), none and all: what each
adds per step.
"""
import argparse
import sys
import time

import numpy as np
from numba import njit

import fastnn
from fastnn.bench.contenders import product_operands, step_products, timed
from fastnn.bench.workloads import (CLIP_NORM, DROPOUT, LR, WEIGHT_DECAY, WORKLOADS, build_model,
                                    data, fit_options, steps)
from fastnn.optimizers import check_clip
from fastnn.kernels import _dropout as dropout, _network as network, _optimizers as optimizers
from fastnn.kernels._layout import planned_for
from fastnn.kernels._matmul import PARTS, matmul, matmul_blas, matmul_parallel
from fastnn.threads import one_pool
from fastnn.kernels._training import train_batches


@njit
def _gather(n, X, T, perm, nb, ws, net):
    for i in range(n):
        network.gather(net.plan, X, T, perm, i * nb, network.output_view(ws, net, nb, 0, nb),
                       network.target_view(ws, net, nb, nb))


@njit
def _epilogues(n, net, buf, nb):
    L = net.sizes.shape[0] - 1
    for _ in range(n):
        for l in range(L):
            network.block_epilogue(net, buf, l, network.output_view(buf.ws, net, nb, l + 1, nb),
                                   nb, network.TRAIN_UPDATE,
                                   network.block_activation(net, l, net.fused))


@njit
def _dropouts(n, net, ws, nb):
    L = net.sizes.shape[0] - 1
    for step in range(n):
        for l in range(L):
            if net.drop[l] > 0.0:
                dropout.dropout_forward(network.output_view(ws, net, nb, l, nb), net.drop[l],
                                        network.dropout_stream(net, step, l))


@njit
def _loss(n, net, ws, nb):
    L = net.sizes.shape[0] - 1
    for _ in range(n):
        network.output_loss(net.plan, network.output_view(ws, net, nb, L, nb),
                            network.target_view(ws, net, nb, nb),
                            network.delta_view(ws, net, nb, L, nb), None)


@njit
def _deltas(n, net, buf, nb):
    L = net.sizes.shape[0] - 1
    for step in range(n):
        for l in range(L - 1, -1, -1):
            network.block_delta(net, buf, l, nb, nb, step)


@njit
def _clip(n, params, grads, seg, max_norm, clip_value):
    total = 0.0
    for _ in range(n):
        total += optimizers.clip_factor(params, grads, seg, max_norm, clip_value)
    return total


@njit
def _count(n, net, ws, nb):
    L = net.sizes.shape[0] - 1
    correct = 0
    for _ in range(n):
        correct += network.correct_predictions(net.plan, network.output_view(ws, net, nb, L, nb),
                                               network.target_view(ws, net, nb, nb))
    return correct


@njit
def _update(n, upd, seg, params, grads, state):
    for i in range(n):
        optimizers.optimizer_update(upd, seg, params, grads, state, 1 + i)


def _pool_product():
    """matmul_parallel in the blocks of this process's pool (out = a · b)."""
    parts = PARTS

    @njit
    def product(a, b, out):
        matmul_parallel(a, b, out, parts)
    return product


def breakdown(name, repeats=5):
    """{part: µs per step} for workload ``name``; a regularized workload adds "dropout"
    and "clip", and its "epilogues" and "delta + db" hold BatchNorm's passes."""
    w = WORKLOADS[name]
    X, y = data(w)
    model, options = build_model(w), fit_options(w)
    opt = options.pop("optimizer")
    clip = check_clip(options.get("clip_norm"), options.get("clip_value"))
    model.fit(X, y, epochs=1, batch_size=w.batch, optimizer=opt, verbose=0, **options)
    X, T = model._xy(X, y)
    net, planned = model.net, planned_for(model.net, w.batch, training=True)
    buf = model._buffers(w.batch, opt.bind(model), planned)
    perm = np.random.default_rng(1).permutation(X.shape[0]).astype(np.int64)
    n, nb = steps(w), w.batch
    operands = product_operands(w)
    parallel = bool(net.plan.parallel)
    products = step_products(_pool_product() if parallel else matmul)
    floor = step_products(matmul_blas)
    rule, unclipped = opt.update_rule(clip, parallel), opt.update_rule(None, parallel)
    parts = {
        "epoch": lambda: train_batches(X, T, perm, 0, X.shape[0], nb, planned, rule, buf, 1,
                                       0.0, 0),
        "products": lambda: products(*operands, n),
        "floor": lambda: floor(*operands, n),
        "gather": lambda: _gather(n, X, T, perm, nb, buf.ws, net),
        "epilogues": lambda: _epilogues(n, net, buf, nb),
        "loss": lambda: _loss(n, net, buf.ws, nb),
        "delta + db": lambda: _deltas(n, net, buf, nb),
        "count": lambda: _count(n, net, buf.ws, nb),
        "update": lambda: _update(n, unclipped, net.seg, buf.params, buf.grads, buf.state),
    }
    if w.regularized:
        parts["dropout"] = lambda: _dropouts(n, net, buf.ws, nb)
        parts["clip"] = lambda: _clip(n, buf.params, buf.grads, net.seg, *clip)
    times = {}
    for part, run in parts.items():
        if part == "floor":      # the floor's products run on BLAS's own threads
            times[part] = min(timed(run, repeats)) / n * 1e6
            continue
        with one_pool(planned if part == "epoch" else net, nb):
            times[part] = min(timed(run, repeats)) / n * 1e6
    return times


def amdahl(one, two, threads=(16, 64)):
    """{part: (p, {N: µs at N threads})} from µs per step at 1 and 2 threads: p, the
    parallel fraction, from t(2) = t(1)(1 − p/2), clamped to [0, 1]."""
    model = {}
    for part, t1 in one.items():
        p = min(1.0, max(0.0, 2.0 * (1.0 - two[part] / t1))) if t1 > 0 else 0.0
        model[part] = (p, {N: t1 * (1.0 - p + p / N) for N in threads})
    return model


#: the remedies of a regularized workload, one at a time and all together:
#: (BatchNorm, Dropout, AdamW instead of Adam, clip_norm)
REMEDIES = {"none": (False, False, False, False), "batchnorm": (True, False, False, False),
            "dropout": (False, True, False, False), "adamw": (False, False, True, False),
            "clip_norm": (False, False, False, True), "all": (True, True, True, True)}


def remedies(name, rounds=3, epochs=2):
    """{variant: ms per step} of workload ``name`` with each remedy of its regularized
    form alone (and none, and all), fit epoch to epoch in this process, the variants
    alternating over ``rounds``; the median over rounds of each variant's best epoch."""
    w = WORKLOADS[name]._replace(regularized=False)
    X, y = data(w)
    results = {variant: [] for variant in REMEDIES}
    for r in range(rounds):
        for variant in (list(REMEDIES) if r % 2 == 0 else list(REMEDIES)[::-1]):
            norm, drop, adamw, clip = REMEDIES[variant]
            model = build_model(w, batchnorm=norm, dropout=DROPOUT if drop else 0.0)
            opt = (fastnn.AdamW(lr=LR, weight_decay=WEIGHT_DECAY) if adamw
                   else fastnn.Adam(lr=LR))
            stamps = []
            model.fit(X, y, epochs=epochs + 1, batch_size=w.batch, optimizer=opt, verbose=0,
                      clip_norm=CLIP_NORM if clip else None,
                      callbacks=[lambda epoch, logs: stamps.append(time.perf_counter())])
            results[variant].append(min(np.diff(stamps)) / steps(w) * 1e3)
    return {variant: float(np.median(times)) for variant, times in results.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=None,
                        help="default bike,mnist,mnist-regularized (mnist with --remedies)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--remedies", action="store_true",
                        help="instead: ms/step with each remedy of mnist-regularized alone")
    parser.add_argument("--threads", default=None,
                        help="'1,2': every part at 1 and 2 threads, and the Amdahl model")
    args = parser.parse_args(argv)
    if args.remedies:
        for name in (args.workloads or "mnist").split(","):
            times = remedies(name, args.repeats)
            for variant, ms in times.items():
                extra = ms - times["none"]
                print(f"{name:<7}{variant:<11}{ms:9.4f} ms/step  {extra * 1e3:+8.1f} µs")
        return 0
    names = (args.workloads or "bike,mnist,mnist-regularized").split(",")
    if args.threads:
        return _threads_table(names, args.repeats)
    for name in names:
        for part, us in breakdown(name, args.repeats).items():
            print(f"{name:<18}{part:<12}{us:10.2f} µs/step")
    return 0


def _threads_table(names, repeats):
    original = fastnn.get_num_threads()
    try:
        for name in names:
            fastnn.set_num_threads(1)
            one = breakdown(name, repeats)
            fastnn.set_num_threads(2)
            two = breakdown(name, repeats)
            model = amdahl(one, two)
            print(f"{name}: µs per step at 1 and 2 threads, parallel fraction p, Amdahl at "
                  f"16 and 64 threads")
            for part in one:
                p, at = model[part]
                print(f"  {part:<12}{one[part]:11.1f}{two[part]:11.1f}   p {p:4.2f}"
                      f"{at[16]:11.1f}{at[64]:11.1f}")
            parts = [k for k in one if k not in ("epoch", "floor")]
            for N in (1, 2, 16, 64):
                total = sum(one[k] if N == 1 else two[k] if N == 2 else model[k][1][N]
                            for k in parts)
                print(f"  sum of the parts at {N:>2} threads: {total:11.1f} µs/step")
    finally:
        fastnn.set_num_threads(original)
    return 0


if __name__ == "__main__":
    sys.exit(main())
