"""``mpiexec -n k python scripts/mpi_steps.py`` (k = 1: plain ``python``): where a
data-parallel step's time goes on each reference workload — the step (one fit epoch's
seconds over its steps, best of the timed epochs, global batch as the workload's) and
the allreduce of its gradient alone (mpi4py's Allreduce of the same float32 values, all
ranks at once, median of repeats), printed by rank 0. Each rank gets cores / k threads.
With one process it also prints an N-node model from the measured compute per sample.
"""
import argparse
import os
import statistics
import time

import numpy as np


def allreduce_seconds(comm, n, repeats):
    """Median seconds of one sum-allreduce of n float32 values across ``comm``."""
    from mpi4py import MPI

    send = np.ones(n, dtype=np.float32)
    recv = np.empty_like(send)
    times = []
    for _ in range(repeats + 3):
        comm.Barrier()
        began = time.perf_counter()
        comm.Allreduce(send, recv, op=MPI.SUM)
        times.append(time.perf_counter() - began)
    return statistics.median(times[3:])


#: per-message latency of the N-node model (seconds; TCP over Ethernet, an assumption)
LATENCY = 10e-6
#: network bandwidths of the model (bits per second)
BANDWIDTHS = (10e9, 100e9)


def ring_allreduce_seconds(nbytes, nodes, bandwidth, latency=LATENCY):
    """A ring allreduce of ``nbytes`` across ``nodes``: 2(N-1)/N · bytes / bandwidth plus
    2(N-1) message latencies."""
    return 2 * (nodes - 1) / nodes * nbytes * 8 / bandwidth + 2 * (nodes - 1) * latency


def node_model(per_sample, nbytes, batch, bandwidth, nodes=(1, 2, 4, 8, 16, 32, 64, 128)):
    """The N-node model of one workload: step(N) = per_sample · batch / N + allreduce(N)
    (compute and communication not overlapped, as fastnn runs them). Returns the N of
    the shortest step, the efficiency per_sample · batch / (N · step(N)) at each N, and at
    each N the global batch from which the efficiency is at least 90 %."""
    step = {n: per_sample * batch / n + ring_allreduce_seconds(nbytes, n, bandwidth)
            for n in nodes}
    best = min(step, key=step.get)
    efficiency = {n: per_sample * batch / (n * step[n]) for n in nodes}
    batch90 = {n: 9 * n * ring_allreduce_seconds(nbytes, n, bandwidth) / per_sample
               for n in nodes}
    return best, efficiency, batch90


def print_model(measured):
    """The N-node table from this machine's one-process figures {name: (step s, batch,
    params)}: each node a machine like this one."""
    print("\nN-node model (each node this machine; ring allreduce, 10 us per message):")
    print(f"{'workload':<10}{'Gb/s':>6}{'best N':>8}{'E(8)':>7}{'E(32)':>7}"
          f"{'B for 90% at N=8':>18}{'at N=32':>10}")
    for name, (step, batch, params) in measured.items():
        for bandwidth in BANDWIDTHS:
            best, eff, b90 = node_model(step / batch, 4 * params, batch, bandwidth)
            print(f"{name:<10}{bandwidth / 1e9:>6.0f}{best:>8}{eff[8]:>7.0%}{eff[32]:>7.0%}"
                  f"{b90[8]:>18,.0f}{b90[32]:>10,.0f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default="bike,mnist,wide")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after one more)")
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    from mpi4py import MPI

    import fastnn
    from fastnn.bench.workloads import WORKLOADS, build_model, data, steps

    comm = MPI.COMM_WORLD
    size = comm.Get_size()
    local = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size()
    fastnn.set_num_threads(max(1, (os.cpu_count() or 1) // local))
    if comm.Get_rank() == 0:
        print(f"{size} process(es), {fastnn.get_num_threads()} thread(s) each; ms per step "
              f"(global batch as the workload's)")
        print(f"{'workload':<10}{'params':>10}{'batch':>7}{'step ms':>10}{'allreduce ms':>14}"
              f"{'share':>8}")
    measured = {}
    for name in args.workloads.split(","):
        w = WORKLOADS[name]
        X, y = data(w)
        model = build_model(w)
        stamps = []
        model.fit(X, y, epochs=args.epochs + 1, batch_size=w.batch, verbose=0,
                  comm=comm if size > 1 else None,
                  callbacks=[lambda epoch, logs: stamps.append(time.perf_counter())])
        step = min(b - a for a, b in zip(stamps, stamps[1:])) / steps(w)
        reduce = allreduce_seconds(comm, model.params.size, args.repeats) if size > 1 else 0.0
        measured[name] = (step, w.batch, model.params.size)
        if comm.Get_rank() == 0:
            print(f"{name:<10}{model.params.size:>10}{w.batch:>7}{step * 1e3:>10.3f}"
                  f"{reduce * 1e3:>14.3f}{reduce / step:>8.0%}", flush=True)
    if size == 1:
        print_model(measured)
    return 0
