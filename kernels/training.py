"""Compiled loops over a whole dataset: no Python between minibatches."""
from ._jit import kernel
from .losses import count_correct
from .network import delta_view, forward, forward_backward, gather_batch, output_loss, output_view
from .optimizers import optimizer_update


@kernel
def rows(X, start, nb):
    """Rows start:start+nb of the row-major X (n, d) as a (d, nb) column-major view."""
    d = X.shape[1]
    return X.reshape(X.shape[0] * d)[start * d:(start + nb) * d].reshape(nb, d).T


@kernel
def train_epoch(X, T, perm, batch_size, params, grads, state, opt_code, hp, step, bounds, l1,
                l2, sizes, acts, w_off, b_off, loss_code, fused, ws):
    """One epoch of minibatch training, visiting the samples in the order ``perm``.

    Per minibatch: gather, forward, loss, backward, regularized optimizer update.
    X (n, n_0) and T (n, n_L) are row-major, one row per sample; the workspace holds
    minibatches of ``batch_size``; the last minibatch may be smaller. Returns
    (sum over samples of their minibatch's loss, correct predictions, step count after).
    """
    n = perm.shape[0]
    L = sizes.shape[0] - 1
    total = 0.0
    correct = 0
    for start in range(0, n, batch_size):
        nb = min(batch_size, n - start)
        Xb, Tb = gather_batch(X, T, perm, start, nb, ws, sizes, batch_size)
        loss = forward_backward(params, grads, sizes, acts, w_off, b_off, loss_code, fused, Xb,
                                Tb, ws, batch_size)
        total += loss * nb
        correct += count_correct(loss_code, output_view(ws, sizes, batch_size, L, nb), Tb)
        optimizer_update(opt_code, params, grads, state, hp, step, bounds, l1, l2)
        step += 1
    return total, correct, step


@kernel
def evaluate_batches(X, T, params, sizes, acts, w_off, b_off, loss_code, fused, ws, cap):
    """(sum over samples of the loss, correct predictions) of the network on X, T,
    in chunks of ``cap`` samples. Reads X and T in place."""
    n = X.shape[0]
    L = sizes.shape[0] - 1
    total = 0.0
    correct = 0
    for start in range(0, n, cap):
        nb = min(cap, n - start)
        Tb = rows(T, start, nb)
        Y = forward(params, sizes, acts, w_off, b_off, fused, rows(X, start, nb), ws, cap)
        loss = output_loss(loss_code, acts[L - 1], fused, Y, Tb, delta_view(ws, sizes, cap, L, nb))
        total += loss * nb
        correct += count_correct(loss_code, Y, Tb)
    return total, correct


@kernel
def predict_batches(X, out, params, sizes, acts, w_off, b_off, ws, cap):
    """out (n, n_L) = the network's outputs for the rows of X, in chunks of ``cap``."""
    n = X.shape[0]
    for start in range(0, n, cap):
        nb = min(cap, n - start)
        Y = forward(params, sizes, acts, w_off, b_off, False, rows(X, start, nb), ws, cap)
        rows(out, start, nb)[:, :] = Y


@kernel
def batch_loss_and_grad(X, T, params, grads, sizes, acts, w_off, b_off, loss_code, fused, ws):
    """Loss of all rows of X, T taken as one minibatch, and its gradient in ``grads``
    (the workspace holds X.shape[0] samples)."""
    n = X.shape[0]
    return forward_backward(params, grads, sizes, acts, w_off, b_off, loss_code, fused,
                            rows(X, 0, n), rows(T, 0, n), ws, n)
