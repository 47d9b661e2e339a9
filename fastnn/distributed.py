"""Data-parallel training over MPI: ``model.fit(..., comm=comm)`` with an mpi4py
communicator (docs/design.md, "Beyond one machine"; kernels/_allreduce.py has the math).

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

import numpy as np

from fastnn.buffers import aligned_zeros
from fastnn.engines import OneProcess
from fastnn.kernels.contract import Reducer, train_shard_batches

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
                          "mpi4py mpich, or pip install -e '.[mpi]' in fastnn's checkout"
                          ) from None
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


def share(n, rank, size):
    """Rows rank·n/size .. (rank+1)·n/size: this process's share of n."""
    return rank * n // size, (rank + 1) * n // size


class Processes(OneProcess):
    """The MPI processes of ``comm`` training together (the collectives of the module
    docstring, at the points fastnn.engines.CpuEngine calls)."""

    def __init__(self, comm):
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.reducer = self.summed = None

    #: each process runs its share of a minibatch whole (kernels/_allreduce.py)
    splits = False

    def workspace_samples(self, batch_size):
        return -(-batch_size // self.size)

    def begin(self, model, optimizer, rng):
        """Rank 0's parameters, running statistics, optimizer state and step count, and
        its generator's state, on every process; the kernels' Reducer and the vector the
        summed gradient goes to."""
        for array in (model.params, model.stats, optimizer.state):
            self.comm.Bcast(array, root=0)
        optimizer.steps = self.comm.bcast(optimizer.steps, root=0)
        rng.bit_generator.state = self.comm.bcast(rng.bit_generator.state, root=0)
        self.reducer = reducer(self.comm, model.dtype)
        self.summed = aligned_zeros(model.params.size, model.dtype)

    def agree(self, steps, stopped):
        """The most steps any process proposes, and whether any was asked to stop."""
        from mpi4py import MPI

        local = np.array([steps, int(stopped)], dtype=np.int64)
        most = np.empty_like(local)
        self.comm.Allreduce(local, most, op=MPI.MAX)
        return int(most[0]), bool(most[1])

    def same_order(self, perm, shuffle):
        if callable(shuffle):   # the caller's function may draw differently per process
            self.comm.Bcast(perm, root=0)

    def train(self, args, sample_weight):
        """train_batches' ``args``, each step's gradient summed across the processes:
        fastnn.kernels.contract.train_shard_batches, weighted by ``sample_weight`` (every
        process holds all of them)."""
        return train_shard_batches(*args[:9], self.summed, *args[9:], self.reducer,
                                   sample_weight)

    def totals(self, total, correct):
        total, correct = self._sum(total, correct)
        return float(total), int(correct)

    def validate(self, model, val):
        """Each process evaluates its share of the rows (weighted by its share of the
        validation weights, if any); the sums are added up."""
        lo, hi = share(val[0].shape[0], self.rank, self.size)
        weights = None if val[2] is None else val[2][lo:hi]
        mine = model._evaluate_sums(val[0][lo:hi], val[1][lo:hi], weights) if hi > lo \
            else (0, 0)
        total, correct = self._sum(*mine)
        return float(total), int(correct)

    def _sum(self, *values):
        from mpi4py import MPI

        local = np.array(values, dtype=np.float64)
        total = np.empty_like(local)
        self.comm.Allreduce(local, total, op=MPI.SUM)
        return total


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
