"""The model layer: gradients of whole networks, a worked example, training,
determinism, and the contract of the public API."""
import zlib

import numpy as np
import pytest

import fastnn

HIDDEN = ["identity", "relu", "sigmoid", "tanh", "softplus"]
# (loss, output activation) pairs: fused pairs and the general chain rule path.
OUTPUTS = [("mse", "identity"), ("mse", "tanh"), ("mse", "softmax"), ("mse", "softplus"),
           ("binary_crossentropy", "sigmoid"), ("binary_crossentropy", "softmax"),
           ("categorical_crossentropy", "softmax"), ("categorical_crossentropy", "sigmoid")]


def make_targets(rng, loss, n, n_out):
    if loss == "mse":
        return rng.standard_normal((n, n_out))
    if loss == "binary_crossentropy":
        return rng.uniform(0, 1, (n, n_out))
    return rng.integers(0, n_out, n)


def numeric_gradient(model, X, y, h=1e-6):
    grad = np.empty_like(model.params)
    for k in range(model.params.size):
        saved = model.params[k]
        model.params[k] = saved + h
        up = model.loss(X, y)
        model.params[k] = saved - h
        down = model.loss(X, y)
        model.params[k] = saved
        grad[k] = (up - down) / (2 * h)
    return grad


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("loss,out_act", OUTPUTS)
def test_network_gradient_matches_finite_differences(hidden, loss, out_act):
    rng = np.random.default_rng(zlib.crc32(f"{hidden} {loss} {out_act}".encode()))
    n, sizes = 7, (4, 5, 3, 3)
    model = fastnn.Sequential(
        [fastnn.Dense(sizes[0], sizes[1], activation=hidden, l2=0.1),
         fastnn.Dense(sizes[1], sizes[2], activation=hidden, l1=0.05),
         fastnn.Dense(sizes[2], sizes[3], activation=out_act)],
        loss=loss, dtype="float64", seed=3)
    # moderate logits: with probabilities within 1e-8 of 0 or 1 the finite differences
    # of log(1 - p), not the backprop, lose their digits
    model.params[:] = rng.standard_normal(model.params.size) * 0.5
    X = rng.standard_normal((n, sizes[0]))
    y = make_targets(rng, loss, n, sizes[-1])
    value = model.loss_and_grad(X, y)
    assert value == pytest.approx(model.loss(X, y), rel=1e-12)
    expected = numeric_gradient(model, X, y)
    np.testing.assert_allclose(model.grads, expected, rtol=1e-5, atol=1e-7)


def test_layer_arrays_are_views_into_flat_vectors():
    model = fastnn.Sequential([fastnn.Dense(3, 4, activation="relu"), fastnn.Dense(4, 2)],
                              seed=0)
    for layer in model.layers:
        assert np.shares_memory(layer.W, model.params) and np.shares_memory(layer.b, model.params)
        assert np.shares_memory(layer.dW, model.grads) and np.shares_memory(layer.db, model.grads)
    assert model.params.size == 3 * 4 + 4 + 4 * 2 + 2
    model.layers[1].b[:] = 7
    assert (model.params[-2:] == 7).all()


def test_notes_worked_example_sample_3_minus2_to_1_4():
    """The worked example "Sample (3, -2) -> (1, 4)": a 2-3-2 linear network; its loss
    1/2 ((ŷ-1)^2 + (ẑ-4)^2) equals MSE over the two outputs."""
    model = fastnn.Sequential([fastnn.Dense(2, 3), fastnn.Dense(3, 2)], dtype="float64")
    model.layers[0].W[:] = [[1, -2], [-4, 5], [1, 3]]     # gives u = (7, -22, -3)
    model.layers[0].b[:] = 0
    model.layers[1].W[:] = [[2, 1, 4], [-2, -1, 5]]       # rows: (w7 w9 w11), (w8 w10 w12)
    model.layers[1].b[:] = [-1, 5]                        # b4, b5: ŷ = -21, ẑ = -2
    X, y = np.array([[3.0, -2.0]]), np.array([[1.0, 4.0]])
    np.testing.assert_array_equal(model.forward(X), [[-21, -2]])
    assert model.loss_and_grad(X, y) == 260.0             # 1/2 (22^2 + 6^2)
    np.testing.assert_array_equal(model.layers[1].db, [-22, -6])
    np.testing.assert_array_equal(model.layers[1].dW, [[-154, 484, 66], [-42, 132, 18]])
    np.testing.assert_array_equal(model.layers[0].db, [-32, -16, -118])
    np.testing.assert_array_equal(model.layers[0].dW, [[-96, 64], [-48, 32], [-354, 236]])


