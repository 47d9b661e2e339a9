"""Where a workload's step goes: each part of fastnn's training step timed alone, in
its own compiled loop over an epoch's minibatches (µs per step, best of ``repeats``).

    epoch          train_epoch as fit runs it (shuffled order), for the total
    products       the step's 8 matrix products through matmul (loops or BLAS)
    floor          the same products through BLAS alone (the GEMM floor)
    gather         copying the shuffled minibatch into the workspace
    epilogues      bias + activation after each forward product
    loss           the (fused) loss and its gradient at the output
    delta + db     dZ = dA ⊙ f'(Z) and db = row-sum(dZ), every layer
    count          correct predictions
    update         the optimizer (Adam) over the flat parameter vector

A part timed alone runs with warmer caches than inside the step, so the parts add up
to about the epoch, not exactly.
"""
import argparse

import numpy as np
from numba import njit

import fastnn
from fastnn.bench.contenders import product_operands, step_products, timed
from fastnn.bench.workloads import LR, WORKLOADS, build_model, data, steps
from fastnn.kernels import activations, losses, network, optimizers
from fastnn.kernels.matmul import matmul, matmul_blas
from fastnn.kernels.training import train_epoch


@njit
def _gather(n, X, T, perm, nb, ws, sizes):
    for i in range(n):
        network.gather_batch(X, T, perm, i * nb, nb, ws, sizes, nb)


@njit
def _epilogues(n, params, sizes, acts, b_off, fused, ws, nb):
    L = sizes.shape[0] - 1
    for _ in range(n):
        for l in range(L):
            act = activations.IDENTITY if (fused and l == L - 1) else acts[l]
            activations.bias_activation_forward(network.output_view(ws, sizes, nb, l + 1, nb),
                                                network.bias_view(params, b_off, sizes, l), act)


@njit
def _loss(n, sizes, acts, loss_code, fused, ws, nb):
    L = sizes.shape[0] - 1
    for _ in range(n):
        T = network.matrix_view(ws, sizes[0] * nb, sizes[L], nb)
        Y = network.output_view(ws, sizes, nb, L, nb)
        network.output_loss(loss_code, acts[L - 1], fused, Y, T,
                            network.delta_view(ws, sizes, nb, L, nb))


@njit
def _deltas(n, grads, sizes, acts, b_off, fused, ws, nb):
    L = sizes.shape[0] - 1
    for _ in range(n):
        for l in range(L - 1, -1, -1):
            act = activations.IDENTITY if (fused and l == L - 1) else acts[l]
            A = network.output_view(ws, sizes, nb, l + 1, nb)
            D = network.delta_view(ws, sizes, nb, l + 1, nb)
            activations.activation_backward_bias(act, A, D, D,
                                                 network.bias_view(grads, b_off, sizes, l))


@njit
def _count(n, sizes, loss_code, ws, nb):
    L = sizes.shape[0] - 1
    correct = 0
    for _ in range(n):
        T = network.matrix_view(ws, sizes[0] * nb, sizes[L], nb)
        correct += losses.count_correct(loss_code, network.output_view(ws, sizes, nb, L, nb), T)
    return correct


@njit
def _update(n, code, params, grads, state, hp, bounds, l1, l2):
    for i in range(n):
        optimizers.optimizer_update(code, params, grads, state, hp, 1 + i, bounds, l1, l2)


def breakdown(name, repeats=5):
    """{part: µs per step} for workload ``name``."""
    w = WORKLOADS[name]
    X, y = data(w)
    model, adam = build_model(w), fastnn.Adam(lr=LR)
    model.fit(X, y, epochs=1, batch_size=w.batch, optimizer=adam, verbose=0)
    X, T = model._xy(X, y)
    state, hp, ws = adam.bind(model), adam.hyperparameters(), model._workspace(w.batch)
    sizes, acts, w_off, b_off = model._kernel_tables()
    perm = np.random.default_rng(1).permutation(X.shape[0]).astype(np.int64)
    n, nb = steps(w), w.batch
    regularization = (model.reg_bounds, model.reg_l1, model.reg_l2)
    operands = product_operands(w)
    products, floor = step_products(matmul), step_products(matmul_blas)
    parts = {
        "epoch": lambda: train_epoch(X, T, perm, nb, model.params, model.grads, state,
                                     adam.code, hp, 1, *regularization, sizes, acts, w_off,
                                     b_off, model.loss_code, model.fused, ws),
        "products": lambda: products(*operands, n),
        "floor": lambda: floor(*operands, n),
        "gather": lambda: _gather(n, X, T, perm, nb, ws, sizes),
        "epilogues": lambda: _epilogues(n, model.params, sizes, acts, b_off, model.fused, ws,
                                        nb),
        "loss": lambda: _loss(n, sizes, acts, model.loss_code, model.fused, ws, nb),
        "delta + db": lambda: _deltas(n, model.grads, sizes, acts, b_off, model.fused, ws, nb),
        "count": lambda: _count(n, sizes, model.loss_code, ws, nb),
        "update": lambda: _update(n, adam.code, model.params, model.grads, state, hp,
                                  *regularization),
    }
    return {part: min(timed(run, repeats)) / n * 1e6 for part, run in parts.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="bike,mnist")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    for name in args.workloads.split(","):
        for part, us in breakdown(name, args.repeats).items():
            print(f"{name:<7}{part:<12}{us:10.2f} µs/step")
    return 0
