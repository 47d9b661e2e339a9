"""Sample weights: each minibatch's loss is the weighted mean Σ w L / Σ w of its samples'
losses (scikit-learn's semantics), computed inside the compiled epoch as a per-sample
factor in the loss kernels — no copy of X."""
import numba
import numpy as np
import pytest

import fastnn
import reference as ref
from fastnn.kernels import _losses as losses, contract
from fastnn.kernels._layout import planned_for

NETWORKS = {
    "mse": ([fastnn.Dense(6, 8, "tanh"), fastnn.Dense(8, 2)], "mse"),
    "softmax": ([fastnn.Dense(6, 8, "relu"), fastnn.Dense(8, 3, "softmax")],
                "categorical_crossentropy"),
    "sigmoid": ([fastnn.Dense(6, 8, "tanh"), fastnn.Dense(8, 2, "sigmoid")],
                "binary_crossentropy"),
}


def _build(kind, dtype="float64", seed=1):
    layers, loss = NETWORKS[kind]
    layers = [type(l)(**l.config()) for l in layers]
    return fastnn.Sequential(layers, loss=loss, dtype=dtype, seed=seed)


def _data(kind, n, rng):
    X = rng.standard_normal((n, 6))
    if kind == "mse":
        return X, rng.standard_normal((n, 2))
    if kind == "softmax":
        return X, rng.integers(0, 3, n)
    return X, rng.integers(0, 2, (n, 2))


@pytest.mark.parametrize("name, fused", [(name, False) for name in losses.LOSSES] +
                         [("binary_crossentropy", True), ("categorical_crossentropy", True),
                          ("poisson", True)])
def test_loss_kernels_weigh_each_sample(name, fused):
    """With factors c_j the loss is Σ_j c_j L_j / n and column j's gradient c_j times the
    unweighted one (the reference's losses, column by column)."""
    rng = np.random.default_rng(0)
    m, n = 3, 7
    Z = np.asfortranarray(rng.standard_normal((m, n)))
    act = {"categorical_crossentropy": "softmax", "poisson": "exp"}.get(name, "sigmoid")
    P = Z if name == "mse" else np.asfortranarray(ref.activation(act, Z))
    T = np.zeros((m, n), order="F")
    if name == "categorical_crossentropy":
        T[rng.integers(0, m, n), np.arange(n)] = 1
    else:
        T[...] = rng.uniform(0, 1, (m, n))
    c = rng.uniform(0, 3, n)
    G = np.empty_like(P)
    if fused:
        kernel = {"softmax": losses.softmax_cross_entropy, "exp": losses.exp_poisson,
                  "sigmoid": losses.sigmoid_binary_cross_entropy}[act]
        value = kernel(Z, T, np.empty_like(Z), G, c)
    else:
        value = {"mse": losses.mse, "binary_crossentropy": losses.binary_crossentropy,
                 "categorical_crossentropy": losses.categorical_crossentropy,
                 "poisson": losses.poisson}[name](P, T, G, c)
    expected, grads = 0.0, np.empty((m, n))
    for j in range(n):
        column, gradient = ref.losses(name, P[:, j:j + 1], T[:, j:j + 1])
        expected += c[j] * column / n
        grads[:, j] = c[j] * gradient[:, 0] / n
    if fused:
        grads = c * (ref.activation(act, Z) - T) / (n if act == "softmax" else m * n)
    assert value == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(G, grads, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("kind", list(NETWORKS))
def test_integer_weights_are_repeated_rows(kind):
    """loss_and_grad with integer weights = without weights on the rows repeated."""
    rng = np.random.default_rng(1)
    X, y = _data(kind, 40, rng)
    w = rng.integers(0, 4, 40).astype(float)
    w[0] = 2.0
    model = _build(kind)
    loss = model.loss_and_grad(X, y, sample_weight=w)
    grads = model.grads.copy()
    rows = np.repeat(np.arange(40), w.astype(int))
    repeated = _build(kind)
    assert loss == pytest.approx(repeated.loss_and_grad(X[rows], y[rows]), rel=1e-13)
    np.testing.assert_allclose(grads, repeated.grads, rtol=1e-11, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind, layers", [
    ("softmax", None),
    ("split", [fastnn.Dense(6, 1024, "relu"), fastnn.Dense(1024, 1)]),
    ("remedies", [fastnn.Dropout(0.1), fastnn.Dense(6, 16), fastnn.BatchNorm(16),
                  fastnn.Activation("relu"), fastnn.Dense(16, 1)]),
])
def test_weights_of_one_give_bitwise_the_unweighted_fit(dtype, kind, layers):
    """Through fit (weights all alike are no weights) and through the weighted kernels
    themselves, which make the same parameters bit for bit (their loss sums may round
    differently: the loss kernels' reductions are vectorized differently)."""
    rng = np.random.default_rng(2)
    n = 300
    X = rng.standard_normal((n, 6))

    def build():
        if layers is None:
            return _build("softmax", dtype)
        return fastnn.Sequential([type(l)(**l.config()) for l in layers], dtype=dtype, seed=3)
    y = rng.integers(0, 3, n) if layers is None else rng.standard_normal(n)
    if kind == "split":
        assert planned_for(build().net, 100, training=True).plan.split is \
            (numba.config.NUMBA_NUM_THREADS > 1)
    runs = []
    for weights in (None, np.ones(n)):
        model = build()
        history = model.fit(X, y, sample_weight=weights, epochs=2, batch_size=100, seed=0,
                            verbose=0, validation_data=(X[:50], y[:50]))
        runs.append((model.params.copy(), history.history["loss"], history.history["val_loss"]))
    np.testing.assert_array_equal(runs[1][0], runs[0][0])
    assert runs[1][1:] == runs[0][1:]
    trained = []
    for weights in (None, np.ones(n)):     # the compiled epoch, weighted or not
        model = build()
        net = planned_for(model.net, 100, training=True)
        optimizer = fastnn.Adam()
        buf = model._buffers(100, optimizer.bind(model), net)
        loss, _, _ = contract.train_batches(
            model._xy(X, y)[0], model._xy(X, y)[1], np.arange(n), 0, n, 100, net,
            optimizer.update_rule(np.array([np.inf, np.inf]), net.plan.parallel), buf, 0, 0.0,
            0, weights)
        trained.append((model.params.copy(), loss))
    np.testing.assert_array_equal(trained[1][0], trained[0][0])
    assert trained[1][1] == pytest.approx(trained[0][1], rel=1e-12)


