"""The compile machinery of kernels._jit: internal kernels are link-only code compiled
without Numba's runtime, entry points are cached, a warm process compiles nothing, and a
model compiles the kernels of its plan only (kernels._plan)."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import njit

from fastnn.kernels import _jit
from fastnn.kernels._matmul import matmul
from fastnn.kernels.optimizer_rules import RULES

TRAIN = textwrap.dedent("""
    import importlib, json
    import numpy as np
    from numba import types
    from numba.core import event
    import fastnn
    from fastnn.kernels import _jit

    compiled = []

    class Listener(event.Listener):
        def on_start(self, ev):
            compiled.append(ev.data["dispatcher"].py_func.__qualname__)

        def on_end(self, ev):
            pass

    event.register("numba:compile", Listener())
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 5)).astype(np.float32)
    y = rng.integers(0, 2, 64)
    plain = fastnn.Sequential([fastnn.Dense(5, 8, activation="relu"), fastnn.Dense(8, 1)],
                              loss="mse", seed=3)
    plain.fit(X, y, epochs=2, batch_size=16, verbose=0, validation_data=(X, y),
              optimizer=fastnn.Adam(1e-2))
    plain_compiled = list(compiled)
    model = fastnn.Sequential([fastnn.Dropout(0.1), fastnn.Dense(5, 8), fastnn.BatchNorm(8),
                               fastnn.Activation("tanh"), fastnn.Dense(8, 1, activation="sigmoid")],
                              loss="binary_crossentropy", seed=3)
    model.fit(X, y, epochs=2, batch_size=16, verbose=0, clip_norm=1.0, validation_data=(X, y),
              optimizer=fastnn.AdamW(fastnn.CosineDecay(1e-2, total_steps=10)))

    def holds_array(ty):
        if isinstance(ty, types.Array):
            return True
        return isinstance(ty, types.BaseTuple) and any(holds_array(t) for t in ty.types)

    internal, returning_arrays, not_link_only = 0, [], []
    for name in ("activations", "batchnorm", "dense", "dropout", "losses", "matmul", "network",
                 "optimizers", "passes", "random", "scan", "schedules", "split", "tasks",
                 "training"):
        for value in vars(importlib.import_module("fastnn.kernels._" + name)).values():
            if isinstance(value, _jit.InternalKernel):
                for cres in value.overloads.values():
                    internal += 1
                    label = value.py_func.__qualname__ + str(cres.signature)
                    if holds_array(cres.signature.return_type):
                        returning_arrays.append(label)
                    if not isinstance(cres.library, _jit.LinkOnlyLibrary):
                        not_link_only.append(label)
    print(json.dumps({"compiled": compiled, "plain": plain_compiled,
                      "out": model.predict(X).tolist() + plain.predict(X).tolist(),
                      "internal": internal, "returning_arrays": returning_arrays,
                      "not_link_only": not_link_only}))
""")


@pytest.fixture(scope="module")
def cold_and_warm(tmp_path_factory):
    """The same training in two fresh processes sharing an empty Numba cache."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path_factory.mktemp("numba-cache")))
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", TRAIN], env=env, capture_output=True,
                             text=True, check=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    return runs


def test_a_warm_process_compiles_nothing(cold_and_warm):
    """Internal kernels are not cached (their code lives inside the entry points that
    are): a second process loads the entry points and compiles no function at all."""
    cold, warm = cold_and_warm
    assert {"_train_batches", "forward_pass", "backward_pass", "forward"} <= set(cold["compiled"])
    assert warm["compiled"] == []
    assert warm["out"] == cold["out"]


#: kernels of kinds the plain regressor (Dense, ReLU, MSE, Adam) does not use
OTHER_KINDS = {"batchnorm_forward", "batchnorm_backward", "batchnorm_inference", "update_running",
               "dropout_forward", "dropout_activation_backward", "lamb_update", "_segment_blocks",
               "clip_factor", "grad_norm", "binary_crossentropy", "categorical_crossentropy",
               "softmax_cross_entropy", "sigmoid_binary_cross_entropy", "correct_binary",
               "correct_categorical"} | {f"{rule.name}_segment" for rule in RULES
                                         if rule.name not in ("adam", "adamw")}


