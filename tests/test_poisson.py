"""The Poisson loss (half the Poisson deviance, scikit-learn's loss="poisson") with its
exp output: the kernels against a float64 reference and finite differences, the model,
and scikit-learn's estimator."""
import warnings

import numpy as np
import pytest

import fastnn
import reference as ref
from fastnn.kernels import _losses as losses


def _counts(rng, shape):
    Z = np.asfortranarray(rng.standard_normal(shape))
    T = np.asfortranarray(rng.poisson(np.exp(Z)).astype(np.float64))
    return Z, T


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (3, 17)])
def test_exp_poisson_from_log_means_matches_the_reference(shape):
    rng = np.random.default_rng(0)
    Z, T = _counts(rng, shape)
    P, G = np.empty_like(Z), np.empty_like(Z)
    value = losses.exp_poisson(Z, T, P, G)
    expected, _ = ref.losses("poisson", np.exp(Z), T)
    m, n = shape
    assert value == pytest.approx(expected, rel=1e-13)
    np.testing.assert_allclose(P, np.exp(Z), rtol=1e-15)
    np.testing.assert_allclose(G, (np.exp(Z) - T) / (m * n), rtol=1e-13, atol=1e-16)
    h, scratch = 1e-6, np.empty_like(Z)
    for idx in np.ndindex(Z.shape):    # G is dL/dz
        up, down = Z.copy(order="F"), Z.copy(order="F")
        up[idx] += h
        down[idx] -= h
        fd = (losses.exp_poisson(up, T, scratch, scratch.copy(order="F"))
              - losses.exp_poisson(down, T, scratch, scratch.copy(order="F"))) / (2 * h)
        assert G[idx] == pytest.approx(fd, rel=1e-6, abs=1e-10)


def _model(n_out=1, dtype="float64"):
    return fastnn.Sequential([fastnn.Dense(5, 8, "tanh"), fastnn.Dense(8, n_out, "exp")],
                             loss="poisson", dtype=dtype, seed=0)


def _data(n=200, n_out=1, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    rate = np.exp(0.5 * X[:, :1] - 0.3 * X[:, 1:2] + 0.1 * np.arange(n_out))
    return X, rng.poisson(rate).astype(np.float64).reshape(n, n_out)


def test_a_poisson_network_passes_the_finite_difference_check_and_learns():
    X, y = _data(n_out=2)
    model = _model(2)
    loss = model.loss_and_grad(X[:30], y[:30])
    grads, params = model.grads.copy(), model.params.copy()
    h = 1e-6
    for i in range(params.size):
        model.params[i] = params[i] + h
        up = model.loss(X[:30], y[:30], training=True)
        model.params[i] = params[i] - h
        down = model.loss(X[:30], y[:30], training=True)
        model.params[i] = params[i]
        assert grads[i] == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-9)
    history = model.fit(X, y, epochs=30, batch_size=32, optimizer=fastnn.Adam(0.01), verbose=0)
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]
    assert model.evaluate(X, y)["loss"] == pytest.approx(
        ref.losses("poisson", model.predict(X), y)[0], rel=1e-9)
    assert (model.predict(X) > 0).all() and not model.is_classifier
    assert loss > 0


def test_the_poisson_loss_needs_an_exp_output_and_counts():
    with pytest.raises(ValueError, match="loss 'poisson' needs positive means: give the last "
                                         "layer activation 'exp'"):
        fastnn.Sequential([fastnn.Dense(5, 1)], loss="poisson")
    model = _model()
    with pytest.raises(ValueError, match="negative values"):
        model.fit(np.zeros((4, 5)), -np.ones(4), verbose=0)


@pytest.mark.parametrize("solver, batch_size, tol", [("lbfgs", "auto", 1e-9),
                                                    ("sgd", 300, 1e-12), ("sgd", 32, 1e-5)])
@pytest.mark.parametrize("n_out", [1, 2])
def test_mlp_regressor_poisson_is_scikit_learns(solver, batch_size, tol, n_out):
    """float64: scikit-learn's coefficients, loss_ and predictions (minibatches of 32: to
    the documented L2 difference of a smaller last minibatch)."""
    sk = pytest.importorskip("sklearn.neural_network")
    X, y = _data(300, n_out)
    y = y[:, 0] if n_out == 1 else y
    options = dict(loss="poisson", hidden_layer_sizes=(8,), solver=solver, max_iter=20,
                   random_state=0, batch_size=batch_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = fastnn.MLPRegressor(**options).fit(X, y)
        theirs = sk.MLPRegressor(**options).fit(X, y)
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    # loss_ adds the L2 term at the epoch's end (docs/sklearn.md): to 1e-7 for SGD
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=max(tol, 1e-7))
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=tol * 10)
