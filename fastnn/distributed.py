"""Data-parallel training over MPI: ``model.fit(..., comm=comm)`` with an mpi4py
communicator (DESIGN.md, "Beyond one machine"; kernels._allreduce has the math).

Every process passes the same X, y and runs the same fit. Before the first collective
each process validates its arguments as a plain fit does; then one allgather compares
what every process was given (shapes, dtype, network, batch size, epochs), so a bad
argument on any process raises the same ValueError on every process instead of leaving
the others waiting in an allreduce. Then rank 0's parameters, running statistics,
optimizer state and step count, and its shuffling generator's state, are broadcast: all
processes start identical, draw the same sample orders and stay identical (each update
is made from the same summed gradient). Per step: one MPI_Allreduce of the flat gradient,
from compiled code. Per compiled chunk of steps (about 0.2 s): one small allreduce that
agrees on the next chunk's length and on stopping (Ctrl-C on any process stops all at
the same step). Per epoch: one allreduce of the loss sums and, with validation data, of
each process's share of the validation sums.

After that first collective, an exception on any process ends the whole job
(``comm.Abort``) with the rank and the error printed: the other processes would
otherwise wait forever in their next collective.

This module imports mpi4py only when a communicator is given to ``fit``.
"""
import contextlib
import ctypes
import ctypes.util
import os
import sys
import traceback

import time

import numpy as np

from fastnn.buffers import aligned_zeros
from fastnn.epochs import EpochResult, epoch_order
from fastnn.threads import one_pool
from fastnn.kernels._allreduce import Reducer, train_shard_batches
from fastnn.kernels._layout import planned_for

_allreduce_address = None


def _mpi_library():
    """The MPI library mpi4py loaded (it is in this process's memory map on Linux)."""
    maps = "/proc/self/maps"
    if os.path.exists(maps):
        with open(maps) as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                name = os.path.basename(path)
                if name.startswith(("libmpi.", "libmpich.", "libmpi_", "libmpich_")) and \
                        ".so" in name:
                    return path
    for name in ("mpi", "mpich"):
        found = ctypes.util.find_library(name)
        if found:
            return found
    raise RuntimeError("the MPI library mpi4py uses was not found")


def allreduce_address():
    """MPI_Allreduce's address in the MPI library mpi4py loaded (found once)."""
    global _allreduce_address
    if _allreduce_address is None:
        library = ctypes.CDLL(_mpi_library(), mode=getattr(os, "RTLD_NOLOAD", 0) |
                              ctypes.RTLD_GLOBAL)
        _allreduce_address = ctypes.cast(library.MPI_Allreduce, ctypes.c_void_p).value
    return _allreduce_address


def check_comm(comm):
    """``comm`` as a communicator of at least one process (an mpi4py Intracomm)."""
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError("fit(comm=...) needs mpi4py and an MPI library: pip install "
                          "'fastnn[mpi]'") from None
    if not isinstance(comm, MPI.Intracomm) or comm == MPI.COMM_NULL:
        raise TypeError(f"comm must be an mpi4py intracommunicator (e.g. MPI.COMM_WORLD), "
                        f"got {type(comm).__name__}")
    return comm


def reducer(comm, dtype):
    """The kernels' Reducer of ``comm`` for gradients of ``dtype``."""
    from mpi4py import MPI

    sizes = {MPI._sizeof(MPI.Comm), MPI._sizeof(MPI.Datatype), MPI._sizeof(MPI.Op)}
    if sizes == {4}:
        handle = np.int32
    elif sizes == {8}:
        handle = np.int64
    else:
        raise RuntimeError(f"unsupported MPI handle sizes {sorted(sizes)}")
    datatype = MPI.FLOAT if np.dtype(dtype) == np.float32 else MPI.DOUBLE
    return Reducer(np.int64(comm.Get_rank()), np.int64(comm.Get_size()),
                   np.int64(allreduce_address()), handle(MPI._handleof(comm)),
                   handle(MPI._handleof(datatype)), handle(MPI._handleof(MPI.SUM)))


def agree(comm, error, facts):
    """The first collective of a data-parallel fit: every process's validation ``error``
    (an exception, or None) and its ``facts`` (what must be equal everywhere). Raises
    on every process the first process's error, or a ValueError naming the facts that
    differ."""
    facts = {name: repr(value) for name, value in facts.items()}
    gathered = comm.allgather((None if error is None else (type(error), str(error)), facts))
    if error is not None:
        raise error
    for rank, (failed, _) in enumerate(gathered):
        if failed is not None:
            kind, message = failed
            raise (kind if kind in (TypeError, ValueError) else ValueError)(
                f"rank {rank}: {message}")
    for name in facts:
        values = [f[name] for _, f in gathered]
        if any(v != values[0] for v in values):
            raise ValueError(f"every process of a data-parallel fit must be given the same "
                             f"{name}; got {', '.join(values)} on ranks 0..{len(values) - 1}")


