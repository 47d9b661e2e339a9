"""A whole network as flat arrays plus the tables of kernels._layout (docs/design.md, "The
model is data"): views into the flat vectors, and the forward and backward passes of
any depth and any mix of plain, BatchNorm and Dropout blocks, dense, convolution and
pooling (``net.table[l, KIND]``; the convolution and pooling kernels are kernels._conv's).

Every pass takes the network ``net`` (a layout.Network) and the buffers ``buf`` (a
``Buffers``: ``params``, ``grads``, optimizer ``state``, running ``stats`` of BatchNorm,
workspace ``ws`` and its float64 scratch ``acc``). ``mode`` says how BatchNorm and
Dropout behave:

    INFER          running statistics, no dropout (predict, evaluate, validation)
    TRAIN          batch statistics and dropout, running statistics untouched
                   (loss_and_grad: a pure function of the parameters)
    TRAIN_UPDATE   TRAIN, and update the running statistics (each step of fit)

Dropout's mask for update ``step`` is the counter-based stream (net.key, step, block).

The kernels of BatchNorm, Dropout and each loss are chosen by ``net.plan`` at compile
time (kernels._plan): a network without BatchNorm never compiles it. The per-block tables
(``norm``, ``drop``) still say which blocks run them.
"""
from collections import namedtuple

from numba.core import types

from ._jit import internal_overload, kernel
from ._activations import (EXP, IDENTITY, SIGMOID, SOFTMAX, activation_forward,
                           bias_activation_forward, derivative_inplace, row_sum)
from ._conv import H_OUT, W_OUT, col2im, fold_bias, im2col, maxpool_backward, maxpool_forward, \
    unfold_bias
from ._batchnorm import batchnorm_backward, batchnorm_forward, batchnorm_inference, update_running
from ._dropout import dropout_activation_backward, dropout_forward
from ._losses import (
    BINARY_CROSSENTROPY,
    CATEGORICAL_CROSSENTROPY,
    MSE,
    POISSON,
    binary_crossentropy,
    categorical_crossentropy,
    correct_binary,
    correct_categorical,
    exp_poisson,
    mse,
    poisson,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
)
from ._matmul import matmul, matmul_parallel
from ._plan import by_plan
from ._layout import (ACT, B_OFF, COL_UNIT, CONV, DENSE, F_OFF, G_OFF, H_UNIT, KIND, LIN_UNIT,
                      NORM, R_OFF, W_COLS, W_OFF, W_ROWS, split_parts)
from ._random import stream
from ._tasks import run, unpack
from ._views import column_major, row_major, segment

INFER, TRAIN, TRAIN_UPDATE = range(3)

Buffers = namedtuple("Buffers", "params grads state stats ws acc")


@kernel(inline="always")
def part_size(net, cap):
    """(P, samples per part, workspace length per part) of a minibatch of at most ``cap``
    samples under a split plan (kernels._split)."""
    P = split_parts(net.parts, cap)
    part = (cap + P - 1) // P
    return P, part, net.ws_units * part + net.ws_fixed


@kernel(inline="always")
def workspace_size(net, cap):
    """Length of the flat workspace for minibatches of at most ``cap`` samples (for a
    split plan, kernels._split: its parts' workspaces, then parts 1 … P − 1's gradients)."""
    if not net.plan.split:
        return net.ws_units * cap + net.ws_fixed
    P, _, size = part_size(net, cap)
    return P * size + (P - 1) * net.seg.bounds[-1]


@kernel(inline="always")
def is_fused(act_last, loss_code):
    """True when the output activation and the loss are one fused kernel."""
    return (act_last == SOFTMAX and loss_code == CATEGORICAL_CROSSENTROPY) or (
        act_last == SIGMOID and loss_code == BINARY_CROSSENTROPY) or (
        act_last == EXP and loss_code == POISSON)


@kernel(inline="always")
def matrix_view(flat, offset, rows, cols):
    """The (rows, cols) column-major matrix stored at flat[offset:]: column j holds sample j."""
    return column_major(flat, offset, rows, cols)


