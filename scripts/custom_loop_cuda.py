"""scripts/custom_loop.py on the GPU: the same Huber-loss regressor, its loss a
``cuda.jit`` kernel written here, between fastnn.kernels.cuda's forward, backward and
Adam (docs/gpu.md). The loop runs on the host and only
launches kernels; the losses are summed on the device and read once per epoch.

    python scripts/custom_loop_cuda.py                  # bike, 20 epochs, on a GPU
    NUMBA_ENABLE_CUDASIM=1 python scripts/custom_loop_cuda.py --rows 64 --epochs 2
                                                        # the CUDA simulator (slow)
"""
import argparse

import numpy as np

import fastnn
from fastnn.kernels import cuda as KC
from fastnn.kernels.cuda._backend import cuda

#: Huber's threshold, in units of the (standardized) target
DELTA = 1.0
#: threads per block side of the loss kernel
BLOCK = 16


@cuda.jit
def _huber(Y, T, G, total, weight):
    """G = dL/dY and total[0] += weight · L, L the mean over the elements of h(y − t),
    h(d) = d²/2 for |d| ≤ δ, else δ(|d| − δ/2). One thread per element."""
    i, j = cuda.grid(2)
    m, n = Y.shape
    if i < m and j < n:
        scale = 1.0 / (m * n)
        d = Y[i, j] - T[i, j]
        if abs(d) <= DELTA:
            G[i, j] = scale * d
            cuda.atomic.add(total, 0, weight * scale * 0.5 * d * d)
        else:
            G[i, j] = scale * DELTA * (1.0 if d > 0 else -1.0)
            cuda.atomic.add(total, 0, weight * scale * DELTA * (abs(d) - 0.5 * DELTA))


def huber(Y, T, G, total, weight):
    """Launch ``_huber`` over Y (outputs, batch)."""
    grid = ((Y.shape[0] + BLOCK - 1) // BLOCK, (Y.shape[1] + BLOCK - 1) // BLOCK)
    _huber[grid, (BLOCK, BLOCK)](Y, T, G, total, float(weight))


def epoch(X, T, perm, batch_size, net, buf, upd, step, loss, total):
    """One epoch over the rows of the device arrays X, T in the order ``perm``: per
    minibatch, gather it into the workspace, fastnn's forward pass (training mode),
    ``loss(Y, T, G, total, nb)`` (launches that write G = dL/dY and add nb · loss to
    total[0]), fastnn's backward pass and the optimizer's update. Returns the step count
    after; nothing waits for the device."""
    n, L = perm.shape[0], net.table.shape[0]
    scratch = KC.scratch_view(buf.acc, net)
    for start in range(0, n, batch_size):
        nb = min(batch_size, n - start)
        Xb = KC.output_view(buf.ws, net, batch_size, 0, nb)
        Tb = KC.target_view(buf.ws, net, batch_size, nb)
        KC.gather_batch(X, T, perm, start, Xb, Tb)
        KC.forward(net, buf, Xb, batch_size, KC.TRAIN_UPDATE, step, False)
        loss(KC.output_view(buf.ws, net, batch_size, L, nb), Tb,
             KC.delta_view(buf.ws, net, batch_size, L, nb), total, nb)
        KC.backward(net, buf, Xb, batch_size, step)
        KC.optimizer_update(upd, net.seg, buf.params, buf.grads, buf.state, step, scratch)
        step += 1
    return step


def train(model, X, y, *, epochs, batch_size, optimizer, loss=huber, seed=0, log=print):
    """``epochs`` of ``epoch`` on the device for ``model`` with ``optimizer``, shuffled as
    ``fit`` shuffles; the parameters, running statistics and optimizer state come back
    into the model at the end (so ``fit`` can continue). Returns the per-epoch mean
    losses."""
    from fastnn.epochs import shuffle_order

    layout = model.layout
    X = np.ascontiguousarray(X, dtype=model.dtype)
    T = np.ascontiguousarray(y, dtype=model.dtype).reshape(len(y), -1)
    host_buf = layout.buffers(batch_size, optimizer)
    net, buf = KC.to_device(layout.net, host_buf)
    upd = KC.update_to_device(layout.update(optimizer))
    Xd, Td = cuda.to_device(X), cuda.to_device(T)
    perm = np.arange(len(X), dtype=np.int64)
    total = cuda.device_array(1, dtype=np.float64)
    KC.check_layout(net, buf, batch_size=batch_size, X=Xd, T=Td, perm=cuda.to_device(perm),
                    upd=upd)
    rng, losses = np.random.default_rng(seed), []
    for e in range(epochs):
        shuffle_order(perm, rng)   # a permutation of 0..n-1: checked indices stay in range
        KC.fill(total, 0.0)
        optimizer.steps = epoch(Xd, Td, cuda.to_device(perm), batch_size, net, buf, upd,
                                optimizer.steps, loss, total)
        losses.append(float(total.copy_to_host()[0]) / len(X))
        if log:
            log(f"epoch {e + 1}/{epochs}  loss {losses[-1]:.4f}")
    KC.copy_to_host(buf, host_buf)
    return losses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--rows", type=int, default=0,
                        help="train on the first ROWS training rows only (0: all)")
    args = parser.parse_args(argv)
    KC.require_cuda()
    from fastnn.bench.workloads import WORKLOADS, build_model
    from fastnn.datasets import load_bike

    data = load_bike()
    X, y = data.X_train, data.y_train
    if args.rows:
        X, y = X[:args.rows], y[:args.rows]
    model = build_model(WORKLOADS["bike"])
    train(model, X, y, epochs=args.epochs, batch_size=64, optimizer=fastnn.Adam())
    for name, Xe, ye in (("validation", data.X_val, data.y_val), ("test", data.X_test, data.y_test)):
        print(f"{name:<11} MSE {model.evaluate(Xe, ye)['loss']:.4f} (standardized target)")


if __name__ == "__main__":
    main()
