"""The measuring tools behind the performance figures run and measure what they say."""
import os

import numpy as np
import pytest

import fastnn
from fastnn.bench import contenders, environment, run_one, scaling, table
from fastnn.bench.workloads import LR, WORKLOADS, Workload, build_model, data, fit_options

REGULARIZED = WORKLOADS["mnist-regularized"]


@pytest.fixture
def breakdown(script):
    return script("breakdown")


def test_build_model_matches_the_workload():
    for w in WORKLOADS.values():
        if w.regularized:
            continue
        model = build_model(w, "float64")
        assert model.net.sizes.tolist() == list(w.sizes) and model.dtype == np.float64
        assert model.is_classifier == (w.loss != "mse")


def test_breakdown_times_every_part(breakdown):
    parts = breakdown.breakdown("bike", repeats=1)
    assert set(parts) == {"epoch", "products", "floor", "gather", "epilogues", "loss",
                          "delta + db", "count", "update"}
    assert all(us > 0 for us in parts.values())
    # the epoch contains every product and the update, so it takes longer than either
    assert parts["epoch"] > parts["update"] and parts["epoch"] > 0.5 * parts["floor"]


def test_breakdown_of_the_regularized_workload(monkeypatch, breakdown):
    from fastnn.bench import workloads

    small = REGULARIZED._replace(sizes=(20, 16, 8, 4), samples=256, batch=32)
    monkeypatch.setitem(workloads.WORKLOADS, "mnist-regularized", small)
    monkeypatch.setattr(breakdown, "WORKLOADS", workloads.WORKLOADS)
    parts = breakdown.breakdown("mnist-regularized", repeats=1)
    assert {"dropout", "clip", "epilogues", "delta + db", "update"} <= set(parts)
    assert all(us > 0 for us in parts.values())


def test_remedies_times_each_remedy_alone(monkeypatch, breakdown):
    from fastnn.bench import workloads

    small = WORKLOADS["mnist"]._replace(sizes=(20, 16, 8, 4), samples=256, batch=32)
    monkeypatch.setitem(workloads.WORKLOADS, "mnist", small)
    monkeypatch.setattr(breakdown, "WORKLOADS", workloads.WORKLOADS)
    times = breakdown.remedies("mnist", rounds=1, epochs=1)
    assert set(times) == {"none", "batchnorm", "dropout", "adamw", "clip_norm", "all"}
    assert all(ms > 0 for ms in times.values())


@pytest.mark.parametrize("threads,dtype", [(1, "float64"), (0, "float32")])
def test_scaling_trains_in_a_fresh_process_and_times_each_epoch(threads, dtype):
    times = scaling.fresh("bike", threads, dtype, epochs=2)
    assert len(times) == 2 and all(t > 0 for t in times)


def test_the_regularized_workload_is_mnist_with_regularization():
    plain = WORKLOADS["mnist"]
    assert REGULARIZED.regularized and not plain.regularized
    assert REGULARIZED._replace(name="mnist", regularized=False) == plain
    for a, b in zip(data(plain._replace(samples=64)), data(REGULARIZED._replace(samples=64))):
        np.testing.assert_array_equal(a, b)
    assert isinstance(fit_options(plain)["optimizer"], fastnn.Adam)


def test_build_model_and_fit_options_of_the_regularized_workload(monkeypatch):
    if not hasattr(fastnn, "BatchNorm"):
        pytest.skip("fastnn has no BatchNorm yet")
    options = fit_options(REGULARIZED)
    assert isinstance(options["optimizer"], fastnn.AdamW) and options["optimizer"].lr == LR
    assert options["clip_norm"] == 1.0
    model = build_model(REGULARIZED, "float64")
    assert (model.n_inputs, model.n_outputs, model.dtype) == (784, 10, np.float64)
    X, y = data(REGULARIZED._replace(samples=256))
    history = model.fit(X, y, epochs=1, batch_size=REGULARIZED.batch, verbose=0, **options)
    assert np.isfinite(history.history["loss"][-1])
    assert np.isfinite(model.train_step(X[:128], y[:128], **options))
    built = []
    monkeypatch.setattr(fastnn, "Sequential", lambda layers, **kw: built.append(layers))
    build_model(REGULARIZED)
    hidden = ["Dense", "BatchNorm", "Activation", "Dropout"]
    assert [type(l).__name__ for l in built[0]] == hidden * 2 + ["Dense"]


def test_numpy_and_sklearn_are_not_applicable_to_the_regularized_workload():
    for run in (contenders.numpy_run, contenders.sklearn_run):
        with pytest.raises(contenders.NotApplicable):
            run(REGULARIZED, 1)
    assert run_one("numpy", REGULARIZED.name, 1, environment(None))["error"].startswith(
        "not applicable")


def test_the_table_fits_the_longest_workload_name():
    lines = table({"mnist-regularized": {"floor": [1.0], "torch": [2.0, 3.0]},
                   "bike": {"floor": [1.0]}}, "title").splitlines()
    assert len({len(line) for line in lines[1:]}) == 1
    assert lines[2].startswith("mnist-regularized  floor")


def _learnable(w):
    """Labels a network can learn: the argmax of a fixed random projection of X."""
    X, _ = data(w)
    R = np.random.default_rng(1).standard_normal((w.sizes[0], w.sizes[-1]))
    return X, np.argmax(X @ R, axis=1).astype(np.int64)


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_the_regularized_peers_learn(name):
    pytest.importorskip(name)
    tiny = Workload("tiny-regularized", (20, 32, 16, 4), "softmax_ce", 32, 1024, True)
    epoch = getattr(contenders, f"{name}_trainer")(tiny, *_learnable(tiny))
    losses = [np.mean([float(loss) for loss in epoch()]) for _ in range(6)]
    assert losses[-1] < 0.7 * losses[0]


def _neighbours():
    """pids of running spin-loop neighbours (Linux: /proc)."""
    from fastnn.bench.contention import NEIGHBOUR

    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if NEIGHBOUR.encode() in f.read():
                    found.add(pid)
        except OSError:
            pass
    return found


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="lists processes through /proc")
def test_the_contention_benchmark_measures_in_fresh_processes_beside_a_neighbour():
    """scripts/contention.py's pieces: a fit timed in a fresh process (with and without
    the spinning neighbour, which is gone afterwards), and its tables."""
    from fastnn.bench import contention

    before = _neighbours()
    for busy in (False, True):
        seconds = contention.fresh(["fit", "bike", 1], {"NUMBA_NUM_THREADS": "1"}, busy)
        assert 0 < seconds < 30
    assert _neighbours() <= before
    runs = {(name, situation, pool): [1.0, 2.0, 3.0] if pool == "one thread" else
            [2.0, 3.0, 9.0] for name in ("bike",) for situation in ("idle", "busy neighbour")
            for pool in contention.POOLS}
    text = contention.threads_table(runs, ["bike"], 5)
    assert "bike, busy neighbour" in text and text.count("1.50x") == 2   # medians 3 / 2
    search = contention.search_table({"n_jobs=1": [[3.0, 2.0]], "n_jobs=2": [[4.0, 1.0]],
                                      "n_jobs=2, threads": [[1.5, 0.8]]})
    first, second = search.splitlines()[1:]
    assert "(0.75x)" in first and "(2.00x)" in first and "(2.00x)" in second
    assert "(2.50x)" in second and "(1.00x)" in first and "(1.00x)" in second