@kernel(inline="always")
def weight_view(flat, net, l):
    """W_l inside ``params`` or ``grads``, row-major: (n_{l+1} × n_l) for a dense block,
    (c_out × c_in·kh·kw) for a convolution (kernels._conv)."""
    return row_major(flat, net.table[l, W_OFF], net.table[l, W_ROWS], net.table[l, W_COLS])


@kernel(inline="always")
def bias_view(flat, net, l):
    """b_l inside ``params`` or ``grads``: one per row of W_l."""
    return segment(flat, net.table[l, B_OFF], net.table[l, W_ROWS])


@kernel(inline="always")
def gamma_view(flat, net, l):
    """γ_l of BatchNorm block l inside ``params`` or ``grads``."""
    return segment(flat, net.table[l, G_OFF], net.sizes[l + 1])


@kernel(inline="always")
def beta_view(flat, net, l):
    """β_l of BatchNorm block l inside ``params`` or ``grads``."""
    n = net.sizes[l + 1]
    return segment(flat, net.table[l, G_OFF] + n, n)


@kernel(inline="always")
def running_mean_view(stats, net, l):
    """The running mean of BatchNorm block l (n_{l+1},) inside ``stats``."""
    return segment(stats, net.table[l, R_OFF], net.sizes[l + 1])


@kernel(inline="always")
def running_var_view(stats, net, l):
    """The running variance of BatchNorm block l (n_{l+1},) inside ``stats``."""
    n = net.sizes[l + 1]
    return segment(stats, net.table[l, R_OFF] + n, n)


@kernel(inline="always")
def output_view(ws, net, cap, l, nb):
    """A_l (n_l × nb) for a batch of nb samples; A_0 is the gathered input X."""
    return matrix_view(ws, net.a_unit[l] * cap, net.sizes[l], nb)


@kernel(inline="always")
def target_view(ws, net, cap, nb):
    """The gathered targets T (n_L × nb)."""
    return matrix_view(ws, net.sizes[0] * cap, net.sizes[net.sizes.shape[0] - 1], nb)


@kernel(inline="always")
def factor_view(ws, net, cap, nb):
    """The per-sample loss factors c (nb,) of a weighted minibatch (kernels._losses)."""
    L = net.sizes.shape[0] - 1
    return segment(ws, (net.sizes[0] + net.sizes[L]) * cap, nb)


@kernel(inline="always")
def delta_view(ws, net, cap, l, nb):
    """D_l, the loss gradient at A_l (l = 1..L)."""
    return matrix_view(ws, net.d_unit[l] * cap, net.sizes[l], nb)


@kernel(inline="always")
def normalized_view(ws, net, cap, l, nb):
    """Ẑ of BatchNorm block l (n_{l+1} × nb)."""
    return matrix_view(ws, net.table[l, H_UNIT] * cap, net.sizes[l + 1], nb)


@kernel(inline="always")
def feature_view(ws, net, cap, l, k):
    """Per-feature buffer k (0: μ, 1: 1/σ) of BatchNorm block l."""
    n = net.sizes[l + 1]
    return segment(ws, net.ws_units * cap + net.table[l, F_OFF] + k * n, n)


@kernel(inline="always")
def cols_view(ws, net, cap, l, nb):
    """im2col's columns of convolution block l (K × nb·P, row-major: kernels._conv); the
    backward pass reuses them for Wᵀ·dY."""
    t = net.table
    return row_major(ws, t[l, COL_UNIT] * cap, t[l, W_COLS], nb * t[l, H_OUT] * t[l, W_OUT])


@kernel(inline="always")
def lin_view(ws, net, cap, l, nb):
    """The product W·cols of convolution block l (c_out × nb·P, row-major), and dY in that
    layout in the backward pass."""
    t = net.table
    return row_major(ws, t[l, LIN_UNIT] * cap, t[l, W_ROWS], nb * t[l, H_OUT] * t[l, W_OUT])


