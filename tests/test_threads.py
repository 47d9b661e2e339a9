import os
import subprocess
import sys

import numba
import numpy as np
import pytest

import fastnn


def test_set_num_threads_before_any_kernel_ran():
    code = ("import fastnn; fastnn.set_num_threads(1); "
            "from threadpoolctl import threadpool_info; "
            "print(sorted({p['num_threads'] for p in threadpool_info() "
            "if 'scipy' in p['filepath']}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[1]"


def test_set_num_threads_from_another_python_thread():
    code = ("import threading, fastnn; fastnn.get_num_threads(); "
            "from threadpoolctl import threadpool_limits; threadpool_limits(2, 'blas'); "
            "t = threading.Thread(target=fastnn.set_num_threads, args=(1,)); t.start(); "
            "t.join(); print(fastnn.get_num_threads())")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout
    assert out.strip() == "1"


def test_set_num_threads_limits_blas_and_keeps_results_deterministic():
    original = fastnn.get_num_threads()
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((300, 20)), rng.integers(0, 3, 300)

    def train():
        model = fastnn.Sequential([fastnn.Dense(20, 64, activation="relu"),
                                   fastnn.Dense(64, 3, activation="softmax")],
                                  loss="categorical_crossentropy", seed=0)
        model.fit(X, y, epochs=2, batch_size=50, verbose=0)
        return model.params.copy()

    try:
        fastnn.set_num_threads(1)
        assert fastnn.get_num_threads() == 1
        one = train()
        np.testing.assert_array_equal(one, train())
    finally:
        fastnn.set_num_threads(original)
    assert fastnn.get_num_threads() == original


def _parallel_model(dtype, n_in=200, hidden=256, norm=False, dropout=0.1):
    layers = [fastnn.Dense(n_in, hidden, activation=None if norm else "relu", l2=1e-4)]
    if norm:
        layers += [fastnn.BatchNorm(hidden), fastnn.Activation("relu")]
    if dropout:
        layers.append(fastnn.Dropout(dropout))
    layers.append(fastnn.Dense(hidden, 10, activation="softmax"))
    return fastnn.Sequential(layers, loss="categorical_crossentropy", dtype=dtype, seed=1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("norm, dropout", [(False, 0.1), (True, 0.1), (False, 0.0)])
def test_parallel_plan_trains_bitwise_alike_on_one_and_two_threads(dtype, norm, dropout):
    """A network wide enough for the parallel plan (products split across Numba's
    threads, Adam's large segments in blocks, the gather in blocks) gives the same bits
    for any thread count; BLAS is back at its thread count after fit."""
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((333, 200)), rng.integers(0, 10, 333)
    assert _parallel_model(dtype).net.plan.parallel
    blas_before = fastnn.get_num_threads()
    results = []
    original = numba.get_num_threads()
    try:
        for threads in (1, 2, 1):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            model = _parallel_model(dtype, norm=norm, dropout=dropout)
            model.fit(X, y, epochs=2, batch_size=96, optimizer=fastnn.AdamW(1e-3), verbose=0)
            results.append((model.params.copy(), model.stats.copy(), model.predict_proba(X)))
    finally:
        numba.set_num_threads(original)
    for got in results[1:]:
        for a, b in zip(got, results[0]):
            np.testing.assert_array_equal(a, b)
    assert fastnn.get_num_threads() == blas_before


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ["identity", "relu", "sigmoid", "tanh", "softplus", "softmax"])
@pytest.mark.parametrize("shape", [(1, 1), (7, 33), (128, 128), (1, 20000), (333, 97),
                                   (2049, 17)])
def test_parallel_epilogue_and_delta(dtype, act, shape):
    """The parallel plan's epilogue Y = f(Y + b) (blocks of samples) and delta + db
    (D = D ⊙ f'(Z), db = row-sum D, blocks of units): the same bits on 1 and 2 threads,
    and the serial loops' values to rounding (compiled apart, for strided blocks, LLVM
    may vectorize a column's softmax sum differently); db against a float64 sum."""
    from fastnn.kernels import ACTIVATIONS
    from fastnn.kernels import _network as network

    m, n = shape
    code = ACTIVATIONS[act]
    rng = np.random.default_rng(m * n)
    Z = np.asfortranarray(rng.standard_normal((m, n)).astype(dtype))
    b = rng.standard_normal(m).astype(dtype)
    D = np.asfortranarray(rng.standard_normal((m, n)).astype(dtype))

    def run(epilogue, delta):
        Y, dZ, db = Z.copy(order="F"), D.copy(order="F"), np.full(m, np.nan, dtype)
        epilogue(Y, b, code)
        delta(code, Y, dZ, db)
        return Y, dZ, db

    serial = run(network.bias_activation_forward, network._delta_bias)
    original = numba.get_num_threads()
    try:
        parallel = []
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            parallel.append(run(network._bias_activation_blocks, network._delta_bias_blocks))
    finally:
        numba.set_num_threads(original)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    for one, two, ref in zip(*parallel, serial):
        np.testing.assert_array_equal(one, two)
        np.testing.assert_allclose(one, ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(serial[2], serial[1].sum(axis=1, dtype=np.float64),
                               rtol=tol, atol=tol * n)


def _random_product(rng, m, k, n, dtype, layout):
    """(a, b, out) of one of the dense layer's three product layouts."""
    def f(r, c):
        return np.asfortranarray(rng.standard_normal((r, c)).astype(dtype))

    def c(r, cols):
        return rng.standard_normal((r, cols)).astype(dtype)

    if layout == "forward":            # Y (F) = W (C) · X (F)
        return c(m, k), f(k, n), np.zeros((m, n), dtype, order="F")
    if layout == "weights":            # dW (C) = dZ (F) · Xᵀ (C view of F)
        return f(m, k), f(n, k).T, np.zeros((m, n), dtype)
    return c(k, m).T, f(k, n), np.zeros((m, n), dtype, order="F")   # dX = Wᵀ · dZ


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["forward", "weights", "inputs"])
@pytest.mark.parametrize("shape", [(1, 700, 3001), (257, 333, 129), (1031, 65, 97),
                                   (64, 1024, 65), (2048, 31, 40)])
@pytest.mark.parametrize("parts", [1, 2, 3])
def test_matmul_parallel_against_float64_reference(dtype, layout, shape, parts):
    from fastnn.kernels._matmul import matmul_parallel

    rng = np.random.default_rng(sum(shape))
    a, b, out = _random_product(rng, *shape, dtype, layout)
    out[...] = np.nan
    matmul_parallel(a, b, out, parts)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol * np.sqrt(shape[1]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 16383, 2 * 16384 + 1, 100_003])
