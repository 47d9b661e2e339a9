"""CUDA twin of fastnn.kernels._network/training: a whole network on the device.

The same ``Network`` tables and the same flat layout as on the CPU — params, grads,
optimizer state, running statistics and one flat workspace, all device arrays — with
views made on the host by the CPU's own view functions (their pure-Python bodies:
slicing, no transfer). The host loop only launches kernels: the passes follow
kernels._network step for step (dropout of block l's input with the stream
(net.key, step, l), block outputs stored dropped, BatchNorm blocks with batch
statistics in training and running statistics in inference, their Dense bias unused
with gradient 0); losses and correct counts are summed on the device and copied back
once per call; the learning rate and the clip factor are evaluated on the device.
"""
import numpy as np

from .. import _network as layout
from .._network import INFER, TRAIN_UPDATE
from .._random import stream
from . import _config as config
from ._activations import derivative_inplace, fill, row_sum
from ._backend import cuda
from ._batchnorm import batchnorm_backward, batchnorm_forward, batchnorm_inference, update_running
from ._dense import backprop_inputs, backprop_weights, dense_forward
from ._dropout import dropout_activation_backward, dropout_forward
from ._losses import accumulate_correct, accumulate_fused, accumulate_loss
from ._matmul import matmul
from ._optimizers import device_segments, on_device, optimizer_update, scratch_size

# The CPU's view functions that only slice, as plain Python (device arrays slice and
# reshape without a transfer); those built on matrix_view are restated below.
weight_view = layout.weight_view.py_func
bias_view = layout.bias_view.py_func
gamma_view = layout.gamma_view.py_func
beta_view = layout.beta_view.py_func
running_mean_view = layout.running_mean_view.py_func
running_var_view = layout.running_var_view.py_func
feature_view = layout.feature_view.py_func
block_activation = layout.block_activation.py_func
workspace_size = layout.workspace_size.py_func


def matrix_view(flat, offset, rows, cols):
    """The (rows, cols) column-major matrix stored at flat[offset:]."""
    return flat[offset:offset + rows * cols].reshape(cols, rows).T


def output_view(ws, net, cap, l, nb):
    """A_l (n_l × nb); A_0 is the gathered input X."""
    return matrix_view(ws, net.a_unit[l] * cap, net.sizes[l], nb)


def target_view(ws, net, cap, nb):
    """The gathered targets T (n_L × nb)."""
    return matrix_view(ws, net.sizes[0] * cap, net.sizes[-1], nb)


def delta_view(ws, net, cap, l, nb):
    """D_l, the loss gradient at A_l (l = 1..L)."""
    return matrix_view(ws, net.d_unit[l] * cap, net.sizes[l], nb)


def normalized_view(ws, net, cap, l, nb):
    """Ẑ of BatchNorm block l (n_{l+1} × nb)."""
    return matrix_view(ws, net.h_unit[l] * cap, net.sizes[l + 1], nb)


@cuda.jit
def _gather(X, perm, start, out):
    """out[:, j] = X[perm[start + j], :] (out is (d, nb), X is (n, d))."""
    c, j = cuda.grid(2)
    if c < out.shape[0] and j < out.shape[1]:
        out[c, j] = X[perm[start + j], c]


@cuda.jit
def _copy_columns(Y, out, start):
    i, j = cuda.grid(2)
    if i < Y.shape[0] and j < Y.shape[1]:
        out[i, start + j] = Y[i, j]


def _gather_into(X, perm, start, out):
    blocks, threads = config.grid_2d(*out.shape)
    _gather[blocks, threads](X, perm, start, out)
    return out