@kernel(inline="always")
def argmax_view(ws, net, cap, l, nb):
    """The offsets of the maxima of pooling block l's windows (n_{l+1} × nb)."""
    return matrix_view(ws, net.table[l, COL_UNIT] * cap, net.sizes[l + 1], nb)


@kernel(inline="always")
def dropout_stream(net, step, site):
    """The dropout stream of block ``site``'s input at update ``step``."""
    return stream(net.key, step, site)


@kernel
def gather_batch(X, T, perm, start, Xb, Tb):
    """Copy samples perm[start:start+nb] of X (n, n_0) and T (n, n_L) into the columns of
    Xb (n_0, nb) and Tb (n_L, nb), column-major (``output_view(ws, net, cap, 0, nb)`` and
    ``target_view(ws, net, cap, nb)``). It takes no ``net``: one compile for every plan."""
    xb, tb = Xb.T, Tb.T
    for j in range(xb.shape[0]):
        _copy_row(X[perm[start + j]], xb[j])
        _copy_row(T[perm[start + j]], tb[j])


def minibatch_weight(sw, perm, begin, nb):  # pragma: no cover - replaced by the overload
    """Σ sw[perm[begin + j]] over the minibatch (0 without sample weights, sw None)."""
    raise NotImplementedError


@internal_overload(minibatch_weight)
def _minibatch_weight_impl(sw, perm, begin, nb):
    """Chosen by sw's type while compiling (sw may be a local, which branch pruning
    does not see)."""
    if isinstance(sw, types.NoneType):
        return lambda sw, perm, begin, nb: 0.0

    def weight(sw, perm, begin, nb):
        total = 0.0
        for j in range(nb):
            total += sw[perm[begin + j]]
        return total
    return weight


#: samples per block of the parallel gather
GATHER_BLOCK = 16


