"""Training and inference on a CUDA device (``Sequential(..., device="cuda")``).

For the whole of a ``fit``, ``predict`` or ``evaluate`` call, parameters, gradients,
optimizer state and the workspace live on the device; data are copied there once per
call and the shuffled order once per epoch; the only copies back are the summed loss
and correct count (two scalars per epoch and per validation) and, at the end, the
parameters and optimizer state. No kernel waits on a host transfer.
"""
import numpy as np


def _cuda():
    from fastnn.kernels.cuda.backend import require_cuda

    return require_cuda()


def _network(model):
    from fastnn.kernels.cuda.network import DeviceNetwork

    return DeviceNetwork(model.sizes, model.acts, model.w_off, model.b_off, model.loss_code,
                         model.fused, model.params, model.dtype)


def fit(model, X, T, val, epochs, batch_size, optimizer, shuffle, rng, eval_chunk):
    """The epochs of ``Sequential.fit`` on the device, as a generator of (loss sum,
    correct, validation sums or None, a function copying the parameters out) per epoch.
    Closing it copies the parameters and optimizer state back to the host."""
    cuda = _cuda()
    net = _network(model)
    state = cuda.to_device(optimizer.bind(model))
    bounds, l1, l2 = (cuda.to_device(a) for a in (model.reg_bounds, model.reg_l1, model.reg_l2))
    X_d, T_d = cuda.to_device(X), cuda.to_device(T)
    perm = np.arange(X.shape[0], dtype=np.int64)
    if val is not None:
        Xv_d, Tv_d = cuda.to_device(val[0]), cuda.to_device(val[1])
        val_perm = cuda.to_device(np.arange(val[0].shape[0], dtype=np.int64))
    hp = optimizer.hyperparameters()
    try:
        for _ in range(epochs):
            if shuffle:
                rng.shuffle(perm)
            total, correct, optimizer.steps = net.train_epoch(
                X_d, T_d, cuda.to_device(perm), batch_size, state, optimizer.code, hp,
                optimizer.steps, bounds, l1, l2)
            sums = None
            if val is not None:
                sums = net.evaluate(Xv_d, Tv_d, val_perm, min(eval_chunk, val[0].shape[0]))
            yield total, correct, sums, net.pull_params
    finally:
        net.pull_params(model.params)
        state.copy_to_host(optimizer.state)


def evaluate(model, X, T, cap):
    """(loss sum, correct) of the model on X, T, computed on the device."""
    cuda = _cuda()
    net = _network(model)
    return net.evaluate(cuda.to_device(X), cuda.to_device(T),
                        cuda.to_device(np.arange(X.shape[0], dtype=np.int64)), cap)


def forward(model, X, cap):
    """The network's outputs (n, n_outputs), computed on the device."""
    cuda = _cuda()
    net = _network(model)
    out = np.empty((X.shape[0], model.n_outputs), dtype=model.dtype)
    net.predict(cuda.to_device(X), cuda.to_device(np.arange(X.shape[0], dtype=np.int64)),
                cap, out)
    return out