def test_a_model_compiles_the_kernels_of_its_plan_only(cold_and_warm):
    """The plain regressor compiles MSE and Adam and none of the kernels of other kinds;
    the second model (Dropout, BatchNorm, fused sigmoid cross-entropy, AdamW, clipping)
    then compiles those of its own kinds."""
    cold = cold_and_warm[0]
    plain, later = set(cold["plain"]), set(cold["compiled"][len(cold["plain"]):])
    assert {"_train_batches", "_infer_batches", "mse", "rule_pass", "adam_segment"} <= plain
    assert plain & OTHER_KINDS == set()
    assert {"batchnorm_forward", "batchnorm_backward", "batchnorm_inference", "dropout_forward",
            "dropout_activation_backward", "sigmoid_binary_cross_entropy", "correct_binary",
            "clip_factor", "_train_batches"} <= later
    assert later & {"lamb_update", "sgd_segment", "softmax_cross_entropy", "mse"} == set()


def test_internal_kernels_are_link_only_and_return_no_array(cold_and_warm):
    """Without the runtime a view carries no reference of its own: returned to a caller
    compiled with the runtime (a user's @njit function), its release would free the
    caller's array. So internal kernels return scalars only (callers rebuild views from
    the workspace). Their code is only ever linked into the entry points."""
    cold = cold_and_warm[0]
    assert cold["internal"] >= 30
    assert cold["returning_arrays"] == []
    assert cold["not_link_only"] == []


@njit
def _products_with_the_runtime(A, B, C, n):
    """A user's function compiled with Numba's runtime, calling a kernel without it."""
    views = 0
    for _ in range(n):
        V = C[:, 1:]                 # a view the runtime counts references of
        matmul(A, B, C)
        views += V.shape[1]
    return views


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 2), (17, 9, 33)])
def test_kernels_called_from_runtime_code_keep_reference_counts(shape):
    m, k, n = shape
    rng = np.random.default_rng(m * k * n)
    A = rng.standard_normal((m, k))
    B = np.asfortranarray(rng.standard_normal((k, n)))
    C = np.empty((m, n))
    # compiled on copies first: under pytest-xdist a first call's compile kept a reference
    # to its arguments (a count of 5 instead of 4), which is not what this test is about
    _products_with_the_runtime(A.copy(), B.copy(order="F"), C.copy(), 1)
    counts = [sys.getrefcount(a) for a in (A, B, C)]
    assert _products_with_the_runtime(A, B, C, 50) == 50 * (n - 1)
    np.testing.assert_allclose(C, A @ B, rtol=1e-12, atol=1e-12)
    assert [sys.getrefcount(a) for a in (A, B, C)] == counts


def test_an_internal_kernel_called_from_python_runs_its_entry_twin():
    rng = np.random.default_rng(5)
    A, B = rng.standard_normal((4, 3)), rng.standard_normal((3, 6))
    C = np.empty((4, 6))
    matmul(A, B, C)
    np.testing.assert_allclose(C, A @ B, rtol=1e-12)
    assert isinstance(matmul, _jit.InternalKernel)
    assert matmul._entry is not None and matmul._entry is not matmul


PARALLEL_SCAN = """
import sys
import numpy as np
from fastnn.kernels._scan import count_nonfinite, scan_blocks
a = np.ones(1 << 20, np.float64 if sys.argv[1] == "float64" else np.float32)
a[5] = np.inf
counts = np.zeros(scan_blocks(a.size), np.int64)
count_nonfinite(a, counts)
print(counts.sum())
"""


def test_a_parallel_kernel_compiled_against_a_cached_region_runs_from_the_cache(tmp_path):
    """kernels._tasks.run_tasks, loaded from the cache, linked into a kernel compiled now
    (count_nonfinite for float32), and that kernel loaded from the cache in a fresh process
    as its first parallel code: Numba's threads must be started on load (a segmentation
    fault before 0.3's fix)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    for dtype in ("float64", "float32", "float32"):   # run_tasks cached, linked, loaded
        out = subprocess.run([sys.executable, "-c", PARALLEL_SCAN, dtype], env=env,
                             capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.strip() == "1", (dtype, out.stderr[-2000:])
