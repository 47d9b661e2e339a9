"""CUDA twin of fastnn.kernels._network: a whole network's passes on the device, with
the CPU's names and argument order.

``net`` and ``buf`` come from ``to_device`` (kernels.cuda._buffers): the CPU's tables,
read on the host, and ``Buffers`` of device arrays in the CPU's flat layout, cut by the
CPU's own view functions (their Python bodies: slicing and reshaping, no transfer). The
passes follow kernels._network step for step (dropout of block l's input with the
stream (net.key, step, l), block outputs stored dropped, BatchNorm blocks with batch
statistics in training and running statistics in inference, their Dense bias unused
with gradient 0). Each function only launches kernels: nothing waits for the device,
except ``forward_backward``, which returns the loss as the CPU's does (one copy back;
``train_batches`` sums its losses on the device instead).
"""
import numpy as np

from .. import _network as host
from .._layout import H_UNIT, NORM
from .._network import INFER, TRAIN_UPDATE
from .._random import stream
from .._views import column_major
from . import _config as config
from ._activations import derivative_inplace, fill, row_sum
from ._backend import cuda
from ._batchnorm import batchnorm_backward, batchnorm_forward, batchnorm_inference, update_running
from ._buffers import sums_view
from ._dense import backprop_inputs, backprop_weights, dense_forward
from ._dropout import dropout_activation_backward, dropout_forward
from ._losses import accumulate_correct, accumulate_fused, accumulate_loss
from ._matmul import matmul

# The CPU's view functions whose bodies only slice and reshape (plain Python on device
# arrays); those built on the compiled matrix_view are restated below.
workspace_size = host.workspace_size.py_func
weight_view = host.weight_view.py_func
bias_view = host.bias_view.py_func
gamma_view = host.gamma_view.py_func
beta_view = host.beta_view.py_func
running_mean_view = host.running_mean_view.py_func
running_var_view = host.running_var_view.py_func
feature_view = host.feature_view.py_func
block_activation = host.block_activation.py_func


def output_view(ws, net, cap, l, nb):
    """A_l (n_l × nb) for a batch of nb samples; A_0 is the gathered input X."""
    return column_major(ws, net.a_unit[l] * cap, net.sizes[l], nb)


def target_view(ws, net, cap, nb):
    """The gathered targets T (n_L × nb)."""
    return column_major(ws, net.sizes[0] * cap, net.sizes[-1], nb)


def factor_view(ws, net, cap, nb):
    """The per-sample loss factors c (nb,) of a weighted minibatch."""
    return ws[(net.sizes[0] + net.sizes[-1]) * cap:(net.sizes[0] + net.sizes[-1]) * cap + nb]


@cuda.jit
def _loss_factors(sw, perm, begin, nb, c):
    """c_j = sw[perm[begin + j]] · nb / Σ_j sw[perm[begin + j]] (0 for a minibatch of
    weight 0): one block, its threads striding over the samples, the sum by thread 0 in
    sample order."""
    t, stride = cuda.threadIdx.x, cuda.blockDim.x
    for j in range(t, nb, stride):
        c[j] = sw[perm[begin + j]]
    cuda.syncthreads()
    scale = cuda.shared.array(1, np.float64)
    if t == 0:
        total = 0.0
        for j in range(nb):
            total += sw[perm[begin + j]]
        scale[0] = nb / total if total > 0.0 else 0.0
    cuda.syncthreads()
    for j in range(t, nb, stride):
        c[j] = sw[perm[begin + j]] * scale[0]


def loss_factors(sw, perm, begin, nb, ws, net, cap):
    """The loss factors of the minibatch perm[begin:begin+nb] weighted by ``sw`` (device
    arrays) in ``factor_view``; None without weights."""
    if sw is None:
        return None
    c = factor_view(ws, net, cap, nb)
    _loss_factors[1, config.THREADS](sw, perm, begin, nb, c)
    return c


def delta_view(ws, net, cap, l, nb):
    """D_l, the loss gradient at A_l (l = 1..L)."""
    return column_major(ws, net.d_unit[l] * cap, net.sizes[l], nb)


def normalized_view(ws, net, cap, l, nb):
    """Ẑ of BatchNorm block l (n_{l+1} × nb)."""
    return column_major(ws, net.table[l, H_UNIT] * cap, net.sizes[l + 1], nb)


@cuda.jit
def _gather(X, perm, start, out):
    """out[:, j] = X[perm[start + j], :] (out is (d, nb), X is (n, d))."""
    c, j = cuda.grid(2)
    if c < out.shape[0] and j < out.shape[1]:
        out[c, j] = X[perm[start + j], c]


def _gather_into(X, perm, start, out):
    blocks, threads = config.grid_2d(*out.shape)
    _gather[blocks, threads](X, perm, start, out)


def gather_batch(X, T, perm, start, Xb, Tb):
    """Copy samples perm[start:start+nb] of X (n, n_0) and T (n, n_L) into the columns of
    Xb (n_0, nb) and Tb (n_L, nb) (``output_view(ws, net, cap, 0, nb)`` and
    ``target_view(ws, net, cap, nb)``); perm a device int64 array."""
    _gather_into(X, perm, start, Xb)
    _gather_into(T, perm, start, Tb)


def _dropout_stream(net, step, site):
    return stream(net.key, step, site)


