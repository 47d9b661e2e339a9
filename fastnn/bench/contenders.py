"""One function per contender: ``run(workload, epochs)`` trains ``epochs`` timed
epochs after one untimed warm-up epoch and returns the seconds of each. Each runs in
its own process (``python -m fastnn.bench.contenders NAME WORKLOAD EPOCHS``). A
contender that cannot express a workload (NumPy and scikit-learn: no BatchNorm, dropout,
AdamW or clipping for a regularized one) raises NotApplicable; the process then exits
with "not applicable: ..." as its last line."""
import json
import os
import sys
import time

import numpy as np

from fastnn.bench.workloads import (BN_EPS, BN_MOMENTUM, CLIP_NORM, DROPOUT, LR, WEIGHT_DECAY,
                                    WORKLOADS, build_model, data, fit_options, steps)


class NotApplicable(Exception):
    """The contender cannot express the workload."""


def plain_only(w, name):
    if w.regularized:
        raise NotApplicable(f"{name} has no BatchNorm, dropout, AdamW or gradient clipping")


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
    X, y = data(w)
    model = build_model(w, dtype)
    stamps = [time.perf_counter()]
    model.fit(X.astype(dtype, copy=False), y, epochs=epochs, batch_size=w.batch, verbose=0,
              callbacks=[lambda epoch, logs: stamps.append(time.perf_counter())],
              **fit_options(w))
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
    def products(W, A, dW, dX, count):
        for _ in range(count):
            matmul(W[0], A[0], A[1])
            matmul(W[1], A[1], A[2])
            matmul(W[2], A[2], A[3])
            matmul(A[3], A[2].T, dW[2])
            matmul(W[2].T, A[3], dX[1])
            matmul(A[2], A[1].T, dW[1])
            matmul(W[1].T, A[2], dX[0])
            matmul(A[1], A[0].T, dW[0])
    return products


def product_operands(w, seed=0):
    """Random float32 (W1..W3), (A0..A3), (dW1..dW3), (dX1, dX2) for ``step_products``."""
    rng = np.random.default_rng(seed)
    s, b = w.sizes, w.batch
    W = [rng.standard_normal((s[i + 1], s[i]), dtype=np.float32) for i in range(3)]
    A = [np.asfortranarray(rng.standard_normal((k, b), dtype=np.float32)) for k in s]
    dW = [np.empty_like(x) for x in W]
    dX = [np.asfortranarray(np.empty((s[i], b), np.float32)) for i in (1, 2)]
    return tuple(W), tuple(A), tuple(dW), tuple(dX)


def floor_run(w, epochs):
    """The step's matrix products alone through fastnn's BLAS (Numba's np.dot)."""
    from fastnn.kernels.contract import matmul_blas

    products, operands = step_products(matmul_blas), product_operands(w)
    return timed(lambda: products(*operands, steps(w)), epochs)


def numpy_run(w, epochs):
    """The notes' layers in plain NumPy with preallocated buffers (samples in rows)."""
    plain_only(w, "numpy")
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