def blobs(rng, n, n_classes=3, dim=5):
    centers = rng.standard_normal((n_classes, dim)) * 3
    labels = rng.integers(0, n_classes, n)
    return centers[labels] + rng.standard_normal((n, dim)), labels


@pytest.mark.parametrize("optimizer", [fastnn.SGD(lr=0.05, momentum=0.9),
                                       fastnn.SGD(lr=0.05, momentum=0.9, nesterov=True),
                                       fastnn.Adagrad(lr=0.05), fastnn.RMSprop(lr=0.003),
                                       fastnn.Adam(lr=0.003, decay=1e-3)])
def test_training_learns_a_classification_problem(optimizer):
    rng = np.random.default_rng(0)
    X, y = blobs(rng, 1200)
    Xv, yv = blobs(np.random.default_rng(0), 300)  # same centers, new noise
    model = fastnn.Sequential([fastnn.Dense(5, 32, activation="relu"),
                               fastnn.Dense(32, 3, activation="softmax")],
                              loss="categorical_crossentropy", seed=1)
    hist = model.fit(X, y, epochs=15, batch_size=32, optimizer=optimizer,
                     validation_data=(Xv, yv), seed=2, verbose=0)
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]
    assert hist.history["val_accuracy"][-1] >= 0.95
    assert model.evaluate(Xv, yv)["accuracy"] == hist.history["val_accuracy"][-1]
    assert (model.predict(Xv) == yv).mean() == pytest.approx(hist.history["val_accuracy"][-1])
    np.testing.assert_allclose(model.predict_proba(Xv).sum(axis=1), 1, rtol=1e-5)


def test_binary_classifier_learns_xor_like_problem():
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, (2000, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    model = fastnn.Sequential([fastnn.Dense(2, 16, activation="tanh"),
                               fastnn.Dense(16, 1, activation="sigmoid")],
                              loss="binary_crossentropy", seed=0)
    hist = model.fit(X, y, epochs=40, batch_size=32, optimizer=fastnn.Adam(lr=0.01),
                     seed=0, verbose=0)
    assert hist.history["accuracy"][-1] > 0.93
    assert model.predict(X).shape == (2000,) and set(np.unique(model.predict(X))) <= {0, 1}


def trained_params(dtype, seed=7):
    rng = np.random.default_rng(0)
    X, y = blobs(rng, 500)
    model = fastnn.Sequential([fastnn.Dense(5, 16, activation="relu", l2=1e-3),
                               fastnn.Dense(16, 3, activation="softmax")],
                              loss="categorical_crossentropy", dtype=dtype, seed=seed)
    model.fit(X, y, epochs=3, batch_size=16, optimizer=fastnn.Adam(), verbose=0)
    return model.params.copy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_gives_bitwise_identical_weights(dtype):
    a, b = trained_params(dtype), trained_params(dtype)
    assert a.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, trained_params(dtype, seed=8))


def test_train_step_equals_loss_and_grad_then_step():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((9, 4)), rng.standard_normal(9)
    layers = lambda: [fastnn.Dense(4, 6, activation="tanh", l2=0.01, l1=0.001),  # noqa: E731
                      fastnn.Dense(6, 1)]
    a = fastnn.Sequential(layers(), dtype="float64", seed=0)
    b = fastnn.Sequential(layers(), dtype="float64", seed=0)
    opt_a, opt_b = fastnn.Adam(lr=0.01), fastnn.Adam(lr=0.01)
    for _ in range(3):
        data_loss = a.train_step(X, y, opt_a)
        penalty = b.penalty()
        objective = b.loss_and_grad(X, y)
        opt_b.step(b)
        assert objective == pytest.approx(data_loss + penalty, rel=1e-12)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12, atol=1e-14)


