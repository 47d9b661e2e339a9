"""Your own compiled training loop with fastnn's kernels: a regressor trained with a
Huber loss written here in ``@njit``, calling fastnn's forward, backward and Adam
kernels inside one compiled epoch of its own (docs/kernels.md).

    python scripts/custom_loop.py                 # bike: Huber loss, 20 epochs
    python scripts/custom_loop.py --compare 5     # + step time against model.fit (MSE)
"""
import argparse
import time

import numba
import numpy as np

import fastnn
from fastnn import kernels as K

#: Huber's threshold, in units of the (standardized) target
DELTA = 1.0


@numba.njit
def huber(Y, T, G):
    """L = mean over the elements of h(y − t), h(d) = d²/2 for |d| ≤ δ, else
    δ(|d| − δ/2); writes G = dL/dY. Y, T, G: (outputs, batch), as fastnn's losses."""
    m, n = Y.shape
    scale = 1.0 / (m * n)
    total = 0.0
    for j in range(n):
        for i in range(m):
            d = np.float64(Y[i, j]) - T[i, j]
            if abs(d) <= DELTA:
                total += 0.5 * d * d
                G[i, j] = scale * d
            else:
                total += DELTA * (abs(d) - 0.5 * DELTA)
                G[i, j] = scale * DELTA * np.sign(d)
    return total * scale


@numba.njit
def epoch(X, T, perm, batch_size, net, buf, upd, step, loss):
    """One epoch over the rows of X, T in the order ``perm``: per minibatch, gather it
    into the workspace, run fastnn's forward pass (training mode), ``loss`` (a compiled
    function (Y, T, G) -> value that writes G = dL/dY), fastnn's backward pass and the
    optimizer's update. Returns (mean loss, step count after)."""
    n = perm.shape[0]
    L = net.sizes.shape[0] - 1
    total = 0.0
    for start in range(0, n, batch_size):
        nb = min(batch_size, n - start)
        Xb = K.output_view(buf.ws, net, batch_size, 0, nb)
        Tb = K.target_view(buf.ws, net, batch_size, nb)
        K.gather_batch(X, T, perm, start, Xb, Tb)
        K.forward(net, buf, Xb, batch_size, np.int64(K.TRAIN_UPDATE), step, False)
        total += nb * loss(K.output_view(buf.ws, net, batch_size, L, nb), Tb,
                           K.delta_view(buf.ws, net, batch_size, L, nb))
        K.backward(net, buf, Xb, batch_size, step)
        K.optimizer_update(upd, net.seg, buf.params, buf.grads, buf.state, step)
        step += 1
    return total / n, step


def train(model, X, y, *, epochs, batch_size, optimizer, loss=huber, seed=0, log=print):
    """``epochs`` of ``epoch`` on ``model`` with ``optimizer``, shuffled as ``fit``
    shuffles (fastnn.epochs.shuffle_order); returns the per-epoch mean losses."""
    from fastnn.epochs import shuffle_order

    layout = model.layout
    X = np.ascontiguousarray(X, dtype=model.dtype)
    T = np.ascontiguousarray(y, dtype=model.dtype).reshape(len(y), -1)
    buf = layout.buffers(batch_size, optimizer)
    upd = layout.update(optimizer)
    perm = np.arange(len(X), dtype=np.int64)
    K.check_layout(layout.net, buf, batch_size=batch_size, X=X, T=T, perm=perm, upd=upd)
    rng, losses = np.random.default_rng(seed), []
    for e in range(epochs):
        shuffle_order(perm, rng)   # a permutation of 0..n-1: checked indices stay in range
        value, optimizer.steps = epoch(X, T, perm, batch_size, layout.net, buf, upd,
                                       optimizer.steps, loss)
        losses.append(value)
        if log:
            log(f"epoch {e + 1}/{epochs}  loss {value:.4f}")
    return losses


def _bike_model():
    """The bike workload's network (56-64-64-1, ReLU, MSE; fastnn.bench.workloads)."""
    from fastnn.bench.workloads import WORKLOADS, build_model

    return build_model(WORKLOADS["bike"])


def compare(rounds, epochs=3):
    """ms/step of the Huber loop and of ``model.fit`` (MSE) on the bike workload, the
    best epoch of each, rounds alternating."""
    from fastnn.bench import workloads

    w = workloads.WORKLOADS["bike"]
    X, y = workloads.data(w)
    steps = -(-len(X) // w.batch)
    times = {"custom loop (Huber)": [], "model.fit (MSE)": []}
    for r in range(rounds):
        for name in (list(times) if r % 2 == 0 else list(times)[::-1]):
            model, optimizer = _bike_model(), fastnn.Adam()
            best = float("inf")
            for _ in range(epochs):
                began = time.perf_counter()
                if name.startswith("custom"):
                    train(model, X, y, epochs=1, batch_size=w.batch, optimizer=optimizer,
                          log=None)
                else:
                    model.fit(X, y, epochs=1, batch_size=w.batch, optimizer=optimizer,
                              verbose=0)
                best = min(best, time.perf_counter() - began)
            times[name].append(best / steps * 1e3)
    for name, values in times.items():
        print(f"{name:<22}{np.median(values):8.4f} ms/step   (rounds: "
              f"{', '.join(f'{v:.4f}' for v in values)})")
    ratio = np.median(times["custom loop (Huber)"]) / np.median(times["model.fit (MSE)"])
    print(f"custom loop / model.fit: {ratio:.3f}")
    return ratio


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--compare", type=int, default=0, metavar="ROUNDS",
                        help="also time the loop against model.fit on the bike workload")
    args = parser.parse_args(argv)
    from fastnn.datasets import load_bike

    data = load_bike()
    model = _bike_model()
    train(model, data.X_train, data.y_train, epochs=args.epochs, batch_size=64,
          optimizer=fastnn.Adam())
    for name, X, y in (("validation", data.X_val, data.y_val), ("test", data.X_test, data.y_test)):
        print(f"{name:<11} MSE {model.evaluate(X, y)['loss']:.4f} (standardized target)")
    if args.compare:
        compare(args.compare)


if __name__ == "__main__":
    main()