@pytest.mark.parametrize("optimizer", [
    "SGD(0.01)", "SGD(0.01, momentum=0.9)", "SGD(0.01, momentum=0.9, nesterov=True)",
    *(f"{cls.__name__}()" for cls in fastnn.optimizers.OPTIMIZERS.values()
      if cls is not fastnn.SGD)])
def test_updates_in_blocks_are_the_serial_updates(dtype, n, optimizer):
    """The parallel plan's update (large segments in blocks across threads) against the
    serial one, for every rule: the same formula per element, to rounding (the two are
    compiled apart, and LLVM may fuse a multiply-add in one and not the other; for one
    plan the bits do not depend on the thread count: the training test above)."""
    from fastnn.kernels import Segments, optimizer_update

    cut = n // 3
    seg = Segments(np.array([0, cut, n]), np.array([0.0, 1e-3]), np.array([1e-2, 0.0]),
                   np.array([1.0, 0.0]))
    clip = fastnn.optimizers.check_clip(None, 0.5)
    runs = []
    for parallel in (False, True):
        opt = eval("fastnn." + optimizer)
        upd = opt.update_rule(clip, parallel)
        rng = np.random.default_rng(n)     # the same vectors for both
        p = rng.standard_normal(n).astype(dtype)
        start = p.copy()
        state = np.zeros((fastnn.kernels.STATE_VECTORS[opt.code], n), dtype)
        for step in range(3):
            g = rng.standard_normal(n).astype(dtype)
            optimizer_update(upd, seg, p, g, state, step)
        assert np.isfinite(p).all() and not np.array_equal(p, start)
        runs.append((p, state))
    tol = 1e-6 if dtype == np.float32 else 1e-14
    for a, b in zip(*runs):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("sizes, batch, held", [
    ((56, 64, 64, 1), 200, True),        # 0.8 M multiply-adds: BLAS's threads cost more
    ((3, 5, 2), 7, False),               # below OpenBLAS's own threshold: nothing to hold
    ((56, 64, 64, 1), 64, False),        # 2^18: OpenBLAS's threshold, still one thread
    ((100, 128, 128, 10), 1024, False),  # 16.8 M: BLAS's threads pay
    ((1, 256, 256, 1), 1, True),         # a parallel plan: always
])
def test_one_pool_holds_blas_at_one_thread_where_its_threads_do_not_pay(sizes, batch, held):
    from threadpoolctl import threadpool_limits

    from fastnn.threads import _blas_controllers, largest_product, one_pool

    model = fastnn.Sequential([fastnn.Dense(a, b) for a, b in zip(sizes, sizes[1:])])
    widest = max(a * b for a, b in zip(sizes, sizes[1:]))
    assert largest_product(model.net, batch) == batch * widest
    pools = _blas_controllers()
    with threadpool_limits(2, user_api="blas"):
        with one_pool(model.net, batch):
            inside = {pool.get_num_threads() for pool in pools}
        after = {pool.get_num_threads() for pool in pools}
    assert inside == ({1} if held else {2})
    assert after == {2}


