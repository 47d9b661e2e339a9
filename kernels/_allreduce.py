"""Data-parallel minibatches: each process of an MPI communicator takes its share of every
global minibatch, and one MPI_Allreduce of the flat gradient per step gives every
process the gradient of the whole minibatch (docs/design.md, "Beyond one machine").

For a global minibatch of B samples (positions begin .. begin + B of the epoch's order)
and k processes, process r takes positions begin + ⌊rB/k⌋ .. begin + ⌊(r+1)B/k⌋ — its
b_r samples, possibly none — and computes the gradient of (1/B) Σ over them of the
loss: the mean gradient of its b_r samples scaled by b_r / B, which costs one pass over
the loss gradient at the output (n_L × b_r values), since backpropagation is linear in
it. The sum over processes is the minibatch's mean gradient, the same on every process;
every process applies the same update to the same parameters.

MPI_Allreduce is the one of the MPI library mpi4py loaded, called from compiled code
through its address, with the communicator, datatype and operation handles as integers
of the library's handle width (fastnn.distributed.Reducer): the kernels stay cacheable
(no address is compiled in) and work on any communicator, in float32 and float64.
"""
from collections import namedtuple

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from ._jit import kernel
from ._network import (TRAIN_UPDATE, correct_predictions, gather, minibatch_weight, output_view,
                       target_view, zero)
from ._passes import call_update, passes_for, weighted_share

#: what the kernels need of a communicator: this process's ``rank`` of ``size``; ``fn``,
#: MPI_Allreduce's address; the ``comm``, ``dtype`` (of the gradient) and ``op`` (sum)
#: handles, all np.int32 for a library whose handles are ints (MPICH), np.int64 for
#: pointer handles (Open MPI)
Reducer = namedtuple("Reducer", "rank size fn comm dtype op")


@intrinsic
def _mpi_allreduce(typingctx, fn, send, recv, count, datatype, op, comm):
    """MPI_Allreduce(send, recv, count, datatype, op, comm) through its address ``fn``."""
    handle = datatype
    if not (isinstance(handle, types.Integer) and op == handle and comm == handle):
        return None
    sig = types.int32(fn, send, recv, count, datatype, op, comm)

    def codegen(context, builder, signature, args):
        fn, send, recv, count, datatype, op, comm = args
        address = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.IntType(32), [address, address, ir.IntType(32),
                                                datatype.type, op.type, comm.type])
        target = builder.inttoptr(fn, fnty.as_pointer())
        return builder.call(target, [builder.inttoptr(send, address),
                                     builder.inttoptr(recv, address),
                                     builder.trunc(count, ir.IntType(32)), datatype, op, comm])

    return sig, codegen


@kernel
def allreduce_sum(reducer, send, recv):
    """recv = Σ over the processes of send (elementwise, the same on every process)."""
    status = _mpi_allreduce(reducer.fn, send.ctypes.data, recv.ctypes.data,
                            np.int64(send.size), reducer.dtype, reducer.op, reducer.comm)
    if status != 0:
        raise RuntimeError("MPI_Allreduce failed")


def train_shard_batches(X, T, perm, start, stop, batch_size, net, upd, buf, summed, step,
                        total, correct, reducer, sw=None):
    """``kernels.train_batches`` across the processes of ``reducer``: for each global
    minibatch of ``batch_size`` beginning at sample positions start, start + batch_size,
    ... < stop, this process's share (the workspace holds ⌈batch_size / size⌉ samples)
    forward and backward, its gradient scaled to the minibatch's, one MPI_Allreduce into
    ``summed`` (a vector like ``grads``), and the update from ``summed``. Returns (total
    + this process's sum over samples of their minibatch's loss, correct + its correct
    predictions, step count after); the sums over processes are the epoch's. ``sw``: the
    samples' weights (every process has them all: each weighs its share by the whole
    minibatch's weight). Called from Python (it picks the compiled passes of ``net``:
    kernels._passes)."""
    return _train_shard_batches(X, T, perm, start, stop, batch_size, net, upd[:-1], buf,
                                summed, step, total, correct, reducer,
                                passes_for(net, buf, upd), sw)


@kernel(entry=True)
def _train_shard_batches(X, T, perm, start, stop, batch_size, net, upd_head, buf, summed,
                         step, total, correct, reducer, passes, sw):
    n = perm.shape[0]
    L = net.sizes.shape[0] - 1
    cap = (batch_size + reducer.size - 1) // reducer.size
    for begin in range(start, stop, batch_size):
        nb = min(batch_size, n - begin)
        lo = begin + reducer.rank * nb // reducer.size
        mine = begin + (reducer.rank + 1) * nb // reducer.size - lo
        if mine > 0:
            Tb = target_view(buf.ws, net, cap, mine)
            gather(net.plan, X, T, perm, lo, output_view(buf.ws, net, cap, 0, mine), Tb)
            loss = weighted_share(passes, net, buf, cap, mine, np.int64(TRAIN_UPDATE), step,
                                  mine / nb, sw, perm, lo, nb,
                                  minibatch_weight(sw, perm, begin, nb))
            total += loss * mine
            correct += correct_predictions(net.plan, output_view(buf.ws, net, cap, L, mine), Tb)
        else:
            zero(buf.grads)
        allreduce_sum(reducer, buf.grads, summed)
        call_update(passes, upd_head, net.seg, buf.params, summed, buf.state, step)
        step += 1
    return total, correct, step
