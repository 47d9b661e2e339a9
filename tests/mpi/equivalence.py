"""Run by tests/test_distributed.py as ``mpiexec -n 2 python tests/mpi/equivalence.py``:
data-parallel fits against one-process fits of the same global minibatches. Rank 0
prints one JSON line per case: the relative difference of the parameters, and whether
the ranks ended bitwise identical."""
import json

import numpy as np
from mpi4py import MPI

import fastnn

comm = MPI.COMM_WORLD
fastnn.set_num_threads(1)

OPTIMIZERS = {
    "sgd": lambda: fastnn.SGD(0.05),
    "momentum": lambda: fastnn.SGD(0.05, momentum=0.9),
    "nesterov": lambda: fastnn.SGD(0.05, momentum=0.9, nesterov=True),
    "adagrad": lambda: fastnn.Adagrad(0.05),
    "rmsprop": lambda: fastnn.RMSprop(0.005),
    "adam": lambda: fastnn.Adam(0.01),
    "adamw": lambda: fastnn.AdamW(0.01, weight_decay=0.01),
    "lamb": lambda: fastnn.Lamb(0.01),
}
OUTPUTS = {"mse": (2, None), "binary_crossentropy": (3, "sigmoid"),
           "categorical_crossentropy": (4, "softmax")}


def data(loss, n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 9))
    outputs = OUTPUTS[loss][0]
    if loss == "mse":
        y = rng.standard_normal((n, outputs))
    elif loss == "binary_crossentropy":
        y = rng.integers(0, 2, (n, outputs))
    else:
        y = rng.integers(0, outputs, n)
    return X, y


def build(loss, dtype, seed=1, l1=0.0, l2=0.0):
    outputs, last = OUTPUTS[loss]
    return fastnn.Sequential([fastnn.Dense(9, 17, "tanh", l1=l1, l2=l2),
                              fastnn.Dense(17, 11, "relu", l2=l2),
                              fastnn.Dense(11, outputs, last)], loss=loss, dtype=dtype,
                             seed=seed)


def case(name, loss, optimizer, dtype, n=203, batch_size=32, seed=1, fit_seed=4, **extra):
    penalties = {k: extra.pop(k) for k in ("l1", "l2") if k in extra}
    X, y = data(loss, n)
    model = build(loss, dtype, seed, **penalties)
    start = (model.params.copy(), model._rng.bit_generator.state)
    history = model.fit(X, y, epochs=3, batch_size=batch_size, optimizer=OPTIMIZERS[optimizer](),
                        seed=fit_seed, verbose=0, comm=comm, validation_data=(X[:41], y[:41]),
                        **extra)
    everyone = comm.allgather(model.params)
    if comm.Get_rank() == 0:   # the same fit in one process, from rank 0's start
        alone = build(loss, dtype, seed, **penalties)
        alone.params[:] = start[0]
        alone._rng.bit_generator.state = start[1]
        expected = alone.fit(X, y, epochs=3, batch_size=batch_size,
                             optimizer=OPTIMIZERS[optimizer](), seed=fit_seed, verbose=0,
                             validation_data=(X[:41], y[:41]), **extra)
        rel = float(np.linalg.norm(model.params.astype(np.float64) - alone.params) /
                    np.linalg.norm(alone.params.astype(np.float64)))
        val = max(abs(a - b) / abs(b) for a, b in zip(history.history["val_loss"],
                                                      expected.history["val_loss"]))
        loss_rel = max(abs(a - b) / abs(b) for a, b in zip(history.history["loss"],
                                                           expected.history["loss"]))
        print(json.dumps({"case": name, "dtype": dtype, "rel": rel, "loss_rel": loss_rel,
                          "val_loss_rel": val,
                          "ranks_identical": all(np.array_equal(everyone[0], p)
                                                 for p in everyone)}), flush=True)


# every optimizer and case in float64; in float32 (the same kernels in the other type)
# SGD and Adam, both cross-entropies, uneven shares and seed=None
for dtype, optimizers in (("float64", OPTIMIZERS), ("float32", ("sgd", "adam"))):
    for optimizer in optimizers:
        case(f"mse/{optimizer}", "mse", optimizer, dtype)
    for loss in ("binary_crossentropy", "categorical_crossentropy"):
        case(f"{loss}/adam", loss, "adam", dtype)
    # uneven shares: an odd global batch; a last minibatch of one sample (rank 0 has none)
    case("odd batch 33", "categorical_crossentropy", "adam", dtype, batch_size=33)
    case("last minibatch of 1", "mse", "adam", dtype, n=65)
    case("seed=None", "mse", "adam", dtype, seed=None, fit_seed=None)
    if dtype == "float64":
        case("regularized, clipped", "mse", "adam", dtype, l1=1e-3, l2=1e-2, clip_norm=0.5)
    # sample weights: each rank weighs its share by the whole minibatch's weight sum
    case("sample weights", "categorical_crossentropy", "adam", dtype, batch_size=33,
         sample_weight=np.random.default_rng(7).uniform(0, 2, 203))