@pytest.mark.parametrize("sizes, batch, parallel", [
    ((56, 64, 64, 1), 64, False),       # 0.26 M multiply-adds: serial kernels pay
    ((56, 64, 64, 1), 127, False),      # just below 2^19
    ((56, 64, 64, 1), 128, True),       # 2^19
    ((3, 5, 2), 100_000, True),         # 25 weights, but 2.5 M multiply-adds
    ((3, 5, 2), 1, False),
    ((1, 256, 256, 1), 1, True),        # a widest layer of 2^16 weights: any batch
])
def test_the_plan_follows_the_batch_size(sizes, batch, parallel):
    from fastnn.kernels._layout import PARALLEL_WEIGHTS, planned_for

    model = fastnn.Sequential([fastnn.Dense(a, b) for a, b in zip(sizes, sizes[1:])])
    widest = max(a * b for a, b in zip(sizes, sizes[1:]))
    assert model.net.plan.parallel == (widest >= PARALLEL_WEIGHTS)
    net = planned_for(model.net, batch)
    assert net.plan.parallel is parallel
    others = {k: v for k, v in net.plan.choices.items() if k != "parallel"}
    assert others == {k: v for k, v in model.net.plan.choices.items() if k != "parallel"}
    assert all(a is b for a, b in zip(net[:-1], model.net[:-1]))   # the same tables


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_small_network_at_a_large_batch_trains_on_the_pool_bitwise_alike(dtype):
    """20-64-64-3 at batch 256 (1 M multiply-adds): the parallel plan, and the same bits
    on 1 and 2 threads."""
    from fastnn.kernels._layout import planned_for

    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((700, 20)), rng.integers(0, 3, 700)

    def build():
        return fastnn.Sequential([fastnn.Dense(20, 64, "relu"), fastnn.Dense(64, 64, "tanh"),
                                  fastnn.Dense(64, 3, "softmax")],
                                 loss="categorical_crossentropy", dtype=dtype, seed=3)

    net = build().net
    assert planned_for(net, 256).plan.parallel and not net.plan.parallel
    original = numba.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            model = build()
            model.fit(X, y, epochs=2, batch_size=256, verbose=0)
            results.append((model.params.copy(), model.predict_proba(X)))
    finally:
        numba.set_num_threads(original)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


class _Plan:
    def __init__(self, parallel=True, split=False):
        self.parallel, self.split = parallel, split