def torch_trainer(w, X, y):
    """PyTorch eager (fused Adam, or fused AdamW with the weights decayed and the
    gradient norm clipped for a regularized workload): an epoch function returning
    its minibatch losses (tensors)."""
    import torch

    torch.set_num_threads(os.cpu_count())
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y if w.loss != "mse" else y.reshape(-1, 1))
    s, reg = w.sizes, w.regularized
    layers = []
    for i in range(len(s) - 1):
        hidden = i < len(s) - 2
        layers.append(torch.nn.Linear(s[i], s[i + 1], bias=not (hidden and reg)))
        if hidden and reg:
            layers += [torch.nn.BatchNorm1d(s[i + 1], eps=BN_EPS, momentum=BN_MOMENTUM),
                       torch.nn.ReLU(), torch.nn.Dropout(DROPOUT)]
        elif hidden:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).train()
    if reg:
        weights = [l.weight for l in layers if isinstance(l, torch.nn.Linear)]
        others = [p for p in model.parameters() if all(p is not q for q in weights)]
        opt = torch.optim.AdamW([{"params": weights, "weight_decay": WEIGHT_DECAY},
                                 {"params": others, "weight_decay": 0.0}], lr=LR, fused=True)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=LR, fused=True)
    loss_fn = torch.nn.MSELoss() if w.loss == "mse" else torch.nn.CrossEntropyLoss()

    def epoch():
        perm = torch.randperm(len(Xt))
        losses = []
        for k in range(len(Xt) // w.batch):
            idx = perm[k * w.batch:(k + 1) * w.batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            if reg:
                torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
            opt.step()
            losses.append(loss.detach())
        return losses

    return epoch


def torch_run(w, epochs):
    return timed(torch_trainer(w, *data(w)), epochs)


def jax_trainer(w, X, y):
    """The whole epoch — permutation, gather, forward, backward, clipping, Adam(W) — in
    one jax.jit-compiled lax.scan: an epoch function returning its minibatch losses."""
    import jax
    import jax.numpy as jnp

    X, y = jnp.asarray(X), jnp.asarray(y)
    s, b, reg = w.sizes, w.batch, w.regularized
    n_steps = X.shape[0] // b
    key = jax.random.PRNGKey(0)
    # each layer: W and b, or (a hidden layer of a regularized workload) W, gamma, beta
    params, stats = [], []
    for i in range(len(s) - 1):
        key, sub = jax.random.split(key)
        layer = {"W": jax.random.normal(sub, (s[i], s[i + 1]), jnp.float32)
                 * jnp.sqrt(2.0 / s[i])}
        if reg and i < len(s) - 2:
            layer.update(gamma=jnp.ones(s[i + 1], jnp.float32),
                         beta=jnp.zeros(s[i + 1], jnp.float32))
            stats.append((jnp.zeros(s[i + 1], jnp.float32), jnp.ones(s[i + 1], jnp.float32)))
        else:
            layer["b"] = jnp.zeros(s[i + 1], jnp.float32)
        params.append(layer)
    # decoupled weight decay: the Dense weights only
    decay = [{k: WEIGHT_DECAY if reg and k == "W" else 0.0 for k in layer} for layer in params]

    def batch_norm(z, layer, stat):
        """Training-mode BatchNorm1d: the normalized z and the updated running stats."""
        mean, var = z.mean(axis=0), z.var(axis=0)
        running = ((1 - BN_MOMENTUM) * stat[0] + BN_MOMENTUM * mean,
                   (1 - BN_MOMENTUM) * stat[1]
                   + BN_MOMENTUM * var * (z.shape[0] / (z.shape[0] - 1)))
        z = (z - mean) * jax.lax.rsqrt(var + BN_EPS) * layer["gamma"] + layer["beta"]
        return z, jax.lax.stop_gradient(running)

    def loss_fn(params, stats, xb, yb, key):
        """The minibatch loss and the updated running stats."""
        a, new_stats = xb, []
        for i, layer in enumerate(params[:-1]):
            a = a @ layer["W"]
            if reg:
                a, stat = batch_norm(a, layer, stats[i])
                new_stats.append(stat)
                key, sub = jax.random.split(key)
                keep = jax.random.bernoulli(sub, 1 - DROPOUT, a.shape)
                a = jnp.where(keep, jax.nn.relu(a) / (1 - DROPOUT), 0)
            else:
                a = jax.nn.relu(a + layer["b"])
        a = a @ params[-1]["W"] + params[-1]["b"]
        if w.loss == "mse":
            loss = jnp.mean((a[:, 0] - yb) ** 2)
        else:
            loss = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(a), yb[:, None], axis=1))
        return loss, new_stats

    def clip(grads):
        """clip_grad_norm_: scale every gradient by min(1, max_norm / (norm + 1e-6))."""
        norm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree_util.tree_leaves(grads)))
        scale = jnp.minimum(1.0, CLIP_NORM / (norm + 1e-6))
        return jax.tree_util.tree_map(lambda g: g * scale, grads)

    def adam(p, g, m, v, t, wd):
        if wd:
            p = p * (1 - LR * wd)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        return p - LR * (m / (1 - 0.9 ** t)) / (jnp.sqrt(v / (1 - 0.999 ** t)) + 1e-8), m, v

    @jax.jit
    def epoch(params, stats, m, v, t, key):
        key, sub = jax.random.split(key)
        perm = jax.random.permutation(sub, X.shape[0])[:n_steps * b].reshape(n_steps, b)

        def step(carry, idx):
            params, stats, m, v, t, key = carry
            key, sub = jax.random.split(key) if reg else (key, None)  # dropout's key
            (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, stats, X[idx], y[idx], sub)
            if reg:
                grads = clip(grads)
            t = t + 1
            leaves, tree = jax.tree_util.tree_flatten(params)
            out = [adam(p, g, mm, vv, t, wd) for p, g, mm, vv, wd in
                   zip(leaves, *(jax.tree_util.tree_leaves(x) for x in (grads, m, v, decay)))]
            params, m, v = (tree.unflatten([o[k] for o in out]) for k in range(3))
            return (params, stats, m, v, t, key), loss

        return jax.lax.scan(step, (params, stats, m, v, t, key), perm)

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = {"s": (params, stats, zeros, zeros, jnp.float32(0), key)}

    def run_epoch():
        state["s"], losses = epoch(*state["s"])
        jax.block_until_ready(state["s"])
        return losses

    return run_epoch


def jax_run(w, epochs):
    return timed(jax_trainer(w, *data(w)), epochs)


def sklearn_run(w, epochs):
    plain_only(w, "scikit-learn")
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
    try:
        times = CONTENDERS[name](workload, epochs)
    except NotApplicable as e:
        sys.exit(f"not applicable: {e}")
    print(json.dumps({"contender": name, "workload": workload.name, "epoch_s": times,
                      "steps": steps(workload), "pools": _pools(),
                      "coretype": os.environ.get("OPENBLAS_CORETYPE")}))