def test_weighted_fits_are_bitwise_alike_on_one_and_two_threads():
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((333, 56)), rng.standard_normal(333)
    w = rng.uniform(0, 2, 333)
    results, original = [], numba.get_num_threads()
    try:
        for threads in (1, 2, 1):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            model = fastnn.Sequential([fastnn.Dense(56, 64, "relu"), fastnn.Dense(64, 64, "relu"),
                                       fastnn.Dense(64, 1)], seed=2)
            model.fit(X, y, sample_weight=w, epochs=2, batch_size=128, verbose=0, seed=0)
            results.append(model.params.copy())
    finally:
        numba.set_num_threads(original)
    for got in results[1:]:
        np.testing.assert_array_equal(got, results[0])


def test_weighted_minibatches_match_the_weighted_mean_and_zero_weights_are_ignored():
    """A fit's first step moves the weights as the weighted full-batch gradient says, and
    samples of weight 0 change nothing (nor does a minibatch of only such samples)."""
    rng = np.random.default_rng(5)
    X, y = _data("mse", 64, rng)
    w = rng.uniform(0, 2, 64)
    w[32:] = 0.0
    model, reference = _build("mse"), _build("mse")
    reference.loss_and_grad(X, y, sample_weight=w)
    step = fastnn.SGD(lr=0.1)
    model.fit(X, y, sample_weight=w, epochs=1, batch_size=64, shuffle=False, optimizer=step,
              verbose=0)
    np.testing.assert_allclose(model.params, _build("mse").params - 0.1 * reference.grads,
                               rtol=1e-12, atol=1e-15)
    garbage = X.copy()
    garbage[32:] = 1e3
    a, b = _build("mse"), _build("mse")
    a.fit(X, y, sample_weight=w, epochs=2, batch_size=16, shuffle=False, verbose=0)
    b.fit(garbage, y, sample_weight=w, epochs=2, batch_size=16, shuffle=False, verbose=0)
    np.testing.assert_array_equal(a.params, b.params)
    assert np.isfinite(a.params).all()


def test_weighted_evaluation_is_the_weighted_mean_of_the_samples_losses():
    rng = np.random.default_rng(6)
    X, y = _data("softmax", 30, rng)
    w = rng.uniform(0, 2, 30)
    model = _build("softmax")
    per_sample = np.array([model.evaluate(X[i:i + 1], y[i:i + 1])["loss"] for i in range(30)])
    got = model.evaluate(X, y, sample_weight=w)
    assert got["loss"] == pytest.approx(np.sum(w * per_sample) / w.sum(), rel=1e-12)
    assert got["accuracy"] == model.evaluate(X, y)["accuracy"]


@pytest.mark.parametrize("weights, match", [
    (np.ones(9), r"shape \(10,\)"),
    (np.ones((10, 1)), r"shape \(10,\)"),
    (-np.arange(10.0), "must be >= 0"),
    (np.r_[np.ones(9), np.nan], "NaN or infinite"),
    (np.zeros(10), "sums to zero"),
    (["a"] * 10, "real numbers"),
])
def test_bad_sample_weights_are_named_and_change_nothing(weights, match):
    rng = np.random.default_rng(7)
    X, y = _data("mse", 10, rng)
    model = _build("mse")
    model.fit(X, y, epochs=1, verbose=0)
    before = model.params.copy()
    with pytest.raises((ValueError, TypeError), match="sample_weight"):
        model.fit(X, y, sample_weight=weights, epochs=1, verbose=0)
    with pytest.raises((ValueError, TypeError), match=match):
        model.fit(X, y, sample_weight=weights, epochs=1, verbose=0)
    with pytest.raises((ValueError, TypeError), match="validation_data"):
        model.fit(X, y, epochs=1, verbose=0, validation_data=(X, y, weights))
    with pytest.raises((ValueError, TypeError), match="sample_weight"):
        model.evaluate(X, y, sample_weight=weights)
    np.testing.assert_array_equal(model.params, before)