def _run_chooser(chooser, per_step, chunks, sizer_steps=64):
    """Feed ``chooser`` chunks whose time per step is ``per_step(threads, chunk)``;
    returns the thread count of each chunk."""
    used = []
    for chunk in range(chunks):
        threads, steps = chooser.next(sizer_steps)
        used.append(threads)
        chooser.record(threads, steps, steps * per_step(threads, chunk))
    return used


def test_the_chooser_runs_the_faster_thread_count_and_tries_the_other_less_and_less():
    from fastnn.threads import LONGEST_PATIENCE, ThreadChooser

    ThreadChooser._last.clear()
    busy = ThreadChooser(_Plan(), key="busy", threads=2)
    used = _run_chooser(busy, lambda threads, _: {2: 3e-3, 1: 1e-3}[threads], 200)
    assert used[:3] == [2, 2, 1]          # the first chunk (loading) is not measured
    trials = [i for i, t in enumerate(used) if t == 2][2:]
    assert used[-20:].count(1) >= 19 and len(trials) <= 8
    gaps = np.diff(trials)
    assert (np.diff(gaps) >= 0).all() and gaps.max() <= LONGEST_PATIENCE + 1

    ThreadChooser._last.clear()
    idle = ThreadChooser(_Plan(), key="idle", threads=2)
    used = _run_chooser(idle, lambda threads, _: {2: 1e-3, 1: 1.8e-3}[threads], 100)
    assert used[-20:].count(2) >= 19


def test_the_chooser_follows_a_neighbour_that_comes_and_goes():
    from fastnn.threads import ThreadChooser

    ThreadChooser._last.clear()
    chooser = ThreadChooser(_Plan(), key="varying", threads=2)

    def per_step(threads, chunk):
        busy = 100 <= chunk < 300
        return {2: 4e-3 if busy else 1e-3, 1: 1.5e-3}[threads]

    used = _run_chooser(chooser, per_step, 400)
    assert used[95:100] == [2] * 5
    assert used[110:300].count(1) >= 170      # one thread soon after the neighbour starts
    assert used[-30:].count(2) >= 25          # the pool again once it has gone


def test_the_chooser_has_nothing_to_choose_for_a_serial_plan_or_one_thread():
    from fastnn.threads import ThreadChooser

    for chooser in (ThreadChooser(_Plan(parallel=False), threads=2),
                    ThreadChooser(_Plan(), threads=1)):
        assert len(set(_run_chooser(chooser, lambda t, _: 1e-3 * t, 50))) == 1


def test_a_new_fit_starts_from_the_last_fits_choice():
    from fastnn.threads import ThreadChooser

    ThreadChooser._last.clear()
    slow_pool = lambda threads, _: {2: 3e-3, 1: 1e-3}[threads]   # noqa: E731
    _run_chooser(ThreadChooser(_Plan(), key="net", threads=2), slow_pool, 30)
    used = _run_chooser(ThreadChooser(_Plan(), key="net", threads=2), slow_pool, 8)
    assert used[:6] == [1] * 6
    other = _run_chooser(ThreadChooser(_Plan(), key="other net", threads=2), slow_pool, 3)
    assert other[:2] == [2, 2]


@pytest.mark.parametrize("sizes, batch", [((56, 64, 64, 1), 128),       # split plan
                                          ((200, 256, 10), 96)])         # products plan
