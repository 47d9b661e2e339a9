"""One function per contender: ``run(workload, epochs)`` trains ``epochs`` timed
epochs after one untimed warm-up epoch and returns the seconds of each. Each runs in
its own process (``python -m fastnn.bench.contenders NAME WORKLOAD EPOCHS``)."""
import json
import os
import sys
import time

import numpy as np

from fastnn.bench.workloads import LR, WORKLOADS, build_model, data, steps


def timed(epoch, epochs):
    epoch()
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - start)
    return times


def fit_epoch_times(w, epochs, dtype="float32"):
    """Seconds of each of ``epochs`` epochs of one ``fit`` call on workload ``w``, as a
    user trains (input checks once per fit), timed callback to callback: shuffle,
    gather, forward, backward, update, bookkeeping."""
    import fastnn

    X, y = data(w)
    model = build_model(w, dtype)
    stamps = [time.perf_counter()]
    model.fit(X.astype(dtype, copy=False), y, epochs=epochs, batch_size=w.batch,
              optimizer=fastnn.Adam(lr=LR), verbose=0,
              callbacks=[lambda epoch, logs: stamps.append(time.perf_counter())])
    return [b - a for a, b in zip(stamps, stamps[1:])]


def fastnn_run(w, epochs):
    # The first (untimed) epoch absorbs fit's input checks and any compilation.
    return fit_epoch_times(w, epochs + 1)[1:]


def step_products(matmul):
    """A compiled loop running a 3-layer step's matrix products ``count`` times through
    ``matmul``: forward per layer, dW per layer, dX for all but the first, at the
    shapes and layouts of fastnn's step (W row-major, activations column-major)."""
    from numba import njit

    @njit
    def products(W1, W2, W3, A0, A1, A2, A3, dW1, dW2, dW3, dX1, dX2, count):
        for _ in range(count):
            matmul(W1, A0, A1)
            matmul(W2, A1, A2)
            matmul(W3, A2, A3)
            matmul(A3, A2.T, dW3)
            matmul(W3.T, A3, dX2)
            matmul(A2, A1.T, dW2)
            matmul(W2.T, A2, dX1)
            matmul(A1, A0.T, dW1)
    return products


def product_operands(w, seed=0):
    """Random float32 W1..W3, A0..A3, dW1..dW3, dX1, dX2 for ``step_products``."""
    rng = np.random.default_rng(seed)
    s, b = w.sizes, w.batch
    W = [rng.standard_normal((s[i + 1], s[i]), dtype=np.float32) for i in range(3)]
    A = [np.asfortranarray(rng.standard_normal((k, b), dtype=np.float32)) for k in s]
    dW = [np.empty_like(x) for x in W]
    dX = [np.asfortranarray(np.empty((s[i], b), np.float32)) for i in (1, 2)]
    return (*W, *A, *dW, *dX)


def floor_run(w, epochs):
    """The step's matrix products alone through fastnn's BLAS (Numba's np.dot)."""
    from fastnn.kernels.matmul import matmul_blas

    products, operands = step_products(matmul_blas), product_operands(w)
    return timed(lambda: products(*operands, steps(w)), epochs)


def numpy_run(w, epochs):
    """The notes' layers in plain NumPy with preallocated buffers (samples in rows)."""
    X, y = data(w)
    rng = np.random.default_rng(0)
    s, b, L = w.sizes, w.batch, len(w.sizes) - 1
    Ws = [(rng.standard_normal((s[i], s[i + 1])) * np.sqrt(2 / s[i])).astype(np.float32)
          for i in range(L)]
    bs = [np.zeros(s[i + 1], np.float32) for i in range(L)]
    params = Ws + bs
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    grads = [np.zeros_like(p) for p in params]
    A = [np.empty((b, k), np.float32) for k in s]
    D = [np.empty((b, k), np.float32) for k in s]
    T = np.zeros((w.samples, s[-1]), np.float32)
    if w.loss == "mse":
        T[:, 0] = y
    else:
        T[np.arange(w.samples), y] = 1
    state = {"t": 0}

    def epoch():
        perm = rng.permutation(w.samples)
        for k in range(steps(w)):
            idx = perm[k * b:(k + 1) * b]
            np.take(X, idx, axis=0, out=A[0])
            t = T[idx]
            for l in range(L):
                np.dot(A[l], Ws[l], out=A[l + 1])
                A[l + 1] += bs[l]
                if l < L - 1:
                    np.maximum(A[l + 1], 0, out=A[l + 1])
            out = A[L]
            if w.loss == "mse":
                np.subtract(out, t, out=D[L])
                D[L] *= 2 / out.size
            else:
                out -= out.max(axis=1, keepdims=True)
                np.exp(out, out=out)
                out /= out.sum(axis=1, keepdims=True)
                np.subtract(out, t, out=D[L])
                D[L] /= b
            for l in range(L - 1, -1, -1):
                np.dot(A[l].T, D[l + 1], out=grads[l])
                np.sum(D[l + 1], axis=0, out=grads[L + l])
                if l > 0:
                    np.dot(D[l + 1], Ws[l].T, out=D[l])
                    D[l] *= A[l] > 0
            state["t"] += 1
            c1, c2 = 1 - 0.9 ** state["t"], 1 - 0.999 ** state["t"]
            for p, g, mm, vv in zip(params, grads, m, v):
                mm *= 0.9
                mm += 0.1 * g
                vv *= 0.999
                vv += 0.001 * g * g
                p -= LR / c1 * mm / (np.sqrt(vv / c2) + 1e-8)

    return timed(epoch, epochs)


