"""Run by tests/test_distributed.py as ``mpiexec -n 2 python tests/mpi/faults.py MODE``.

MODE "arguments": bad or differing arguments on one rank raise the same error on every
rank before any collective of training (no rank is left waiting); each rank prints it.
MODE "raise": rank 1 raises in a callback after its second epoch; MODE "raise-mid-epoch":
between two compiled chunks of the first epoch, while rank 0 waits in a collective. The
job must end (the test checks the exit status and the time it took)."""
import sys

import numpy as np
from mpi4py import MPI

import fastnn

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
fastnn.set_num_threads(1)
rng = np.random.default_rng(0)
X, y = rng.standard_normal((203, 9)), rng.standard_normal((203, 2))


def model(**kw):
    return fastnn.Sequential([fastnn.Dense(9, 17, "tanh"), fastnn.Dense(17, 11, "relu"),
                              fastnn.Dense(11, 2)], seed=1, **kw)


if sys.argv[1] == "arguments":
    attempts = {
        "NaN on rank 1": lambda m: m.fit(np.where(rank == 1, np.nan, X), y, comm=comm,
                                         verbose=0),
        "rows differ": lambda m: m.fit(X[:203 - rank], y[:203 - rank], comm=comm, verbose=0),
        "batch sizes differ": lambda m: m.fit(X, y, batch_size=32 + rank, comm=comm,
                                              verbose=0),
        "BatchNorm": lambda m: fastnn.Sequential(
            [fastnn.Dense(9, 5), fastnn.BatchNorm(5), fastnn.Activation("relu"),
             fastnn.Dense(5, 2)]).fit(X, y, comm=comm, verbose=0),
        "not a communicator": lambda m: m.fit(X, y, comm="world", verbose=0),
    }
    for name, attempt in attempts.items():
        m = model()
        before = m.params.copy()
        try:
            attempt(m)
            print(f"{name}: rank {rank}: no error", flush=True)
        except (ValueError, TypeError) as exc:
            unchanged = np.array_equal(before, m.params)
            print(f"{name}: rank {rank}: {type(exc).__name__}: {exc} "
                  f"[params unchanged: {unchanged}]", flush=True)
        comm.Barrier()
elif sys.argv[1] == "raise-mid-epoch":
    from fastnn import distributed

    compiled, calls = distributed.train_shard_batches, [0]

    def failing(*args):   # rank 1 fails between two compiled chunks of the first epoch
        calls[0] += 1
        if rank == 1 and calls[0] == 3:
            raise RuntimeError("a step failed on purpose")
        return compiled(*args)

    distributed.train_shard_batches = failing
    model().fit(X, y, epochs=50, batch_size=4, comm=comm, verbose=0)
    print(f"rank {rank}: training ended normally", flush=True)
elif sys.argv[1] == "raise":
    def fail(epoch, logs):
        if rank == 1 and epoch == 1:
            raise RuntimeError("a callback failed on purpose")

    model().fit(X, y, epochs=50, batch_size=32, comm=comm, verbose=0, callbacks=[fail])
    print(f"rank {rank}: training ended normally", flush=True)
