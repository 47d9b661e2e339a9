"""CUDA twin of fastnn.kernels._training: loops over a whole dataset on the device,
with the CPU's names, argument order and results.

X (n, n_0) and T (n, n_L) are row-major device arrays, one row per sample; ``perm`` a
device int64 array; ``net``, ``buf`` from ``to_device``. The host only launches
kernels: each minibatch's loss and correct count are summed on the device, and the
learning rate and clip factor of each update are evaluated there, so a call copies back
two scalars at its end and nothing per step.
"""
import numpy as np

from .._network import INFER, TRAIN_UPDATE
from .._views import column_major
from . import _config as config
from ._backend import cuda
from ._buffers import scratch_view, update_to_device
from ._network import (accumulate_output_loss, backward, forward, gather_batch, loss_factors,
                       output_view, read_sums, reset_sums, target_view)
from ._optimizers import optimizer_update


def rows(X, start, nb):
    """Rows start:start+nb of the row-major X (n, d) as a (d, nb) column-major view."""
    d = X.shape[1]
    return column_major(X, start * d, d, nb)


@cuda.jit
def _copy(src, dst):
    i, j = cuda.grid(2)
    if i < dst.shape[0] and j < dst.shape[1]:
        dst[i, j] = src[i, j]


def copy_columns(src, dst):
    """dst = src for two device matrices of one shape."""
    blocks, threads = config.grid_2d(*dst.shape)
    _copy[blocks, threads](src, dst)


def train_batches(X, T, perm, start, stop, batch_size, net, upd, buf, step, total, correct,
                  sw=None):
    """Consecutive minibatches of an epoch that visits the samples in the order ``perm``:
    those beginning at sample positions start, start + batch_size, ... < stop, as
    kernels.train_batches. Per minibatch: gather, forward (batch statistics, dropout,
    running statistics updated), loss, backward, the update ``upd`` (its schedule copied
    over once per call when it is a host array). ``sw``: the samples' weights (a device
    array; the minibatch's loss their weighted mean). Returns (total + sum over samples
    of their minibatch's loss, correct + correct predictions, step count after)."""
    n = perm.shape[0]
    upd = update_to_device(upd)
    scratch = scratch_view(buf.acc, net)
    reset_sums(net, buf)
    for begin in range(start, stop, batch_size):
        nb = min(batch_size, n - begin)
        Xb = output_view(buf.ws, net, batch_size, 0, nb)
        Tb = target_view(buf.ws, net, batch_size, nb)
        gather_batch(X, T, perm, begin, Xb, Tb)
        forward(net, buf, Xb, batch_size, TRAIN_UPDATE, step, net.fused)
        accumulate_output_loss(net, buf, batch_size, Tb, nb,
                               loss_factors(sw, perm, begin, nb, buf.ws, net, batch_size))
        backward(net, buf, Xb, batch_size, step)
        optimizer_update(upd, net.seg, buf.params, buf.grads, buf.state, step, scratch)
        step += 1
    loss_sum, count = read_sums(net, buf)
    return total + loss_sum, correct + count, step


def infer_batches(X, T, out, net, buf, cap, sw=None):
    """The network in inference mode on the rows of X, in chunks of ``cap`` samples,
    reading X in place, as kernels.infer_batches: with T (n, n_L) returns (sum over
    samples of the loss, correct predictions); with out (n, n_L) (a device array),
    writes the outputs (probabilities for a fused loss) into it. Pass a 0-row array for
    the one not wanted; without T the result is (0.0, 0). With ``sw`` (a device array),
    the loss sum is Σ w_j L_j."""
    n = X.shape[0]
    L = net.table.shape[0]
    evaluate, predict = T.shape[0] == n, out.shape[0] == n
    reset_sums(net, buf)
    for start in range(0, n, cap):
        nb = min(cap, n - start)
        forward(net, buf, rows(X, start, nb), cap, INFER, 0, evaluate and net.fused)
        if evaluate:
            accumulate_output_loss(net, buf, cap, rows(T, start, nb), nb,
                                   None if sw is None else sw[start:start + nb])
        if predict:
            copy_columns(output_view(buf.ws, net, cap, L, nb), rows(out, start, nb))
    if not evaluate:
        return 0.0, 0
    return read_sums(net, buf)


def empty_rows(columns, dtype):
    """A 0-row device array: the ``T`` or ``out`` not wanted of infer_batches."""
    return cuda.device_array((0, columns), dtype=np.dtype(dtype))