def test_chunks_on_alternating_thread_counts_give_the_bits_of_the_pool(monkeypatch, sizes,
                                                                       batch):
    """The chooser's fallback to one thread changes no bit: a fit whose chunks alternate
    between one thread and the pool (chunks of 1 to 3 steps) trains the weights of a fit
    on the pool alone."""
    from fastnn import threads as fastnn_threads
    from fastnn.kernels._layout import planned_for

    rng = np.random.default_rng(11)
    X, y = rng.standard_normal((999, sizes[0])), rng.standard_normal((999, sizes[-1]))

    def fit():
        model = fastnn.Sequential([fastnn.Dense(a, b, "relu") for a, b in
                                   zip(sizes[:-2], sizes[1:-1])] + [fastnn.Dense(*sizes[-2:])],
                                  dtype="float32", seed=4)
        plan = planned_for(model.net, batch, training=True).plan
        assert plan.split or plan.parallel
        model.fit(X, y, epochs=2, batch_size=batch, optimizer=fastnn.Adam(1e-3), verbose=0)
        return model.params.copy()

    pool = fit()
    chunks = []

    class Alternating(fastnn_threads.ThreadChooser):
        def next(self, steps):
            chunks.append(len(chunks) % 2 + 1)
            return (self.choices[0] if chunks[-1] == 2 else 1), len(chunks) % 3 + 1

    monkeypatch.setattr(fastnn_threads, "ThreadChooser", Alternating)
    monkeypatch.setattr("fastnn.engines.ThreadChooser", Alternating)
    alternating = fit()
    assert len(chunks) > 6
    np.testing.assert_array_equal(alternating, pool)


# ------------------------------------------------------- fits in other Python threads
_THREADED_FITS = """
import sys, threading
import numpy as np
import fastnn
rng = np.random.default_rng(3)
X = rng.standard_normal((512, 784), dtype=np.float32)
y = rng.integers(0, 10, 512)
def model():
    return fastnn.Sequential([fastnn.Dense(784, 512, activation="relu"),
                              fastnn.Dense(512, 10, activation="softmax")],
                             loss="categorical_crossentropy", dtype="float32", seed=1)
def fit(m, out):
    m.fit(X, y, epochs=2, batch_size=256, verbose=0)
    out.append((m.params.copy(), m.predict_proba(X)))
main, alone, together = [], [], []
blas = fastnn.get_num_threads()
fit(model(), main)
t = threading.Thread(target=fit, args=(model(), alone)); t.start(); t.join()
ts = [threading.Thread(target=fit, args=(model(), together)) for _ in range(2)]
[t.start() for t in ts]; [t.join() for t in ts]
assert len(together) == 2
for got in alone + together:
    for a, b in zip(got, main[0]):
        np.testing.assert_array_equal(a, b)
assert fastnn.get_num_threads() == blas, (fastnn.get_num_threads(), blas)
import numba
print(numba.threading_layer())
"""


@pytest.mark.parametrize("layer", ["default", "workqueue"])
def test_fits_in_other_python_threads_train_the_main_threads_bits(layer):
    """A parallel-plan fit (784-512-10 in float32 at batch 256: each thread's block of a
    product 51 M multiply-adds, whose bits OpenBLAS's threads change) in a second Python
    thread, and two at once, give the weights and
    predictions of the same fit in the main thread, and BLAS is back at its thread count
    after; under the workqueue threading layer (which aborts a process whose threads
    enter parallel regions at once) too. A fresh process: its first BLAS setter is the
    main thread, as in a user's script."""
    env = {**os.environ, "NUMBA_THREADING_LAYER": layer, "OPENBLAS_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", _THREADED_FITS], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert layer == "default" or out.stdout.split() == ["workqueue"]


def test_one_pool_holds_blas_from_any_thread_until_the_last_holder_leaves():
    import threading

    from threadpoolctl import threadpool_limits

    from fastnn.threads import _blas_controllers, one_pool

    net = fastnn.Sequential([fastnn.Dense(1, 256), fastnn.Dense(256, 256)]).net
    assert net.plan.parallel
    pools = _blas_controllers()
    entered, leave, seen = threading.Barrier(3), [threading.Event() for _ in range(2)], []

    def hold(i):
        with one_pool(net, 8):
            seen.append({pool.get_num_threads() for pool in pools})
            entered.wait()
            leave[i].wait()
        seen.append(("left", i, {pool.get_num_threads() for pool in pools}))

    with threadpool_limits(2, user_api="blas"):
        threads = [threading.Thread(target=hold, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        entered.wait()
        leave[0].set()
        threads[0].join()
        leave[1].set()
        threads[1].join()
        after = {pool.get_num_threads() for pool in pools}
    assert seen == [{1}, {1}, ("left", 0, {1}), ("left", 1, {2})]
    assert after == {2}
