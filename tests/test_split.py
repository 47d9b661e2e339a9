"""Minibatches split by samples across threads (Plan.split, kernels._split): when a plan
splits, and that a split step is the whole minibatch's step (float64 to rounding) on any
data: every loss, penalties and clipping, uneven parts and parts with no sample."""
import numba
import numpy as np
import pytest

import fastnn
from fastnn.buffers import aligned_zeros
from fastnn.kernels import _network as network
from fastnn.kernels._layout import (PARALLEL_WEIGHTS, SPLIT_PRODUCT, Plan, planned_for,
                                    split_parts)
from fastnn.kernels._matmul import PARTS
from fastnn.kernels._training import train_batches
from fastnn.optimizers import check_clip
from fastnn.threads import one_pool


def _dense_model(sizes, **options):
    return fastnn.Sequential([fastnn.Dense(a, b, activation="relu") for a, b in
                              zip(sizes, sizes[1:])], **options)


@pytest.mark.parametrize("sizes, batch", [
    ((56, 64, 64, 1), 48), ((56, 64, 64, 1), 64), ((56, 64, 64, 1), 200),
    ((3, 5, 2), 100_000), ((3, 5, 2), 31), ((1, 256, 256, 1), 512), ((7, 40, 3), 1000),
])
def test_a_plan_splits_small_networks_training_on_large_minibatches(sizes, batch):
    model = _dense_model(sizes)
    widest = max(a * b for a, b in zip(sizes, sizes[1:]))
    expected = (widest < PARALLEL_WEIGHTS and widest * batch >= SPLIT_PRODUCT and batch >= 32)
    net = planned_for(model.net, batch, training=True)
    assert net.plan.split is expected     # whatever the pool's size: one kernel set for all
    if expected:
        assert not net.plan.parallel
    assert not planned_for(model.net, batch).plan.split          # inference: never
    others = {k: v for k, v in net.plan.choices.items() if k not in ("parallel", "split")}
    assert others == {k: v for k, v in model.net.plan.choices.items()
                      if k not in ("parallel", "split")}


@pytest.mark.parametrize("remedy", [[fastnn.BatchNorm(64), fastnn.Activation("relu")],
                                    [fastnn.Dropout(0.2)]])
def test_batchnorm_and_dropout_are_not_split(remedy):
    model = fastnn.Sequential([fastnn.Dense(56, 64), *remedy, fastnn.Dense(64, 1)])
    assert not planned_for(model.net, 1024, training=True).plan.split


def test_parts_of_a_minibatch():
    for parts in (1, 2, 3, PARTS):
        assert split_parts.py_func(parts, 1) == 1
        assert split_parts.py_func(parts, 31) == 1
        assert split_parts.py_func(parts, 10 ** 6) == parts
        assert all(1 <= split_parts.py_func(parts, c) <= max(1, c // 16)
                   for c in range(1, 200))


def _with_plan(net, **choices):
    return net._replace(plan=Plan(**{**net.plan.choices, **choices}))


def _train(model, net, X, T, batch, optimizer, clip, perm):
    """Copies of the model's parameters and optimizer state after one epoch of
    train_batches over ``perm`` with the plan of ``net``, and the (total, correct) sums."""
    params, state = model.params.copy(), optimizer.state.copy()
    grads = np.zeros_like(params)
    ws = aligned_zeros(network.workspace_size.py_func(net, batch), model.dtype)
    buf = network.Buffers(params, grads, state, model.stats.copy(), ws, model._acc.copy())
    with one_pool(net, batch):
        total, correct, _ = train_batches(X, T, perm, 0, len(perm), batch, net,
                                          optimizer.update_rule(clip, net.plan.parallel),
                                          buf, 0, 0.0, 0)
    return params, state, total, correct


CASES = {   # output activation, loss, (L1, L2) of the hidden layers, clip_norm
    "mse": (None, "mse", (0.0, 0.0), None),
    "categorical": ("softmax", "categorical_crossentropy", (1e-4, 1e-3), 0.5),
    "binary": ("sigmoid", "binary_crossentropy", (0.0, 1e-3), None),
}


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 2e-5)])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("n, batch", [(500, 64), (301, 100), (257, 128), (33, 32)])
def test_a_split_step_is_the_whole_minibatchs_step(dtype, tol, case, n, batch):
    """One epoch of Adam on random data (the last minibatch uneven; of one sample for
    n = 257 and 33: a part with none) gives the parameters, optimizer state, loss sum and
    correct count of the serial whole-minibatch plan."""
    out_act, loss, (l1, l2), clip_norm = CASES[case]
    rng = np.random.default_rng(n + batch)
    outputs = 1 if case == "binary" else 3
    model = fastnn.Sequential([fastnn.Dense(9, 33, activation="tanh", l1=l1, l2=l2),
                               fastnn.Dense(33, 20, activation="relu", l2=l2),
                               fastnn.Dense(20, outputs, activation=out_act)],
                              loss=loss, dtype=dtype, seed=int(rng.integers(1000)))
    X = rng.standard_normal((n, 9)).astype(dtype)
    y = (rng.integers(0, 2, n) if case == "binary" else
         rng.integers(0, 3, n) if case == "categorical" else rng.standard_normal((n, 3)))
    X, T = model._xy(X, y)
    optimizer = fastnn.Adam(1e-2)
    optimizer.bind(model)
    clip = check_clip(clip_norm, None)
    perm = rng.permutation(n).astype(np.int64)
    whole = _train(model, _with_plan(model.net, parallel=False, split=False), X, T, batch,
                   optimizer, clip, perm)
    split = _train(model, _with_plan(model.net, parallel=False, split=True), X, T, batch,
                   optimizer, clip, perm)
    assert not np.array_equal(whole[0], model.params)   # it trained
    for a, b in zip(whole[:2], split[:2]):
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol)
    assert split[2] == pytest.approx(whole[2], rel=tol)
    assert split[3] == whole[3]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_split_fit_is_bitwise_alike_on_one_and_two_threads(dtype):
    """56-64-64-1 at batch 128 (the bike network): split by PARTS, not by the threads in
    use."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((333, 56))
    y = X[:, :4].sum(axis=1) + 0.1 * rng.standard_normal(333)

    def build():
        return fastnn.Sequential([fastnn.Dense(56, 64, "relu", l2=1e-4), fastnn.Dense(64, 64, "relu"),
                                  fastnn.Dense(64, 1)], dtype=dtype, seed=2)

    assert planned_for(build().net, 128, training=True).plan.split is (PARTS > 1)
    original = numba.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 1):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            model = build()
            history = model.fit(X, y, epochs=2, batch_size=128, verbose=0)
            results.append((model.params.copy(), np.array(history.history["loss"])))
    finally:
        numba.set_num_threads(original)
    for got in results[1:]:
        for a, b in zip(got, results[0]):
            np.testing.assert_array_equal(a, b)