def test_fit_history_and_resumed_optimizer_state():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((100, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1
    model = fastnn.Sequential([fastnn.Dense(3, 1)], seed=0)
    opt = fastnn.SGD(lr=0.05)
    hist = model.fit(X, y, epochs=4, batch_size=10, optimizer=opt, validation_data=(X, y),
                     verbose=0)
    assert sorted(hist.history) == ["loss", "lr", "time", "val_loss"] and hist.epoch == [0, 1, 2, 3]
    assert hist.history["lr"] == [0.05] * 4
    assert opt.steps == 40
    model.fit(X, y, epochs=1, batch_size=30, optimizer=opt, verbose=0)
    assert opt.steps == 44  # 100 samples in minibatches of 30: 30, 30, 30, 10
    assert model.evaluate(X, y)["loss"] < 0.05


def test_predict_shapes_and_chunking():
    rng = np.random.default_rng(3)
    model = fastnn.Sequential([fastnn.Dense(3, 8, activation="softplus"), fastnn.Dense(8, 1)],
                              dtype="float64", seed=0)
    X = rng.standard_normal((1100, 3))  # more than one predict chunk
    W1, b1, W2, b2 = (l for layer in model.layers for l in (layer.W, layer.b))
    ref = (np.logaddexp(0, X @ W1.T + b1) @ W2.T + b2)[:, 0]
    np.testing.assert_allclose(model.predict(X), ref, rtol=1e-12)
    assert model.predict(X[:1]).shape == (1,)


def test_activation_layer_folds_into_dense():
    model = fastnn.Sequential([fastnn.Dense(3, 4), fastnn.Activation("tanh"),
                               fastnn.Dense(4, 2), fastnn.Activation("softmax")],
                              loss="categorical_crossentropy", seed=0)
    assert [b.activation for b in model.blocks] == ["tanh", "softmax"]
    assert [l.activation for l in model.dense_layers] == ["identity", "identity"]  # not mutated
    assert model.net.fused


def test_outputs_are_finite_for_huge_logits():
    model = fastnn.Sequential([fastnn.Dense(2, 3, activation="softmax")],
                              loss="categorical_crossentropy", seed=0)
    model.layers[0].W[:] = [[1e4, 0], [-1e4, 0], [0, 1e4]]
    X = np.array([[1.0, 0.0], [-1.0, 1.0]])
    loss = model.loss_and_grad(X, np.array([1, 0]))
    assert np.isfinite(loss) and np.isfinite(model.grads).all() and loss > 1e3


def test_early_stopping_keeps_the_best_epoch():
    rng = np.random.default_rng(7)
    X, y = rng.standard_normal((60, 8)), rng.standard_normal(60)     # noise: overfits
    Xv, yv = rng.standard_normal((60, 8)), rng.standard_normal(60)
    model = fastnn.Sequential([fastnn.Dense(8, 64, activation="relu"), fastnn.Dense(64, 1)],
                              dtype="float64", seed=0)
    hist = model.fit(X, y, epochs=200, batch_size=8, optimizer=fastnn.Adam(lr=0.01),
                     validation_data=(Xv, yv), early_stopping=3, verbose=0)
    best = int(np.argmin(hist.history["val_loss"]))
    assert hist.best_epoch == best and len(hist.epoch) == best + 4 < 200
    assert model.evaluate(Xv, yv)["loss"] == pytest.approx(hist.history["val_loss"][best])
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(X, y, early_stopping=2, verbose=0)


@pytest.mark.parametrize("loss,out", [("mse", None), ("categorical_crossentropy", "softmax"),
                                      ("binary_crossentropy", "sigmoid")])
def test_objective_is_loss_and_grad_as_a_function_of_the_parameters(loss, out):
    """What L-BFGS drives: f(params) sets the parameters and gives loss_and_grad's loss
    and gradient (float64), against central differences; f.outputs() the outputs."""
    rng = np.random.default_rng(41)
    model = fastnn.Sequential([fastnn.Dense(4, 6, "tanh", l1=1e-3, l2=1e-2),
                               fastnn.Dense(6, 3, out)], loss=loss, dtype="float64", seed=2)
    X = rng.standard_normal((23, 4))
    y = rng.integers(0, 3, 23) if loss == "categorical_crossentropy" else \
        rng.random((23, 3)) if loss == "binary_crossentropy" else rng.standard_normal((23, 3))
    f = model.objective(X, y)
    p = model.params + 0.1 * rng.standard_normal(model.params.size)
    value, grad = f(p)
    np.testing.assert_array_equal(model.params, p)
    assert grad.dtype == np.float64 and grad is not model.grads
    assert value == model.loss_and_grad(X, y)
    np.testing.assert_array_equal(grad, model.grads)
    np.testing.assert_allclose(f.outputs(), model.forward(X), rtol=1e-12)
    h = 1e-6
    for i in rng.choice(p.size, 12, replace=False):
        step = np.zeros_like(p)
        step[i] = h
        numeric = (f(p + step)[0] - f(p - step)[0]) / (2 * h)
        assert numeric == pytest.approx(grad[i], rel=1e-5, abs=1e-8)
