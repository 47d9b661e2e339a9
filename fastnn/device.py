"""Training and inference on a CUDA device (``Sequential(..., device="cuda")``).

For the whole of a ``fit``, ``predict`` or ``evaluate`` call, parameters, gradients,
optimizer state, BatchNorm's running statistics and the workspace live on the device;
data are copied there once per call and the shuffled order once per epoch (the
learning-rate schedule too, when a callback changed it); the only copies back are the
summed loss and correct count (two scalars per epoch and per validation) and, when
asked and at the end, the parameters, running statistics and optimizer state. No
kernel waits on a host transfer: the learning rate and the clip factor of each update
are computed on the device.
"""
import numpy as np

from fastnn.epochs import EpochResult, epoch_order
from fastnn.kernels import contract


def _cuda():
    return contract.cuda().require_cuda()


def _on_device(model, cap, state=None):
    """The model's (net, buf) on the device, with a workspace for ``cap`` samples."""
    return contract.cuda().to_device(model.net, model._buffers(cap, state))


def _pull(buf):
    """copy_state(params, stats): the device's parameters and running statistics into
    the host arrays given."""
    def copy_state(params, stats):
        buf.params.copy_to_host(params)
        if stats.size:
            buf.stats.copy_to_host(stats)
    return copy_state


def fit(model, X, T, val, epochs, batch_size, optimizer, clip, shuffle, rng, eval_chunk, run):
    """The epochs of ``Sequential.fit`` on the device, as a generator of
    fastnn.epochs.EpochResult. Ctrl-C (``run.stopped``) ends training at the next epoch
    boundary. Closing it copies the parameters, running statistics and optimizer state
    back to the host."""
    kernels = contract.cuda()
    cuda = kernels.require_cuda()
    cap = batch_size if val is None else max(batch_size, min(eval_chunk, val[0].shape[0]))
    net, buf = _on_device(model, cap, optimizer.bind(model))
    X_d, T_d = cuda.to_device(X), cuda.to_device(T)
    perm = np.arange(X.shape[0], dtype=np.int64)
    if val is not None:
        Xv_d, Tv_d = cuda.to_device(val[0]), cuda.to_device(val[1])
        no_out = kernels.empty_rows(model.n_outputs, model.dtype)
    copy_state = _pull(buf)

    def sync():
        copy_state(model.params, model.stats)
        if optimizer.state.size:
            buf.state.copy_to_host(optimizer.state)

    try:
        for _ in range(epochs):
            if run.stopped:
                return
            epoch_order(perm, shuffle, rng)
            # the rule is built per epoch: a callback may have changed optimizer.lr_scale
            total, correct, optimizer.steps = kernels.train_batches(
                X_d, T_d, cuda.to_device(perm), 0, X.shape[0], batch_size, net,
                optimizer.update_rule(clip), buf, optimizer.steps, 0.0, 0)
            sums = None
            if val is not None:
                sums = kernels.infer_batches(Xv_d, Tv_d, no_out, net, buf,
                                     min(eval_chunk, val[0].shape[0]))
            yield EpochResult(total, correct, X.shape[0], sums, True, copy_state, sync)
    finally:
        sync()


def evaluate(model, X, T, cap):
    """(loss sum, correct) of the model on X, T, computed on the device in inference
    mode (BatchNorm's running statistics, no dropout)."""
    kernels = contract.cuda()
    cuda = kernels.require_cuda()
    net, buf = _on_device(model, cap)
    return kernels.infer_batches(cuda.to_device(X), cuda.to_device(T),
                                 kernels.empty_rows(model.n_outputs, model.dtype), net, buf, cap)


def forward(model, X, cap):
    """The network's outputs (n, n_outputs), computed on the device in inference mode."""
    kernels = contract.cuda()
    cuda = kernels.require_cuda()
    net, buf = _on_device(model, cap)
    out = cuda.device_array((X.shape[0], model.n_outputs), dtype=model.dtype)
    kernels.infer_batches(cuda.to_device(X), kernels.empty_rows(model.n_outputs, model.dtype),
                          out, net, buf, cap)
    return out.copy_to_host()