# ----------------------------------------------------------- scikit-learn estimators
def _sklearn():
    return pytest.importorskip("sklearn.neural_network")


@pytest.mark.parametrize("solver, batch_size", [("lbfgs", "auto"), ("sgd", 300), ("adam", 300)])
def test_weighted_estimators_match_scikit_learns(solver, batch_size):
    """Full batches in float64: the same coefficients as scikit-learn's MLP with the same
    sample weights (its L2 term divided by the batch's weight sum, as fastnn's) — to
    1e-8, or for Adam, whose ε fastnn scales (docs/sklearn.md), to 1e-4 as without
    weights."""
    sk = _sklearn()
    rng = np.random.default_rng(9)
    X = rng.standard_normal((300, 5))
    y = X[:, 0] - X[:, 1] ** 2
    w = rng.uniform(0, 2, 300)
    options = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=20, random_state=0,
                   batch_size=batch_size)
    with pytest.warns(Warning) if solver != "lbfgs" else _nothing():
        ours = fastnn.MLPRegressor(**options).fit(X, y, sample_weight=w)
    with pytest.warns(Warning) if solver != "lbfgs" else _nothing():
        theirs = sk.MLPRegressor(**options).fit(X, y, sample_weight=w)
    tol = 1e-4 if solver == "adam" else 1e-8
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * 1e-2)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=tol)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_balanced_class_weight_raises_minority_recall():
    from sklearn.datasets import make_classification
    from sklearn.metrics import recall_score

    X, y = make_classification(2000, 10, weights=[0.95, 0.05], flip_y=0, random_state=0)
    recalls = {}
    for class_weight in (None, "balanced"):
        model = fastnn.MLPClassifier((16,), max_iter=50, random_state=0,
                                     class_weight=class_weight)
        with pytest.warns(Warning):
            model.fit(X[:1500], y[:1500])
        recalls[class_weight] = recall_score(y[1500:], model.predict(X[1500:]))
    assert recalls["balanced"] > recalls[None] + 0.2, recalls


def test_a_class_weight_dict_is_per_sample_weights():
    rng = np.random.default_rng(10)
    X, y = rng.standard_normal((120, 4)), rng.choice(["a", "b", "c"], 120)
    options = dict(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=15, random_state=0,
                   dtype="float64")
    weights = {"a": 3.0, "c": 0.5}
    by_class = fastnn.MLPClassifier(class_weight=weights, **options).fit(X, y)
    by_sample = fastnn.MLPClassifier(**options).fit(
        X, y, sample_weight=[weights.get(label, 1.0) for label in y])
    for a, b in zip(by_class.coefs_, by_sample.coefs_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs, fit_kwargs, match", [
    ({"class_weight": {"z": 2.0}}, {}, "class_weight names"),
    ({"class_weight": {"a": -1.0}}, {}, "class_weight: the weights"),
    ({}, {"sample_weight": np.ones(5)}, "sample_weight must hold one weight per sample"),
    ({}, {"sample_weight": -np.ones(60)}, "sample_weight must be >= 0"),
    ({}, {"sample_weight": np.full(60, np.nan)}, "sample_weight holds NaN"),
    ({}, {"sample_weight": np.zeros(60)}, "sample_weight sums to zero"),
])
def test_bad_weights_leave_a_fitted_estimator_unchanged(kwargs, fit_kwargs, match):
    rng = np.random.default_rng(11)
    X, y = rng.standard_normal((60, 4)), rng.choice(["a", "b"], 60)
    model = fastnn.MLPClassifier((5,), max_iter=3, random_state=0)
    with pytest.warns(Warning):
        model.fit(X, y)
    coefs = [c.copy() for c in model.coefs_]
    model.set_params(**kwargs)
    with pytest.raises(ValueError, match=match):
        model.fit(X, y, **fit_kwargs)
    for a, b in zip(model.coefs_, coefs):
        np.testing.assert_array_equal(a, b)


def test_partial_fit_takes_weights_but_not_balanced_classes():
    rng = np.random.default_rng(12)
    X, y = rng.standard_normal((60, 4)), rng.choice([0, 1], 60)
    model = fastnn.MLPClassifier((5,), random_state=0)
    model.partial_fit(X, y, sample_weight=rng.uniform(0, 1, 60), classes=[0, 1])
    model.set_params(class_weight="balanced")
    with pytest.raises(ValueError, match="not supported for partial_fit"):
        model.partial_fit(X, y)