@kernel
def _gather_batch_parallel(X, T, perm, start, Xb, Tb):
    """gather_batch with blocks of GATHER_BLOCK samples across threads."""
    nb = Xb.shape[1]
    run(_gather_block, (nb + GATHER_BLOCK - 1) // GATHER_BLOCK, (X, T, perm, start, Xb, Tb))


@kernel
def _gather_block(q, args):
    X, T, perm, start, Xb, Tb = unpack(args)
    xb, tb = Xb.T, Tb.T
    for j in range(q * GATHER_BLOCK, min(xb.shape[0], (q + 1) * GATHER_BLOCK)):
        _copy_row(X[perm[start + j]], xb[j])
        _copy_row(T[perm[start + j]], tb[j])


#: gather(net.plan, X, T, perm, start, Xb, Tb): gather_batch, across threads for a
#: parallel plan
gather = by_plan("parallel", {True: _gather_batch_parallel, False: gather_batch})


@kernel
def _copy_row(src, dst):
    for c in range(src.shape[0]):
        dst[c] = src[c]


@kernel
def zero(x):
    """x <- 0 for a 1-D x (a loop, for the reason given in copy_columns)."""
    for i in range(x.shape[0]):
        x[i] = 0


@kernel
def copy_columns(src, dst):
    """dst = src for two matrices of one shape, column by column (the views of the
    workspace are column-major). A loop, not ``dst[:, :] = src``: Numba's slice
    assignment compiles its shape-mismatch message (string formatting), a second or
    so of every cold compile for a check these views never need."""
    for j in range(dst.shape[1]):
        for i in range(dst.shape[0]):
            dst[i, j] = src[i, j]


@kernel(inline="always")
def block_activation(net, l, logits):
    """Block l's activation code as the passes apply it: identity for the last block
    when ``logits`` (a fused output, whose loss kernel applies f)."""
    L = net.sizes.shape[0] - 1
    return IDENTITY if (logits and l == L - 1) else net.table[l, ACT]


@kernel
def _batchnorm_epilogue(net, buf, l, Y, cap, mode, act):
    """Y = f(BatchNorm(Z)) for block l: batch statistics (running ones in INFER)."""
    gamma, beta = gamma_view(buf.params, net, l), beta_view(buf.params, net, l)
    mean, istd = feature_view(buf.ws, net, cap, l, 0), feature_view(buf.ws, net, cap, l, 1)
    if mode == INFER:
        batchnorm_inference(Y, gamma, beta, running_mean_view(buf.stats, net, l),
                            running_var_view(buf.stats, net, l), net.eps[l], act, mean, istd)
        return
    batchnorm_forward(Y, gamma, beta, net.eps[l], act,
                      normalized_view(buf.ws, net, cap, l, Y.shape[1]), mean, istd, buf.acc)
    if mode == TRAIN_UPDATE:
        n = Y.shape[0]
        update_running(running_mean_view(buf.stats, net, l), running_var_view(buf.stats, net, l),
                       buf.acc[:n], buf.acc[n:2 * n], net.momentum[l], Y.shape[1])


@kernel
def _batchnorm_delta(net, buf, l, cap, D):
    """D = dL/dY of BatchNorm block l becomes dL/dZ; dγ_l, dβ_l; db_l = 0."""
    nb = D.shape[1]
    batchnorm_backward(D, normalized_view(buf.ws, net, cap, l, nb),
                       gamma_view(buf.params, net, l), feature_view(buf.ws, net, cap, l, 1),
                       gamma_view(buf.grads, net, l), beta_view(buf.grads, net, l), buf.acc)
    zero(bias_view(buf.grads, net, l))


@kernel
def _whole_product(a, b, out, parts):
    """out = a · b by ``matmul``, in one block whatever ``parts`` says."""
    matmul(a, b, out)


#: product(net.plan, a, b, out, net.parts): out = a · b, split into net.parts blocks across
#: Numba's threads for parallel plans (kernels._matmul.matmul_parallel)
product = by_plan("parallel", {True: matmul_parallel, False: _whole_product})

#: BatchNorm's forward and backward pass of block l (for plans with BatchNorm)
batchnorm_epilogue = by_plan("norm", {True: _batchnorm_epilogue, False: None})
batchnorm_delta = by_plan("norm", {True: _batchnorm_delta, False: None})


@kernel
def _dropout_input(net, X, site, step):
    dropout_forward(X, net.drop[site], dropout_stream(net, step, site))


@kernel
def _dropout_delta(net, act, A, D, site, step):
    dropout_activation_backward(act, A, D, net.drop[site], dropout_stream(net, step, site))


#: dropout of block site's input at update step, and of its gradient with f' (for plans
#: with Dropout)
dropout_input = by_plan("dropout", {True: _dropout_input, False: None})
dropout_delta = by_plan("dropout", {True: _dropout_delta, False: None})


#: elements of a block's (units × batch) output from which a parallel plan runs its
#: epilogue and its delta + db in blocks across threads. Measured (AMD Zen 4): a
#: parallel region costs microseconds to start, more than the serial loops take on
#: mnist's 256 × 128 outputs (epilogue 1.5 µs, delta + db 3 µs per layer)
PARALLEL_ELEMENTS = 1 << 18
#: samples per block of a parallel epilogue or f': fixed, so that the blocks do not
#: depend on the thread count (each element is computed as by the serial loops)
BLOCK_COLUMNS = 64


@kernel(inline="always")
def _columns(Y, lo, n):
    """Columns lo:lo+BLOCK_COLUMNS of the column-major Y, typed column-major (a plain
    slice would be typed 'A', its loops compiled for any stride)."""
    return Y.T[lo:min(n, lo + BLOCK_COLUMNS)].T


@kernel
def _bias_activation_blocks(Y, b, act):
    """bias_activation_forward over blocks of BLOCK_COLUMNS samples across threads."""
    m, n = Y.shape
    if m * n < PARALLEL_ELEMENTS:
        bias_activation_forward(Y, b, act)
        return
    run(_bias_activation_block, (n + BLOCK_COLUMNS - 1) // BLOCK_COLUMNS, (Y, b, act))


@kernel
def _bias_activation_block(q, args):
    Y, b, act = unpack(args)
    bias_activation_forward(_columns(Y, q * BLOCK_COLUMNS, Y.shape[1]), b, act)


#: bias_activation(net.plan, Y, b, act): Y = f(Y + b), across threads for a parallel plan
bias_activation = by_plan("parallel", {True: _bias_activation_blocks,
                                       False: bias_activation_forward})


@kernel
def _delta_bias(act, A, D, db):
    """D = D ⊙ f'(Z) from the output A, and db = row-sum(D)."""
    derivative_inplace(act, A, D)
    row_sum(D, db)


@kernel
def _delta_bias_blocks(act, A, D, db):
    """_delta_bias with f' over blocks of BLOCK_COLUMNS samples across threads; the row
    sums stay serial (measured on wide's 2048 × 512: row blocks summed in a parallel
    region ran 1.7× slower per thread than the one vectorized pass, 108 µs against 65)."""
    m, n = A.shape
    if m * n >= PARALLEL_ELEMENTS:
        run(_derivative_block, (n + BLOCK_COLUMNS - 1) // BLOCK_COLUMNS, (act, A, D))
    else:
        derivative_inplace(act, A, D)
    row_sum(D, db)


@kernel
def _derivative_block(q, args):
    act, A, D = unpack(args)
    lo, n = q * BLOCK_COLUMNS, A.shape[1]
    derivative_inplace(act, _columns(A, lo, n), _columns(D, lo, n))


#: delta_bias(net.plan, act, A, D, db): _delta_bias, across threads for a parallel plan
delta_bias = by_plan("parallel", {True: _delta_bias_blocks, False: _delta_bias})


@kernel
def block_epilogue(net, buf, l, Y, cap, mode, act):
    """Block l's pass after its product Z = W_l Ã_l (in Y): Y = f(Z + b_l), or BatchNorm
    with batch statistics (and the running statistics updated in TRAIN_UPDATE) or, in
    INFER, with the running statistics, then f."""
    if net.table[l, NORM]:
        batchnorm_epilogue(net.plan, net, buf, l, Y, cap, mode, act)
    else:
        bias_activation(net.plan, Y, bias_view(buf.params, net, l), act)


@kernel
def _conv_forward(net, buf, l, A, Y, cap, act):
    """Y = f(conv(A) + b) of convolution block l, through im2col and one product."""
    nb = A.shape[1]
    cols, lin = cols_view(buf.ws, net, cap, l, nb), lin_view(buf.ws, net, cap, l, nb)
    im2col(A, net.table[l], cols)
    product(net.plan, weight_view(buf.params, net, l), cols, lin, net.parts)
    unfold_bias(lin, bias_view(buf.params, net, l), Y)
    if act != IDENTITY:
        activation_forward(act, Y, Y)


@kernel
def _pool_forward(net, buf, l, A, Y, cap, act):
    """Y = f(maxpool(A)) of pooling block l, the maxima's offsets kept for backward."""
    maxpool_forward(A, net.table[l], Y, argmax_view(buf.ws, net, cap, l, A.shape[1]))
    if act != IDENTITY:
        activation_forward(act, Y, Y)


@kernel
def _conv_backward(net, buf, l, A, D, cap, inputs):
    """From D = dL/dY of convolution block l: db_l, dW_l = D·colsᵀ and, with ``inputs``,
    D_l = col2im(Wᵀ·D) (the columns overwritten once dW_l is made)."""
    nb = D.shape[1]
    cols, lin = cols_view(buf.ws, net, cap, l, nb), lin_view(buf.ws, net, cap, l, nb)
    fold_bias(D, lin, bias_view(buf.grads, net, l))
    product(net.plan, lin, cols.T, weight_view(buf.grads, net, l), net.parts)
    if inputs:
        product(net.plan, weight_view(buf.params, net, l).T, lin, cols, net.parts)
        col2im(cols, net.table[l], delta_view(buf.ws, net, cap, l, nb))


@kernel
def _pool_backward(net, buf, l, A, D, cap, inputs):
    """From D = dL/dY of pooling block l: with ``inputs``, D_l (each gradient to its
    window's maximum)."""
    if inputs:
        nb = D.shape[1]
        maxpool_backward(D, argmax_view(buf.ws, net, cap, l, nb), net.table[l],
                         delta_view(buf.ws, net, cap, l, nb))


@kernel
def _either_forward(net, buf, l, A, Y, cap, act):
    """The forward of block l, a convolution or a pooling (plans with both)."""
    if net.table[l, KIND] == CONV:
        _conv_forward(net, buf, l, A, Y, cap, act)
    else:
        _pool_forward(net, buf, l, A, Y, cap, act)


@kernel
def _either_backward(net, buf, l, A, D, cap, inputs):
    """The backward of block l, a convolution or a pooling (plans with both)."""
    if net.table[l, KIND] == CONV:
        _conv_backward(net, buf, l, A, D, cap, inputs)
    else:
        _pool_backward(net, buf, l, A, D, cap, inputs)


_KINDS = ("conv", "pool")
#: whether a plan has blocks other than dense ones (a constant of the plan)
has_spatial = by_plan(_KINDS, {(False, False): False, (True, False): True,
                               (False, True): True, (True, True): True})
#: the forward and backward of a convolution or pooling block l, for the kinds the plan
#: has (a dense-only plan compiles none)
spatial_forward = by_plan(_KINDS, {(False, False): None, (True, False): _conv_forward,
                                   (False, True): _pool_forward, (True, True): _either_forward})
spatial_backward = by_plan(_KINDS, {(False, False): None, (True, False): _conv_backward,
                                    (False, True): _pool_backward,
                                    (True, True): _either_backward})


@kernel(inline="always")
def is_spatial(net, l):
    """True when block l is a convolution or a pooling."""
    return has_spatial(net.plan) and net.table[l, KIND] != DENSE


@kernel
def forward(net, buf, X, cap, mode, step, logits):
    """Forward pass of the columns of X (n_0, nb): A_{l+1} = f_l(W_l Ã_l + b_l) or its
    BatchNorm form, dropping each block's input in the training modes. With input
    dropout, X must lie in the workspace (it is dropped in place). With ``logits`` the
    last block stops at its logits (for a fused loss, which applies f). A_L is left in
    ``output_view(buf.ws, net, cap, L, nb)``."""
    L = net.sizes.shape[0] - 1
    nb = X.shape[1]
    training = mode != INFER
    if training and net.drop[0] > 0.0:
        dropout_input(net.plan, net, X, 0, step)
    A = X
    for l in range(L):
        Y = output_view(buf.ws, net, cap, l + 1, nb)
        act = block_activation(net, l, logits)
        if is_spatial(net, l):
            spatial_forward(net.plan, net, buf, l, A, Y, cap, act)
        else:
            product(net.plan, weight_view(buf.params, net, l), A, Y, net.parts)
            block_epilogue(net, buf, l, Y, cap, mode, act)
        if training and l + 1 < L and net.drop[l + 1] > 0.0:
            dropout_input(net.plan, net, Y, l + 1, step)
        A = Y


@kernel
def _softmax_output(Z, T, G, c):
    """The fused softmax cross-entropy, probabilities written over the logits Z."""
    return softmax_cross_entropy(Z, T, Z, G, c)


@kernel
def _exp_output(Z, T, G, c):
    """The fused exp + Poisson loss, the means written over their logarithms Z."""
    return exp_poisson(Z, T, Z, G, c)


@kernel
def _sigmoid_output(Z, T, G, c):
    """The fused sigmoid binary cross-entropy, probabilities written over the logits Z."""
    return sigmoid_binary_cross_entropy(Z, T, Z, G, c)


#: output_loss(net.plan, Y, T, G, c): the loss of the last layer's output Y against T and
#: G = dL/dY — or, fused, dL/dlogits, with the logits Y overwritten by the probabilities;
#: c: per-sample factors or None (kernels._losses)
output_loss = by_plan(("loss", "fused"), {
    (MSE, False): mse,
    (BINARY_CROSSENTROPY, False): binary_crossentropy,
    (CATEGORICAL_CROSSENTROPY, False): categorical_crossentropy,
    (POISSON, False): poisson,
    (BINARY_CROSSENTROPY, True): _sigmoid_output,
    (CATEGORICAL_CROSSENTROPY, True): _softmax_output,
    (POISSON, True): _exp_output,
})
#: correct_predictions(net.plan, P, T): losses.count_correct for the plan's loss
correct_predictions = by_plan("loss", {
    MSE: 0, BINARY_CROSSENTROPY: correct_binary, CATEGORICAL_CROSSENTROPY: correct_categorical,
    POISSON: 0})


@kernel
def block_delta(net, buf, l, cap, nb, step):
    """D_{l+1} (the loss gradient at block l's stored output) becomes dL/dZ: through the
    dropout of the next block's input and f', then, for a dense block, BatchNorm (dγ_l,
    dβ_l; db_l = 0) or db_l = row-sum (a convolution's db is made by its backward)."""
    L = net.sizes.shape[0] - 1
    act = block_activation(net, l, net.fused)
    D = delta_view(buf.ws, net, cap, l + 1, nb)
    A = output_view(buf.ws, net, cap, l + 1, nb)
    dropped = l + 1 < L and net.drop[l + 1] > 0.0
    if dropped:
        dropout_delta(net.plan, net, act, A, D, l + 1, step)
    if is_spatial(net, l):
        if not dropped:
            derivative_inplace(act, A, D)
    elif net.table[l, NORM]:
        if not dropped:
            derivative_inplace(act, A, D)
        batchnorm_delta(net.plan, net, buf, l, cap, D)
    elif dropped:
        row_sum(D, bias_view(buf.grads, net, l))
    else:
        delta_bias(net.plan, act, A, D, bias_view(buf.grads, net, l))


@kernel
def backward(net, buf, X, cap, step):
    """Backward pass from D_L (the loss gradient at the output): fills every dW_l, db_l
    (0 for BatchNorm blocks), dγ_l and dβ_l."""
    nb = X.shape[1]
    for l in range(net.sizes.shape[0] - 2, -1, -1):
        block_delta(net, buf, l, cap, nb, step)
        D = delta_view(buf.ws, net, cap, l + 1, nb)
        A_prev = X if l == 0 else output_view(buf.ws, net, cap, l, nb)
        if is_spatial(net, l):
            spatial_backward(net.plan, net, buf, l, A_prev, D, cap, l > 0)
        else:
            product(net.plan, D, A_prev.T, weight_view(buf.grads, net, l), net.parts)  # dW
            if l > 0:                                                                  # dX
                product(net.plan, weight_view(buf.params, net, l).T, D,
                        delta_view(buf.ws, net, cap, l, nb), net.parts)


@kernel
def forward_backward(net, buf, X, T, cap, mode, step):
    """Loss of one minibatch (X (n_0, nb), T (n_L, nb)) and its gradient in ``grads``."""
    forward(net, buf, X, cap, mode, step, net.fused)
    loss = output_gradient(net, buf, T, cap, 1.0, None)
    backward(net, buf, X, cap, step)
    return loss


@kernel
def output_gradient(net, buf, T, cap, share, c):
    """After ``forward``: the mean loss of the outputs A_L against T (n_L, nb), and
    D_L = ``share`` × its gradient at A_L (at the logits for a fused loss), where
    ``backward`` starts — ``share`` (nb over a larger minibatch's size) makes the samples'
    gradient their part of that minibatch's (backpropagation is linear). ``c``: the
    samples' loss factors (a weighted minibatch) or None."""
    L = net.sizes.shape[0] - 1
    nb = T.shape[1]
    D = delta_view(buf.ws, net, cap, L, nb)
    loss = output_loss(net.plan, output_view(buf.ws, net, cap, L, nb), T, D, c)
    if share != 1.0:
        scale_columns(D, share)
    return loss


@kernel
def scale_columns(D, factor):
    """D <- factor · D, in place (D column-major)."""
    s = D.dtype.type(factor)
    for j in range(D.shape[1]):
        for i in range(D.shape[0]):
            D[i, j] *= s