def torch_run(w, epochs):
    import torch

    torch.set_num_threads(os.cpu_count())
    X, y = data(w)
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y if w.loss != "mse" else y.reshape(-1, 1))
    s = w.sizes
    layers = []
    for i in range(len(s) - 1):
        layers.append(torch.nn.Linear(s[i], s[i + 1]))
        if i < len(s) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=LR, fused=True)
    loss_fn = torch.nn.MSELoss() if w.loss == "mse" else torch.nn.CrossEntropyLoss()

    def epoch():
        perm = torch.randperm(w.samples)
        for k in range(steps(w)):
            idx = perm[k * w.batch:(k + 1) * w.batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()

    return timed(epoch, epochs)


def jax_run(w, epochs):
    """The whole epoch — permutation, gather, forward, backward, Adam — in one
    jax.jit-compiled lax.scan."""
    import jax
    import jax.numpy as jnp

    X, y = map(jnp.asarray, data(w))
    s, b, n_steps = w.sizes, w.batch, steps(w)
    key = jax.random.PRNGKey(0)
    params = []
    for i in range(len(s) - 1):
        key, sub = jax.random.split(key)
        params.append((jax.random.normal(sub, (s[i], s[i + 1]), jnp.float32)
                       * jnp.sqrt(2.0 / s[i]), jnp.zeros(s[i + 1], jnp.float32)))

    def loss_fn(params, xb, yb):
        a = xb
        for i, (W, bias) in enumerate(params):
            a = a @ W + bias
            if i < len(params) - 1:
                a = jax.nn.relu(a)
        if w.loss == "mse":
            return jnp.mean((a[:, 0] - yb) ** 2)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(a), yb[:, None], axis=1))

    def adam(p, g, m, v, t):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        return p - LR * (m / (1 - 0.9 ** t)) / (jnp.sqrt(v / (1 - 0.999 ** t)) + 1e-8), m, v

    @jax.jit
    def epoch(params, m, v, t, key):
        key, sub = jax.random.split(key)
        perm = jax.random.permutation(sub, w.samples).reshape(n_steps, b)

        def step(carry, idx):
            params, m, v, t = carry
            grads = jax.grad(loss_fn)(params, X[idx], y[idx])
            t = t + 1
            leaves, tree = jax.tree_util.tree_flatten(params)
            out = [adam(p, g, mm, vv, t) for p, g, mm, vv in
                   zip(leaves, *(jax.tree_util.tree_leaves(x) for x in (grads, m, v)))]
            params, m, v = (tree.unflatten([o[k] for o in out]) for k in range(3))
            return (params, m, v, t), None

        (params, m, v, t), _ = jax.lax.scan(step, (params, m, v, t), perm)
        return params, m, v, t, key

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = {"s": (params, zeros, zeros, jnp.float32(0), key)}

    def run_epoch():
        state["s"] = epoch(*state["s"])
        jax.block_until_ready(state["s"][0])

    return timed(run_epoch, epochs)


def sklearn_run(w, epochs):
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    X, y = data(w)
    kind = MLPRegressor if w.loss == "mse" else MLPClassifier
    model = kind(hidden_layer_sizes=w.sizes[1:-1], solver="adam", learning_rate_init=LR,
                 batch_size=w.batch, alpha=0.0, shuffle=True, random_state=0)
    classes = np.arange(w.sizes[-1])

    def epoch():
        if w.loss == "mse":
            model.partial_fit(X, y)
        else:
            model.partial_fit(X, y, classes=classes)

    return timed(epoch, epochs)


CONTENDERS = {"fastnn": fastnn_run, "floor": floor_run, "jax": jax_run, "torch": torch_run,
              "numpy": numpy_run, "sklearn": sklearn_run}
#: modules a contender needs; it is skipped when one is missing
REQUIRES = {"jax": "jax", "torch": "torch", "sklearn": "sklearn"}


def _pools():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{"library": os.path.basename(p["filepath"]), "core_type": p.get("architecture"),
             "threads": p.get("num_threads")} for p in threadpool_info()]


if __name__ == "__main__":
    name, workload, epochs = sys.argv[1], WORKLOADS[sys.argv[2]], int(sys.argv[3])
    times = CONTENDERS[name](workload, epochs)
    print(json.dumps({"contender": name, "workload": workload.name, "epoch_s": times,
                      "steps": steps(workload), "pools": _pools(),
                      "coretype": os.environ.get("OPENBLAS_CORETYPE")}))