class DeviceNetwork:
    """The buffers of one model on the device (``net`` a layout.Network, ``params`` and
    ``stats`` host vectors, copied over once) and the launches of its passes."""

    def __init__(self, net, params, stats):
        self.net, self.dtype = net, params.dtype
        self.n_blocks = len(net.acts)
        self.params = cuda.to_device(params)
        self.grads = cuda.device_array_like(params)
        self.stats = cuda.to_device(stats) if stats.size else \
            cuda.device_array(1, dtype=self.dtype)
        self.acc = cuda.device_array(max(1, int(net.acc_size)), dtype=np.float64)
        self.loss_sum = cuda.device_array(1, dtype=np.float64)
        self.count = cuda.device_array(1, dtype=np.int64)
        self.cap, self.ws = 0, None
        self.seg = self.scratch = None
        self._schedule = (None, None)

    def reserve(self, cap):
        """A workspace (the CPU's layout) for minibatches of up to ``cap`` samples."""
        if cap > self.cap:
            self.ws = cuda.device_array(int(workspace_size(self.net, cap)), dtype=self.dtype)
            self.cap = cap

    def _stream(self, step, site):
        return stream(self.net.key, step, site)

    # ----------------------------------------------------------------- passes
    def _batchnorm_forward(self, l, Y, mode, act):
        net, ws, cap = self.net, self.ws, self.cap
        gamma, beta = gamma_view(self.params, net, l), beta_view(self.params, net, l)
        mean, istd = feature_view(ws, net, cap, l, 0), feature_view(ws, net, cap, l, 1)
        running_mean = running_mean_view(self.stats, net, l)
        running_var = running_var_view(self.stats, net, l)
        if mode == INFER:
            batchnorm_inference(Y, gamma, beta, running_mean, running_var, net.eps[l], act,
                                mean, istd)
            return
        batchnorm_forward(Y, gamma, beta, net.eps[l], act,
                          normalized_view(ws, net, cap, l, Y.shape[1]), mean, istd, self.acc)
        if mode == TRAIN_UPDATE:
            n = Y.shape[0]
            update_running(running_mean, running_var, self.acc[:n], self.acc[n:2 * n],
                           net.momentum[l], Y.shape[1])

    def forward(self, X, mode, step, logits):
        """kernels._network.forward on the device: X (n_0, nb) in the workspace (dropped
        in place when the input has dropout); returns A_L."""
        net, L, nb = self.net, self.n_blocks, X.shape[1]
        training = mode != INFER
        if training and net.drop[0] > 0.0:
            dropout_forward(X, net.drop[0], self._stream(step, 0))
        A = X
        for l in range(L):
            Y = output_view(self.ws, net, self.cap, l + 1, nb)
            W = weight_view(self.params, net, l)
            act = block_activation(net, l, logits)
            if net.norm[l]:
                matmul(W, A, Y)
                self._batchnorm_forward(l, Y, mode, act)
            else:
                dense_forward(W, bias_view(self.params, net, l), A, act, Y)
            if training and l + 1 < L and net.drop[l + 1] > 0.0:
                dropout_forward(Y, net.drop[l + 1], self._stream(step, l + 1))
            A = Y
        return A

    def loss(self, Y, T):
        """loss_sum += nb · loss(Y, T), count += correct; D_L = the loss gradient (fused:
        Y becomes the probabilities)."""
        net, nb = self.net, Y.shape[1]
        G = delta_view(self.ws, net, self.cap, self.n_blocks, nb)
        if net.fused:
            accumulate_fused(int(net.loss), Y, T, Y, G, self.loss_sum, float(nb))
        else:
            accumulate_loss(int(net.loss), Y, T, G, self.loss_sum, float(nb))
        accumulate_correct(int(net.loss), Y, T, self.count)

    def backward(self, X, step):
        """kernels._network.backward on the device: every dW, db (0 for BatchNorm blocks),
        dγ and dβ from D_L."""
        net, ws, cap, nb = self.net, self.ws, self.cap, X.shape[1]
        L = self.n_blocks
        for l in range(L - 1, -1, -1):
            act = block_activation(net, l, net.fused)
            D, A = delta_view(ws, net, cap, l + 1, nb), output_view(ws, net, cap, l + 1, nb)
            if l + 1 < L and net.drop[l + 1] > 0.0:
                dropout_activation_backward(act, A, D, net.drop[l + 1],
                                            self._stream(step, l + 1))
            else:
                derivative_inplace(act, A, D)
            db = bias_view(self.grads, net, l)
            if net.norm[l]:
                batchnorm_backward(D, normalized_view(ws, net, cap, l, nb),
                                   gamma_view(self.params, net, l),
                                   feature_view(ws, net, cap, l, 1),
                                   gamma_view(self.grads, net, l),
                                   beta_view(self.grads, net, l), self.acc)
                fill(db, 0.0)
            else:
                row_sum(D, db)
            A_prev = X if l == 0 else output_view(ws, net, cap, l, nb)
            backprop_weights(D, A_prev, weight_view(self.grads, net, l))
            if l > 0:
                backprop_inputs(weight_view(self.params, net, l), D,
                                delta_view(ws, net, cap, l, nb))

    # ------------------------------------------------------------------ loops
    def _gather_batch(self, X, T, perm, start, nb, targets=True):
        Xb = _gather_into(X, perm, start, output_view(self.ws, self.net, self.cap, 0, nb))
        if not targets:
            return Xb
        return Xb, _gather_into(T, perm, start, target_view(self.ws, self.net, self.cap, nb))

    def _reset_sums(self):
        fill(self.loss_sum, 0.0)
        fill(self.count, 0)

    def _sums(self):
        return float(self.loss_sum.copy_to_host()[0]), int(self.count.copy_to_host()[0])

    def _device_schedule(self, schedule):
        """The schedule on the device, copied only when it changed."""
        if not isinstance(schedule, np.ndarray):
            return schedule
        host, device = self._schedule
        if host is None or not np.array_equal(host, schedule):
            self._schedule = (schedule.copy(), on_device(schedule))
        return self._schedule[1]

    def train_epoch(self, X, T, perm, batch_size, upd, state, step):
        """kernels._training.train_epoch on the device: X, T, perm and state device
        arrays, ``upd`` an optimizers.Update (its schedule copied over when it changed).
        Returns (loss sum, correct, step count after)."""
        if self.seg is None:
            self.seg = device_segments(self.net.seg)
            self.scratch = cuda.device_array(scratch_size(self.seg), dtype=np.float64)
        upd = upd._replace(schedule=self._device_schedule(upd.schedule))
        self.reserve(batch_size)
        self._reset_sums()
        n = perm.shape[0]
        for start in range(0, n, batch_size):
            Xb, Tb = self._gather_batch(X, T, perm, start, min(batch_size, n - start))
            self.loss(self.forward(Xb, TRAIN_UPDATE, step, self.net.fused), Tb)
            self.backward(Xb, step)
            optimizer_update(upd, self.seg, self.params, self.grads, state, step, self.scratch)
            step += 1
        return (*self._sums(), step)

    def evaluate(self, X, T, perm, cap):
        """(loss sum, correct) over the samples in inference mode, in chunks of ``cap``."""
        self.reserve(cap)
        self._reset_sums()
        n = perm.shape[0]
        for start in range(0, n, cap):
            Xb, Tb = self._gather_batch(X, T, perm, start, min(cap, n - start))
            self.loss(self.forward(Xb, INFER, 0, self.net.fused), Tb)
        return self._sums()

    def predict(self, X, perm, cap, out):
        """out (host, (n, n_L)) = the network's outputs in inference mode, copied back
        once."""
        self.reserve(cap)
        n = perm.shape[0]
        result = cuda.device_array((int(self.net.sizes[-1]), n), dtype=self.dtype, order="F")
        for start in range(0, n, cap):
            nb = min(cap, n - start)
            Y = self.forward(self._gather_batch(X, None, perm, start, nb, targets=False),
                             INFER, 0, False)
            blocks, threads = config.grid_2d(*Y.shape)
            _copy_columns[blocks, threads](Y, result, start)
        out[...] = result.copy_to_host().T

    def pull(self, params, stats):
        """Copy the parameters and running statistics into the host arrays."""
        self.params.copy_to_host(params)
        if stats.size:
            self.stats.copy_to_host(stats)
