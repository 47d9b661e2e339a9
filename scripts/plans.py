"""``scripts/plans.py``: one workload's training epoch under each plan a network can
run — ``serial`` (every kernel on the calling thread), ``products`` (products split
across Numba's threads: Plan.parallel) and ``split`` (each minibatch split by samples
across the threads: Plan.split, kernels._split) — alternating plan by plan, epoch by
epoch, in one process, so that the machine's noise falls on each alike. Prints the best
and the median µs per step of each; the planner's choice (kernels._layout.planned_for)
is marked. BLAS is held at one thread for the two parallel plans, as ``fit`` holds it.
"""
import argparse
import sys
import time

import numpy as np

PLANS = ("serial", "products", "split")


def epoch_runner(w, batch, plan):
    """A function running one epoch of workload ``w`` (its network, Adam, random data) in
    minibatches of ``batch`` through kernels._training.train_batches under ``plan``; each
    call reshuffles. The model's parameters keep training from call to call."""
    import fastnn
    from fastnn.bench.workloads import build_model, data
    from fastnn.buffers import aligned_zeros
    from fastnn.kernels import _network as network
    from fastnn.kernels._layout import Plan
    from fastnn.kernels._training import train_batches
    from fastnn.threads import one_pool

    X, y = data(w)
    model = build_model(w)
    optimizer = fastnn.Adam(1e-3)
    optimizer.bind(model)
    X, T = model._xy(X, y)
    net = model.net._replace(plan=Plan(**{**model.net.plan.choices,
                                          "parallel": plan == "products",
                                          "split": plan == "split"}))
    ws = aligned_zeros(network.workspace_size.py_func(net, batch), model.dtype)
    buf = network.Buffers(model.params, model.grads, optimizer.state, model.stats, ws,
                          model._acc)
    update = optimizer.update_rule(None, net.plan.parallel)
    perm = np.arange(X.shape[0], dtype=np.int64)
    rng = np.random.default_rng(0)

    def epoch():
        rng.shuffle(perm)
        with one_pool(net, batch):
            train_batches(X, T, perm, 0, perm.shape[0], batch, net, update, buf, 0, 0.0, 0)

    epoch()   # compile (or load) and allocate
    return epoch


def planned(w, batch):
    """The plan ``fit`` picks for workload ``w`` at ``batch``."""
    from fastnn.bench.workloads import build_model
    from fastnn.kernels._layout import planned_for

    plan = planned_for(build_model(w).net, batch, training=True).plan
    return "split" if plan.split else "products" if plan.parallel else "serial"


def compare(w, batch, rounds):
    """{plan: seconds per epoch, one per round}, the plans alternating."""
    runners = {plan: epoch_runner(w, batch, plan) for plan in PLANS}
    times = {plan: [] for plan in PLANS}
    for _ in range(rounds):
        for plan, epoch in runners.items():
            began = time.perf_counter()
            epoch()
            times[plan].append(time.perf_counter() - began)
    return times


def main(argv=None):
    from fastnn.bench.workloads import WORKLOADS

    parser = argparse.ArgumentParser(prog="scripts/plans.py", description=__doc__)
    parser.add_argument("--workload", default="bike", choices=sorted(WORKLOADS))
    parser.add_argument("--batches", default="32,48,64,100,200",
                        help="minibatch sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    w = WORKLOADS[args.workload]
    print(f"{w.name} {'-'.join(map(str, w.sizes))}, Adam; µs per step, best / median of "
          f"{args.rounds} epochs (* the plan fit picks)")
    print(f"{'batch':>6}" + "".join(f"{plan:>22}" for plan in PLANS))
    for batch in (int(b) for b in args.batches.split(",")):
        times = compare(w, batch, args.rounds)
        steps = -(-w.samples // batch)
        chosen = planned(w, batch)
        cells = [f"{'*' if plan == chosen else ''}{np.min(t) / steps * 1e6:.1f} / "
                 f"{np.median(t) / steps * 1e6:.1f}" for plan, t in times.items()]
        print(f"{batch:>6}" + "".join(f"{cell:>22}" for cell in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
