"""CUDA twin of fastnn.kernels.network/training: a whole network on the device.

The same flat layout as on the CPU — params, grads, optimizer state and one flat
workspace, all device arrays — with views made on the host (no transfer). The host
loop only launches kernels: losses and correct counts are summed on the device and
copied back once per call.
"""
import numpy as np

from ..activations import IDENTITY
from .activations import activation_backward_bias
from .backend import cuda
from . import config
from .dense import backprop_inputs, backprop_weights, dense_forward
from .losses import accumulate_correct, accumulate_fused, accumulate_loss
from .optimizers import optimizer_update


def matrix_view(flat, offset, rows, cols):
    """The (rows, cols) column-major matrix at flat[offset:]."""
    return flat[offset:offset + rows * cols].reshape(cols, rows).T


def layer_views(flat, w_off, b_off, sizes, l):
    rows, cols = int(sizes[l + 1]), int(sizes[l])
    W = flat[int(w_off[l]):int(w_off[l]) + rows * cols].reshape(rows, cols)
    return W, flat[int(b_off[l]):int(b_off[l]) + rows]


@cuda.jit
def _gather(X, perm, start, out):
    """out[:, j] = X[perm[start + j], :] (out is (d, nb), X is (n, d))."""
    c, j = cuda.grid(2)
    if c < out.shape[0] and j < out.shape[1]:
        out[c, j] = X[perm[start + j], c]


class DeviceNetwork:
    """Buffers and kernel launches of one model on the device."""

    def __init__(self, sizes, acts, w_off, b_off, loss_code, fused, params, dtype):
        self.sizes = [int(s) for s in sizes]
        self.acts, self.w_off, self.b_off = list(acts), list(w_off), list(b_off)
        self.loss_code, self.fused, self.dtype = loss_code, fused, dtype
        self.params = cuda.to_device(params)
        self.grads = cuda.device_array_like(params)
        self.cap, self.ws = 0, None
        self.acc = cuda.to_device(np.zeros(1))
        self.count = cuda.to_device(np.zeros(1, dtype=np.int64))

    def reserve(self, cap):
        """A workspace [X | T | A_1..A_L | D_1..D_L] for minibatches of ``cap``."""
        if cap > self.cap:
            total = (self.sizes[0] + self.sizes[-1] + 2 * sum(self.sizes[1:])) * cap
            self.ws, self.cap = cuda.device_array(total, dtype=self.dtype), cap
        s, cap = self.sizes, self.cap
        offsets = [0, s[0] * cap]
        off = (s[0] + s[-1]) * cap
        self.a_off, self.d_off = [None], [None]
        for width in s[1:]:
            self.a_off.append(off)
            off += width * cap
        for width in s[1:]:
            self.d_off.append(off)
            off += width * cap
        self.x_off, self.t_off = offsets

    def _out(self, l, nb):
        return matrix_view(self.ws, self.a_off[l], self.sizes[l], nb)

    def _delta(self, l, nb):
        return matrix_view(self.ws, self.d_off[l], self.sizes[l], nb)

    def forward(self, X, nb, fused):
        L = len(self.acts)
        A = X
        for l in range(L):
            act = IDENTITY if (fused and l == L - 1) else self.acts[l]
            W, b = layer_views(self.params, self.w_off, self.b_off, self.sizes, l)
            Y = self._out(l + 1, nb)
            dense_forward(W, b, A, act, Y)
            A = Y
        return A

    def loss(self, Y, T, nb, weight):
        G = self._delta(len(self.acts), nb)
        if self.fused:
            accumulate_fused(self.loss_code, Y, T, Y, G, self.acc, weight)
        else:
            accumulate_loss(self.loss_code, Y, T, G, self.acc, weight)
        accumulate_correct(self.loss_code, Y, T, self.count)

    def backward(self, X, nb):
        L = len(self.acts)
        for l in range(L - 1, -1, -1):
            act = IDENTITY if (self.fused and l == L - 1) else self.acts[l]
            D, A = self._delta(l + 1, nb), self._out(l + 1, nb)
            dW, db = layer_views(self.grads, self.w_off, self.b_off, self.sizes, l)
            activation_backward_bias(act, A, D, D, db)
            backprop_weights(D, X if l == 0 else self._out(l, nb), dW)
            if l > 0:
                W, _ = layer_views(self.params, self.w_off, self.b_off, self.sizes, l)
                backprop_inputs(W, D, self._delta(l, nb))

    def _gather(self, X, perm, start, nb, offset, width):
        out = matrix_view(self.ws, offset, width, nb)
        blocks, threads = config.grid_2d(width, nb)
        _gather[blocks, threads](X, perm, start, out)
        return out

    def _reset_sums(self):
        self.acc.copy_to_device(np.zeros(1))
        self.count.copy_to_device(np.zeros(1, dtype=np.int64))

    def _sums(self):
        return float(self.acc.copy_to_host()[0]), int(self.count.copy_to_host()[0])

    def train_epoch(self, X, T, perm, batch_size, state, opt_code, hp, step, bounds, l1, l2):
        """X, T, perm, state, bounds, l1, l2 on the device; returns (loss sum, correct, step)."""
        self.reserve(batch_size)
        self._reset_sums()
        n = perm.shape[0]
        for start in range(0, n, batch_size):
            nb = min(batch_size, n - start)
            Xb = self._gather(X, perm, start, nb, self.x_off, self.sizes[0])
            Tb = self._gather(T, perm, start, nb, self.t_off, self.sizes[-1])
            Y = self.forward(Xb, nb, self.fused)
            self.loss(Y, Tb, nb, float(nb))
            self.backward(Xb, nb)
            optimizer_update(opt_code, self.params, self.grads, state, hp, step, bounds, l1, l2)
            step += 1
        return (*self._sums(), step)

    def evaluate(self, X, T, perm, cap):
        """(loss sum, correct) over the samples, in chunks of ``cap``."""
        self.reserve(cap)
        self._reset_sums()
        n = perm.shape[0]
        for start in range(0, n, cap):
            nb = min(cap, n - start)
            Xb = self._gather(X, perm, start, nb, self.x_off, self.sizes[0])
            Tb = self._gather(T, perm, start, nb, self.t_off, self.sizes[-1])
            self.loss(self.forward(Xb, nb, self.fused), Tb, nb, float(nb))
        return self._sums()

    def predict(self, X, perm, cap, out):
        """out (host, (n, n_L)) = the network's outputs, copied back once."""
        self.reserve(cap)
        n = perm.shape[0]
        result = cuda.device_array((self.sizes[-1], n), dtype=self.dtype, order="F")
        for start in range(0, n, cap):
            nb = min(cap, n - start)
            Xb = self._gather(X, perm, start, nb, self.x_off, self.sizes[0])
            Y = self.forward(Xb, nb, False)
            blocks, threads = config.grid_2d(self.sizes[-1], nb)
            _copy_columns[blocks, threads](Y, result, start)
        out[...] = result.copy_to_host().T

    def pull_params(self, params):
        self.params.copy_to_host(params)


@cuda.jit
def _copy_columns(Y, out, start):
    i, j = cuda.grid(2)
    if i < Y.shape[0] and j < Y.shape[1]:
        out[i, start + j] = Y[i, j]