def broadcast_state(comm, model, optimizer, rng):
    """Rank 0's parameters, running statistics, optimizer state and step count, and its
    generator's state, on every process."""
    for array in (model.params, model.stats, optimizer.state):
        comm.Bcast(array, root=0)
    optimizer.steps = comm.bcast(optimizer.steps, root=0)
    rng.bit_generator.state = comm.bcast(rng.bit_generator.state, root=0)


def share(n, rank, size):
    """Rows rank·n/size .. (rank+1)·n/size: this process's share of n."""
    return rank * n // size, (rank + 1) * n // size


def sum_over(comm, *values):
    """The elementwise sums over the processes of float ``values``."""
    from mpi4py import MPI

    local = np.array(values, dtype=np.float64)
    total = np.empty_like(local)
    comm.Allreduce(local, total, op=MPI.SUM)
    return total


def agree_on_chunk(comm, steps, stop):
    """(steps for the next chunk, stop): the most steps any process proposes, and whether
    any process was asked to stop."""
    from mpi4py import MPI

    local = np.array([steps, int(stop)], dtype=np.int64)
    most = np.empty_like(local)
    comm.Allreduce(local, most, op=MPI.MAX)
    return int(most[0]), bool(most[1])


@contextlib.contextmanager
def abort_on_error(comm):
    """Any exception raised inside ends the whole MPI job: printed with the rank, then
    ``comm.Abort(1)``."""
    try:
        yield
    except BaseException as exc:   # noqa: BLE001 - a blocked peer is worse than any exit
        rank, size = comm.Get_rank(), comm.Get_size()
        print(f"fastnn: rank {rank} of {size} failed, aborting the job: "
              f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        comm.Abort(1)
        raise


def launched_under_mpi():
    """The process count when this process was started by mpiexec with more than one
    process (MPICH's, Open MPI's and PMIx's environment), else 1: no MPI import."""
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            return int(value)
    return 1


def fit_epochs(model, comm, X, T, val, epochs, batch_size, optimizer, clip, shuffle, rng, run):
    """The epochs of a data-parallel ``fit`` (as Sequential._fit_cpu's, with every
    process's share of each minibatch and the collectives of the module docstring);
    yields an EpochResult per epoch, its sums over all processes."""
    rank, size = comm.Get_rank(), comm.Get_size()
    cap = -(-batch_size // size)
    buf = model._buffers(cap, optimizer.bind(model))
    broadcast_state(comm, model, optimizer, rng)
    net = planned_for(model.net, cap)
    rule = optimizer.update_rule(clip, net.plan.parallel)
    shares = reducer(comm, model.dtype)
    summed = aligned_zeros(model.params.size, model.dtype)
    n = X.shape[0]
    steps_total = -(-n // batch_size)
    perm = np.arange(n, dtype=np.int64)
    for epoch in range(epochs):
        if agree_on_chunk(comm, 0, run.stopped)[1]:
            run.interrupt.requested = True
            return
        epoch_order(perm, shuffle, rng)
        if callable(shuffle):   # the caller's function may draw differently per process
            comm.Bcast(perm, root=0)
        total, correct, done, began = 0.0, 0, 0, time.perf_counter()
        while done < n:
            steps, stop = agree_on_chunk(comm, run.sizer.steps, run.stopped)
            if stop:
                run.interrupt.requested = True
                break
            stop = min(n, done + steps * batch_size)
            chunk_began = time.perf_counter()
            with one_pool(net, cap):
                total, correct, optimizer.steps = train_shard_batches(
                    X, T, perm, done, stop, batch_size, net, optimizer.refresh(rule), buf,
                    summed, optimizer.steps, total, correct, shares)
            now = time.perf_counter()
            run.sizer.record(-(-(stop - done) // batch_size), now - chunk_began)
            done = stop
            run.progress.update(f"epoch {epoch + 1}/{epochs}", -(-done // batch_size),
                                steps_total, done, now - began)
        total, correct = sum_over(comm, total, correct)
        complete = done == n
        val_sums = None
        if val is not None and complete:
            lo, hi = share(val[0].shape[0], rank, size)
            mine = model._evaluate_sums(val[0][lo:hi], val[1][lo:hi]) if hi > lo else (0, 0)
            val_total, val_correct = sum_over(comm, *mine)
            val_sums = (float(val_total), int(val_correct))
        yield EpochResult(float(total), int(correct), done, val_sums, complete,
                          model._copy_state)
