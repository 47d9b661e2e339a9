"""A whole network as flat arrays plus integer tables (DESIGN.md, "The model is data").

A network of L dense layers is described by
    sizes (L+1,)   widths n_0 .. n_L
    acts  (L,)     activation codes
    w_off, b_off (L,)  where W_l (n_{l+1} x n_l, row-major) and b_l start in ``params``
and every buffer of a minibatch of at most ``cap`` samples lives in one flat
workspace ``ws``, laid out as

    [ X gather n_0 cap | T gather n_L cap | A_1 .. A_L | D_1 .. D_L ]

where A_l (n_l x batch) is layer l's output and D_l the loss gradient at it
(overwritten in place by the gradient at its pre-activation). ``grads`` has the
layout of ``params``, so dW_l and db_l are views into it at the same offsets.
``fused`` says the last activation and the loss are computed as one kernel from
the logits (softmax + cross-entropy, sigmoid + binary cross-entropy).
"""
from ._jit import kernel
from .activations import IDENTITY, SIGMOID, SOFTMAX
from .dense import backprop_delta, backprop_inputs, backprop_weights, dense_forward
from .losses import (
    BINARY_CROSSENTROPY,
    CATEGORICAL_CROSSENTROPY,
    loss_value_and_grad,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
)


@kernel
def workspace_size(sizes, cap):
    """Length of the flat workspace for minibatches of at most ``cap`` samples."""
    L = sizes.shape[0] - 1
    total = sizes[0] + sizes[L]
    for l in range(1, L + 1):
        total += 2 * sizes[l]
    return total * cap


@kernel
def is_fused(act_last, loss_code):
    """True when the output activation and the loss are one fused kernel."""
    return (act_last == SOFTMAX and loss_code == CATEGORICAL_CROSSENTROPY) or (
        act_last == SIGMOID and loss_code == BINARY_CROSSENTROPY)


@kernel
def matrix_view(flat, offset, rows, cols):
    """The (rows, cols) column-major matrix stored at flat[offset:]: column j holds sample j."""
    return flat[offset:offset + rows * cols].reshape(cols, rows).T


@kernel
def weight_view(flat, w_off, sizes, l):
    """W_l (n_{l+1} x n_l, row-major) inside ``params`` or ``grads``."""
    rows, cols = sizes[l + 1], sizes[l]
    return flat[w_off[l]:w_off[l] + rows * cols].reshape(rows, cols)


@kernel
def bias_view(flat, b_off, sizes, l):
    """b_l (n_{l+1},) inside ``params`` or ``grads``."""
    return flat[b_off[l]:b_off[l] + sizes[l + 1]]


@kernel
def _offset_target(sizes, cap):
    return sizes[0] * cap


@kernel
def _offset_output(sizes, cap, l):
    """Start of A_l (l = 1..L)."""
    L = sizes.shape[0] - 1
    off = (sizes[0] + sizes[L]) * cap
    for k in range(1, l):
        off += sizes[k] * cap
    return off


@kernel
def _offset_delta(sizes, cap, l):
    """Start of D_l (l = 1..L)."""
    L = sizes.shape[0] - 1
    return _offset_output(sizes, cap, L + 1) + _offset_output(sizes, cap, l) - _offset_output(
        sizes, cap, 1)


@kernel
def output_view(ws, sizes, cap, l, nb):
    """A_l for a batch of nb samples."""
    return matrix_view(ws, _offset_output(sizes, cap, l), sizes[l], nb)


@kernel
def delta_view(ws, sizes, cap, l, nb):
    """D_l for a batch of nb samples."""
    return matrix_view(ws, _offset_delta(sizes, cap, l), sizes[l], nb)


@kernel
def gather_batch(X, T, perm, start, nb, ws, sizes, cap):
    """Copy samples perm[start:start+nb] of X (n, n_0) and T (n, n_L) into the workspace;
    returns their (n_0, nb) and (n_L, nb) column-major views."""
    L = sizes.shape[0] - 1
    xb = ws[0:nb * sizes[0]].reshape(nb, sizes[0])
    t0 = _offset_target(sizes, cap)
    tb = ws[t0:t0 + nb * sizes[L]].reshape(nb, sizes[L])
    for j in range(nb):
        _copy_row(X[perm[start + j]], xb[j])
        _copy_row(T[perm[start + j]], tb[j])
    return xb.T, tb.T


@kernel
def _copy_row(src, dst):
    for c in range(src.shape[0]):
        dst[c] = src[c]


@kernel
def forward(params, sizes, acts, w_off, b_off, fused, X, ws, cap):
    """Forward pass of the columns of X (n_0, nb): A_l = f_l(W_l A_{l-1} + b_l).

    With ``fused`` the last layer stops at its logits (the fused loss applies f).
    Returns A_L (a view into ``ws``).
    """
    L = sizes.shape[0] - 1
    nb = X.shape[1]
    A = X
    for l in range(L):
        act = IDENTITY if (fused and l == L - 1) else acts[l]
        Y = output_view(ws, sizes, cap, l + 1, nb)
        dense_forward(weight_view(params, w_off, sizes, l), bias_view(params, b_off, sizes, l),
                      A, act, Y)
        A = Y
    return A


@kernel
def output_loss(loss_code, act_last, fused, Y, T, G):
    """Loss of the last layer's output Y against T; G = dL/dY (dL/dlogits when fused,
    in which case Y, the logits, is overwritten by the probabilities)."""
    if fused:
        if loss_code == CATEGORICAL_CROSSENTROPY:
            return softmax_cross_entropy(Y, T, Y, G)
        return sigmoid_binary_cross_entropy(Y, T, Y, G)
    return loss_value_and_grad(loss_code, Y, T, G)


@kernel
def backward(params, grads, sizes, acts, w_off, b_off, fused, X, ws, cap):
    """Backward pass from D_L (the loss gradient at the output): fills every dW_l, db_l."""
    L = sizes.shape[0] - 1
    nb = X.shape[1]
    for l in range(L - 1, -1, -1):
        act = IDENTITY if (fused and l == L - 1) else acts[l]
        D = delta_view(ws, sizes, cap, l + 1, nb)
        A = output_view(ws, sizes, cap, l + 1, nb)
        backprop_delta(act, A, D, D, bias_view(grads, b_off, sizes, l))
        A_prev = X if l == 0 else output_view(ws, sizes, cap, l, nb)
        backprop_weights(D, A_prev, weight_view(grads, w_off, sizes, l))
        if l > 0:
            backprop_inputs(weight_view(params, w_off, sizes, l), D,
                            delta_view(ws, sizes, cap, l, nb))


@kernel
def forward_backward(params, grads, sizes, acts, w_off, b_off, loss_code, fused, X, T, ws,
                     cap):
    """Loss of one minibatch (X (n_0, nb), T (n_L, nb)) and its gradient in ``grads``."""
    L = sizes.shape[0] - 1
    nb = X.shape[1]
    Y = forward(params, sizes, acts, w_off, b_off, fused, X, ws, cap)
    loss = output_loss(loss_code, acts[L - 1], fused, Y, T, delta_view(ws, sizes, cap, L, nb))
    backward(params, grads, sizes, acts, w_off, b_off, fused, X, ws, cap)
    return loss