def _batchnorm_epilogue(net, buf, l, Y, cap, mode, act):
    """Y = f(BatchNorm(Z)) for block l: batch statistics (running ones in INFER)."""
    gamma, beta = gamma_view(buf.params, net, l), beta_view(buf.params, net, l)
    mean, istd = feature_view(buf.ws, net, cap, l, 0), feature_view(buf.ws, net, cap, l, 1)
    running_mean = running_mean_view(buf.stats, net, l)
    running_var = running_var_view(buf.stats, net, l)
    if mode == INFER:
        batchnorm_inference(Y, gamma, beta, running_mean, running_var, net.eps[l], act,
                            mean, istd)
        return
    batchnorm_forward(Y, gamma, beta, net.eps[l], act,
                      normalized_view(buf.ws, net, cap, l, Y.shape[1]), mean, istd, buf.acc)
    if mode == TRAIN_UPDATE:
        n = Y.shape[0]
        update_running(running_mean, running_var, buf.acc[:n], buf.acc[n:2 * n],
                       net.momentum[l], Y.shape[1])


def forward(net, buf, X, cap, mode, step, logits):
    """Forward pass of the columns of X (n_0, nb): A_{l+1} = f_l(W_l Ã_l + b_l) or its
    BatchNorm form, dropping each block's input in the training modes (with input
    dropout, X must lie in the workspace: it is dropped in place). With ``logits`` the
    last block stops at its logits. A_L is left in ``output_view(buf.ws, net, cap, L,
    nb)``."""
    L, nb = net.table.shape[0], X.shape[1]
    training = mode != INFER
    if training and net.drop[0] > 0.0:
        dropout_forward(X, net.drop[0], _dropout_stream(net, step, 0))
    A = X
    for l in range(L):
        Y = output_view(buf.ws, net, cap, l + 1, nb)
        W = weight_view(buf.params, net, l)
        act = block_activation(net, l, logits)
        if net.table[l, NORM]:
            matmul(W, A, Y)
            _batchnorm_epilogue(net, buf, l, Y, cap, mode, act)
        else:
            dense_forward(W, bias_view(buf.params, net, l), A, act, Y)
        if training and l + 1 < L and net.drop[l + 1] > 0.0:
            dropout_forward(Y, net.drop[l + 1], _dropout_stream(net, step, l + 1))
        A = Y


def accumulate_output_loss(net, buf, cap, T, weight, c=None):
    """The loss of A_L against T (n_L × nb) into the device's loss sum (times
    ``weight``; per sample times ``c``, kernels._losses), its gradient into D_L (fused:
    A_L becomes the probabilities), and the correct predictions into its count
    (kernels.cuda._buffers.sums_view)."""
    L, nb = net.table.shape[0], T.shape[1]
    Y, G = output_view(buf.ws, net, cap, L, nb), delta_view(buf.ws, net, cap, L, nb)
    loss_sum, count = sums_view(buf.acc, net)
    if net.fused:
        accumulate_fused(int(net.loss), Y, T, Y, G, loss_sum, float(weight), c)
    else:
        accumulate_loss(int(net.loss), Y, T, G, loss_sum, float(weight), c)
    accumulate_correct(int(net.loss), Y, T, count)


def backward(net, buf, X, cap, step):
    """Backward pass from D_L (the loss gradient at the output): fills every dW_l, db_l
    (0 for BatchNorm blocks), dγ_l and dβ_l."""
    L, nb, ws = net.table.shape[0], X.shape[1], buf.ws
    for l in range(L - 1, -1, -1):
        act = block_activation(net, l, net.fused)
        D, A = delta_view(ws, net, cap, l + 1, nb), output_view(ws, net, cap, l + 1, nb)
        if l + 1 < L and net.drop[l + 1] > 0.0:
            dropout_activation_backward(act, A, D, net.drop[l + 1],
                                        _dropout_stream(net, step, l + 1))
        else:
            derivative_inplace(act, A, D)
        db = bias_view(buf.grads, net, l)
        if net.table[l, NORM]:
            batchnorm_backward(D, normalized_view(ws, net, cap, l, nb),
                               gamma_view(buf.params, net, l), feature_view(ws, net, cap, l, 1),
                               gamma_view(buf.grads, net, l), beta_view(buf.grads, net, l),
                               buf.acc)
            fill(db, 0.0)
        else:
            row_sum(D, db)
        A_prev = X if l == 0 else output_view(ws, net, cap, l, nb)
        backprop_weights(D, A_prev, weight_view(buf.grads, net, l))
        if l > 0:
            backprop_inputs(weight_view(buf.params, net, l), D, delta_view(ws, net, cap, l, nb))


def reset_sums(net, buf):
    """Zero the device's loss sum and correct count."""
    fill(buf.acc[int(net.acc_size):int(net.acc_size) + 2], 0.0)


def read_sums(net, buf):
    """(loss sum, correct count) from the device: the one copy back of a loop."""
    sums = buf.acc[int(net.acc_size):int(net.acc_size) + 2].copy_to_host()
    return float(sums[0]), int(sums[1:].view(np.int64)[0])


def forward_backward(net, buf, X, T, cap, mode, step):
    """Loss of one minibatch (X (n_0, nb), T (n_L, nb)) and its gradient in ``grads``;
    returns the loss (a copy back: waits for the device)."""
    reset_sums(net, buf)
    forward(net, buf, X, cap, mode, step, net.fused)
    accumulate_output_loss(net, buf, cap, T, 1.0)
    backward(net, buf, X, cap, step)
    return read_sums(net, buf)[0]
