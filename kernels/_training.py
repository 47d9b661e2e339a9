"""Compiled loops over a whole dataset: no Python between minibatches.

``net`` is a layout.Network, ``upd`` an optimizers.Update, ``buf`` a network.Buffers;
X (n, n_0) and T (n, n_L) are row-major, one row per sample.

Constant arguments are passed to the passes as np.int64 / np.bool_ values: a bare
constant would be typed as a literal, and Numba compiles a callee once per literal
value (forward three times, each block pass twice) for no measurable run-time gain.
"""
import numpy as np

from ._jit import kernel
from ._network import (
    INFER,
    TRAIN,
    TRAIN_UPDATE,
    copy_columns,
    correct_predictions,
    delta_view,
    gather,
    minibatch_weight,
    output_loss,
    output_view,
    target_view,
)
from ._passes import call_forward, call_update, passes_for, weighted_share
from ._plan import by_plan
from ._split import split_minibatch
from ._views import column_major


@kernel(inline="always")
def rows(X, start, nb):
    """Rows start:start+nb of the row-major X (n, d) as a (d, nb) column-major view."""
    d = X.shape[1]
    return column_major(X, start * d, d, nb)


def train_batches(X, T, perm, start, stop, batch_size, net, upd, buf, step, total, correct,
                  sw=None):
    """Consecutive minibatches of an epoch that visits the samples in the order ``perm``:
    those beginning at sample positions start, start + batch_size, ... < stop (``start``
    a multiple of batch_size). The whole epoch is start = 0, stop = len(perm), total = 0,
    correct = 0; any split of it into such ranges, each call continuing from the
    (total, correct, step) the previous returned, gives bitwise the same result.

    Per minibatch: gather, forward (batch statistics, dropout, running statistics
    updated), loss, backward, the update ``upd`` (schedule, clipping, regularization).
    The workspace holds minibatches of ``batch_size``; the epoch's last may be smaller.
    Returns (total + sum over samples of their minibatch's loss, correct + correct
    predictions, step count after). ``sw`` (n,): sample weights — each minibatch's loss
    is then their weighted mean, Σ w_j L_j / Σ w_j (kernels._losses). Called from
    Python: it picks the compiled passes of ``net`` (kernels._passes) and runs the
    compiled loop.
    """
    return _train_batches(X, T, perm, start, stop, batch_size, net, upd[:-1], buf, step, total,
                          correct, passes_for(net, buf, upd), sw)


@kernel(entry=True)
def _train_batches(X, T, perm, start, stop, batch_size, net, upd_head, buf, step, total,
                   correct, passes, sw):
    """train_batches with the update ``upd`` given as its fields but the plan (the pass
    of that plan is in ``passes``: kernels._passes), so that this loop compiles once for
    every optimizer."""
    n = perm.shape[0]
    for begin in range(start, stop, batch_size):
        nb = min(batch_size, n - begin)
        total, correct = minibatch_gradient(net.plan, passes, net, buf, X, T, perm, begin, nb,
                                            batch_size, step, total, correct, sw)
        call_update(passes, upd_head, net.seg, buf.params, buf.grads, buf.state, step)
        step += 1
    return total, correct, step


@kernel
def whole_minibatch(passes, net, buf, X, T, perm, begin, nb, cap, step, total, correct, sw):
    """The gradient of the minibatch of samples perm[begin:begin+nb] in ``buf.grads``;
    returns (total + its loss sum, correct + its correct predictions)."""
    L = net.sizes.shape[0] - 1
    Tb = target_view(buf.ws, net, cap, nb)
    gather(net.plan, X, T, perm, begin, output_view(buf.ws, net, cap, 0, nb), Tb)
    loss = weighted_share(passes, net, buf, cap, nb, np.int64(TRAIN_UPDATE), step, 1.0, sw,
                          perm, begin, nb, minibatch_weight(sw, perm, begin, nb))
    total += loss * nb
    correct += correct_predictions(net.plan, output_view(buf.ws, net, cap, L, nb), Tb)
    return total, correct


#: minibatch_gradient(net.plan, passes, net, buf, X, T, perm, begin, nb, cap, step, total,
#: correct, sw): whole_minibatch, or for a split plan its samples split across threads
#: (kernels._split)
minibatch_gradient = by_plan("split", {False: whole_minibatch, True: split_minibatch})


def infer_batches(X, T, out, net, buf, cap, sw=None):
    """The network in inference mode on the rows of X, in chunks of ``cap`` samples. With
    T (n, n_L) — n rows, as X — returns (sum over samples of the loss, correct
    predictions); with out (n, n_L), writes the outputs (probabilities for a fused loss)
    into it. Pass a 0-row array for the one not wanted; without T the result is (0.0, 0).
    One kernel for evaluation and prediction: one compile. With ``sw`` (n,), the loss sum
    is Σ w_j L_j. Called from Python (see ``train_batches``)."""
    return _infer_batches(X, T, out, net, buf, cap, passes_for(net, buf), sw)


@kernel
def _chunk_loss(net, Y, Tb, D, sw, start):
    """output_loss of an inference chunk, weighted by sw[start:start + nb] (sw None: not)."""
    if sw is None:
        return output_loss(net.plan, Y, Tb, D, None)
    return output_loss(net.plan, Y, Tb, D, sw[start:start + Y.shape[1]])


@kernel(entry=True)
def _infer_batches(X, T, out, net, buf, cap, passes, sw):
    n = X.shape[0]
    L = net.sizes.shape[0] - 1
    evaluate, predict = T.shape[0] == n, out.shape[0] == n
    total = 0.0
    correct = 0
    for start in range(0, n, cap):
        nb = min(cap, n - start)
        copy_columns(rows(X, start, nb), output_view(buf.ws, net, cap, 0, nb))
        call_forward(passes, net, buf, cap, nb, np.int64(INFER), np.int64(0),
                     evaluate and net.fused)
        Y = output_view(buf.ws, net, cap, L, nb)
        if evaluate:   # a fused loss overwrites its logits Y with the probabilities
            Tb = rows(T, start, nb)
            loss = _chunk_loss(net, Y, Tb, delta_view(buf.ws, net, cap, L, nb), sw, start)
            total += loss * nb
            correct += correct_predictions(net.plan, Y, Tb)
        if predict:
            copy_columns(Y, rows(out, start, nb))
    return total, correct


def batch_loss_and_grad(X, T, net, buf, step, sw=None, perm=None):
    """Loss of all rows of X, T taken as one minibatch in training mode (batch
    statistics, the dropout of update ``step``; running statistics untouched), and its
    gradient in ``grads`` (the workspace holds X.shape[0] samples); with sample weights
    ``sw`` (and ``perm``, np.arange(n)) the weighted mean."""
    return _batch_loss_and_grad(X, T, net, buf, step, passes_for(net, buf, backward=True), sw,
                                perm)


@kernel(entry=True)
def _batch_loss_and_grad(X, T, net, buf, step, passes, sw, perm):
    n = X.shape[0]
    copy_columns(rows(X, 0, n), output_view(buf.ws, net, n, 0, n))
    copy_columns(rows(T, 0, n), target_view(buf.ws, net, n, n))
    return weighted_share(passes, net, buf, n, n, np.int64(TRAIN), step, 1.0, sw, perm, 0, n,
                          minibatch_weight(sw, perm, 0, n))
