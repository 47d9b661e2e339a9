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


def _cuda():
    from fastnn.kernels.cuda._backend import require_cuda

    return require_cuda()


def _network(model):
    from fastnn.kernels.cuda._network import DeviceNetwork

    return DeviceNetwork(model.net, model.params, model.stats)


def _indices(cuda, n):
    return cuda.to_device(np.arange(n, dtype=np.int64))


def fit(model, X, T, val, epochs, batch_size, optimizer, clip, shuffle, rng, eval_chunk, run):
    """The epochs of ``Sequential.fit`` on the device, as a generator of
    fastnn.epochs.EpochResult. Ctrl-C (``run.stopped``) ends training at the next epoch
    boundary. Closing it copies the parameters, running statistics and optimizer state
    back to the host."""
    cuda = _cuda()
    net = _network(model)
    state = cuda.to_device(optimizer.bind(model))
    X_d, T_d = cuda.to_device(X), cuda.to_device(T)
    perm = np.arange(X.shape[0], dtype=np.int64)
    if val is not None:
        Xv_d, Tv_d = cuda.to_device(val[0]), cuda.to_device(val[1])
        val_perm = _indices(cuda, val[0].shape[0])

    def sync():
        net.pull(model.params, model.stats)
        state.copy_to_host(optimizer.state)

    try:
        for _ in range(epochs):
            if run.stopped:
                return
            epoch_order(perm, shuffle, rng)
            # the rule is built per epoch: a callback may have changed optimizer.lr_scale
            total, correct, optimizer.steps = net.train_epoch(
                X_d, T_d, cuda.to_device(perm), batch_size, optimizer.update_rule(clip), state,
                optimizer.steps)
            sums = None
            if val is not None:
                sums = net.evaluate(Xv_d, Tv_d, val_perm, min(eval_chunk, val[0].shape[0]))
            yield EpochResult(total, correct, X.shape[0], sums, True, net.pull, sync)
    finally:
        sync()


def evaluate(model, X, T, cap):
    """(loss sum, correct) of the model on X, T, computed on the device in inference
    mode (BatchNorm's running statistics, no dropout)."""
    cuda = _cuda()
    net = _network(model)
    return net.evaluate(cuda.to_device(X), cuda.to_device(T), _indices(cuda, X.shape[0]), cap)


def forward(model, X, cap):
    """The network's outputs (n, n_outputs), computed on the device in inference mode."""
    cuda = _cuda()
    net = _network(model)
    out = np.empty((X.shape[0], model.n_outputs), dtype=model.dtype)
    net.predict(cuda.to_device(X), _indices(cuda, X.shape[0]), cap, out)
    return out
