"""The remedies of 0.2 through the model: gradient checks with BatchNorm and Dropout,
BatchNorm's PyTorch semantics, Dropout's train/inference behaviour and reproducibility,
the new optimizers, schedules, clipping and ReduceLROnPlateau through ``fit``."""
import zlib

import numpy as np
import pytest

import fastnn
import reference as ref

HIDDEN = ["identity", "relu", "sigmoid", "tanh", "softplus"]
OUTPUTS = [("mse", None), ("mse", "softmax"), ("categorical_crossentropy", "softmax"),
           ("binary_crossentropy", "sigmoid")]


def targets(rng, loss, n, n_out):
    if loss == "mse":
        return rng.standard_normal((n, n_out))
    if loss == "binary_crossentropy":
        return rng.uniform(0, 1, (n, n_out))
    return rng.integers(0, n_out, n)


def numeric_gradient(model, X, y, step, h=1e-6):
    grad = np.empty_like(model.params)
    for k in range(model.params.size):
        saved = model.params[k]
        model.params[k] = saved + h
        up = model.loss(X, y, training=True, step=step)
        model.params[k] = saved - h
        down = model.loss(X, y, training=True, step=step)
        model.params[k] = saved
        grad[k] = (up - down) / (2 * h)
    return grad


def regularized_layers(hidden, out_act, n_out, *, norm=True, drop=(0.0, 0.0, 0.0)):
    layers = []
    if drop[0]:
        layers.append(fastnn.Dropout(drop[0]))
    layers += [fastnn.Dense(4, 6, l2=0.1)]
    if norm:
        layers.append(fastnn.BatchNorm(6, momentum=0.3, eps=1e-3))
    layers.append(fastnn.Activation(hidden))
    if drop[1]:
        layers.append(fastnn.Dropout(drop[1]))
    layers += [fastnn.Dense(6, 5, activation=hidden, l1=0.05)]
    if drop[2]:
        layers.append(fastnn.Dropout(drop[2]))
    layers += [fastnn.Dense(5, n_out)]
    if norm:
        layers.append(fastnn.BatchNorm(n_out))
    if out_act:
        layers.append(fastnn.Activation(out_act))
    return layers


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("loss,out_act", OUTPUTS)
@pytest.mark.parametrize("variant", ["batchnorm", "dropout", "both"])
def test_gradient_matches_finite_differences(hidden, loss, out_act, variant):
    """Training mode (batch statistics, the dropout stream of a fixed update count)."""
    rng = np.random.default_rng(zlib.crc32(f"{hidden} {loss} {variant}".encode()))
    drop = (0.0, 0.0, 0.0) if variant == "batchnorm" else (0.2, 0.3, 0.25)
    model = fastnn.Sequential(regularized_layers(hidden, out_act, 3, norm=variant != "dropout",
                                                 drop=drop), loss=loss, dtype="float64", seed=3)
    model.params[:] = rng.standard_normal(model.params.size) * 0.5
    X, y = rng.standard_normal((9, 4)), targets(rng, loss, 9, 3)
    step = 17
    value = model.loss_and_grad(X, y, step=step)
    assert value == pytest.approx(model.loss(X, y, training=True, step=step), rel=1e-12)
    expected = numeric_gradient(model, X, y, step)
    np.testing.assert_allclose(model.grads, expected, rtol=1e-5, atol=1e-7)


def test_dropout_masks_depend_on_the_step_and_match_fit():
    """loss_and_grad at step t draws the mask that fit's update number t + 1 draws."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 3))
    model = fastnn.Sequential(regularized_layers("tanh", None, 3, norm=False,
                                                 drop=(0.3, 0.3, 0.3)), dtype="float64", seed=1)
    a, b = model.loss(X, y, training=True, step=0), model.loss(X, y, training=True, step=1)
    assert a != b and a == model.loss(X, y, training=True, step=0)
    inference = model.loss(X, y)
    assert inference not in (a, b)
    # train_step at update 0 equals loss_and_grad(step=0) then the same update
    twin = fastnn.Sequential(regularized_layers("tanh", None, 3, norm=False,
                                                drop=(0.3, 0.3, 0.3)), dtype="float64", seed=1)
    opt_a, opt_b = fastnn.SGD(lr=0.1), fastnn.SGD(lr=0.1)
    for step in range(3):
        data_loss = model.train_step(X, y, opt_a)
        penalty = twin.penalty()
        assert twin.loss_and_grad(X, y, step=step) == pytest.approx(data_loss + penalty,
                                                                    rel=1e-12)
        opt_b.step(twin)
    np.testing.assert_allclose(model.params, twin.params, rtol=1e-12, atol=1e-15)


def test_batchnorm_has_pytorch_batchnorm1d_semantics():
    """Batch statistics (biased variance) in training, running statistics updated with
    the unbiased variance and used at inference, γ and β learned, bias kept at 0."""
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((10, 3)) * 2 + 1, rng.standard_normal((10, 2))
    dense, norm = fastnn.Dense(3, 4), fastnn.BatchNorm(4, momentum=0.2, eps=1e-3)
    model = fastnn.Sequential([dense, norm, fastnn.Dense(4, 2)], dtype="float64", seed=0)
    np.testing.assert_array_equal(norm.gamma, 1)
    np.testing.assert_array_equal(norm.running_var, 1)
    Z = (X @ dense.W.T).T                                # (features, batch), before the step
    model.train_step(X, y, fastnn.SGD(lr=0.1))
    np.testing.assert_allclose(norm.running_mean, 0.2 * Z.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(norm.running_var, 0.8 + 0.2 * Z.var(axis=1, ddof=1), rtol=1e-12)
    # inference uses the running statistics
    Xt = rng.standard_normal((5, 3))
    Zt = (Xt @ dense.W.T).T
    Yt = (Zt - norm.running_mean[:, None]) / np.sqrt(norm.running_var[:, None] + 1e-3)
    Yt = norm.gamma[:, None] * Yt + norm.beta[:, None]
    out = Yt.T @ model.layers[2].W.T + model.layers[2].b
    np.testing.assert_allclose(model.predict(Xt), out, rtol=1e-12)
    # training mode uses the batch's own statistics
    Yb, *_ = ref.batchnorm_train((X @ dense.W.T).T, norm.gamma, norm.beta, 1e-3)
    expected = np.mean((Yb.T @ model.layers[2].W.T + model.layers[2].b - y) ** 2)
    assert model.loss(X, y, training=True) == pytest.approx(expected, rel=1e-12)
    # γ and β learn; the Dense's unused bias stays 0 and so does its gradient
    model.fit(X, y, epochs=5, batch_size=5, optimizer=fastnn.Adam(lr=0.05), verbose=0)
    assert not np.allclose(norm.gamma, 1) and not np.allclose(norm.beta, 0)
    np.testing.assert_array_equal(dense.b, 0)
    np.testing.assert_array_equal(dense.db, 0)
    for name in ("gamma", "beta", "dgamma", "dbeta"):
        flat = model.grads if name.startswith("d") else model.params
        assert np.shares_memory(getattr(norm, name), flat)
    assert np.shares_memory(norm.running_mean, model.stats)
    assert not np.shares_memory(norm.running_mean, model.params)


def test_loss_and_grad_leaves_running_statistics_alone():
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    model = fastnn.Sequential([fastnn.Dense(3, 4), fastnn.BatchNorm(4), fastnn.Dense(4, 2)],
                              seed=0)
    stats = model.stats.copy()
    model.loss_and_grad(X, y)
    model.loss(X, y, training=True)
    np.testing.assert_array_equal(model.stats, stats)
    model.train_step(X, y, fastnn.Adam())
    assert not np.array_equal(model.stats, stats)


def test_dropout_is_the_identity_at_inference_and_drops_in_training():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((4000, 50))
    # a Dropout on the inputs, then an identity Dense: Y = Ã, so the mask shows
    dense = fastnn.Dense(50, 50)
    model = fastnn.Sequential([fastnn.Dropout(0.3), dense], dtype="float64", seed=2)
    dense.W[:] = np.eye(50)
    np.testing.assert_array_equal(model.predict(X), X)
    assert model.evaluate(X, X)["loss"] == 0.0
    model.loss_and_grad(X, np.zeros_like(X))   # training mode: dW = D · Ãᵀ with D = 2Y/size
    dropped = dense.dW * X.size / 2            # = Ã Ãᵀ
    kept = np.diag(dropped) / (X ** 2).sum(axis=0)
    assert np.all(np.abs(kept * 0.7 - 1) < 0.05)   # E[m/(1 − p) · m/(1 − p)] = 1/(1 − p)


def trained(seed, dtype="float32", threads=None, **options):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((300, 6)), rng.integers(0, 3, 300)
    model = fastnn.Sequential([fastnn.Dropout(0.1), fastnn.Dense(6, 16), fastnn.BatchNorm(16),
                               fastnn.Activation("relu"), fastnn.Dropout(0.3),
                               fastnn.Dense(16, 3, activation="softmax")],
                              loss="categorical_crossentropy", dtype=dtype, seed=seed)
    opt = fastnn.AdamW(lr=fastnn.CosineDecay(1e-2, total_steps=60, warmup_steps=5))
    model.fit(X, y, epochs=3, batch_size=16, optimizer=opt, verbose=0, clip_norm=1.0, **options)
    return np.concatenate([model.params, model.stats])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_regularized_training_is_bitwise_reproducible(dtype):
    a = trained(7, dtype)
    np.testing.assert_array_equal(a, trained(7, dtype))
    assert not np.array_equal(a, trained(8, dtype))


def test_regularized_training_is_identical_for_any_thread_count():
    original = fastnn.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            fastnn.set_num_threads(threads)
            results.append(trained(3))
    finally:
        fastnn.set_num_threads(original)
    np.testing.assert_array_equal(results[0], results[1])


def blobs(rng, n, n_classes=3, dim=5):
    centers = np.random.default_rng(99).standard_normal((n_classes, dim)) * 3
    labels = rng.integers(0, n_classes, n)
    return centers[labels] + rng.standard_normal((n, dim)), labels


@pytest.mark.parametrize("optimizer", [
    fastnn.AdamW(lr=0.01, weight_decay=0.01),
    fastnn.Lamb(lr=0.02),
    fastnn.Adam(lr=fastnn.CosineDecay(0.01, total_steps=400, warmup_steps=20)),
    fastnn.SGD(lr=fastnn.StepDecay(0.1, step_size=100, gamma=0.5), momentum=0.9),
    fastnn.RMSprop(lr=fastnn.ExponentialDecay(0.005, 0.999)),
])
def test_regularized_network_learns(optimizer):
    rng = np.random.default_rng(1)
    X, y = blobs(rng, 1200)
    Xv, yv = blobs(rng, 300)
    model = fastnn.Sequential([fastnn.Dense(5, 32), fastnn.BatchNorm(32),
                               fastnn.Activation("relu"), fastnn.Dropout(0.2),
                               fastnn.Dense(32, 3, activation="softmax")],
                              loss="categorical_crossentropy", seed=1)
    hist = model.fit(X, y, epochs=10, batch_size=32, optimizer=optimizer, clip_norm=5.0,
                     validation_data=(Xv, yv), seed=2, verbose=0)
    assert hist.history["val_accuracy"][-1] >= 0.95
    assert model.evaluate(Xv, yv)["accuracy"] == hist.history["val_accuracy"][-1]


def test_history_lr_is_the_rate_in_force_after_each_epoch():
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((64, 3)), rng.standard_normal(64)
    model = fastnn.Sequential([fastnn.Dense(3, 1)], seed=0)
    schedule = fastnn.CosineDecay(0.1, total_steps=20, warmup_steps=4, min_lr=0.01)
    hist = model.fit(X, y, epochs=6, batch_size=16, optimizer=fastnn.SGD(lr=schedule),
                     verbose=0)
    assert hist.history["lr"] == pytest.approx([schedule(4 * (e + 1)) for e in range(6)])
    assert hist.history["lr"][-1] == pytest.approx(0.01)          # past total_steps
    assert schedule(2) == pytest.approx(0.05)                     # warmup from 0


def test_reduce_lr_on_plateau():
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((40, 3)), rng.standard_normal(40)
    model = fastnn.Sequential([fastnn.Dense(3, 1)], seed=0)
    opt = fastnn.SGD(lr=0.1)
    # a min_delta no epoch can beat: every epoch after the first is a plateau epoch
    plateau = fastnn.ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.02, monitor="loss",
                                       min_delta=1e9)
    calls = []
    hist = model.fit(X, y, epochs=9, batch_size=8, optimizer=opt, verbose=0,
                     callbacks=[plateau, lambda epoch, logs: calls.append(epoch)])
    assert hist.history["lr"] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02,
                                                0.02])
    assert calls == list(range(9))                     # plain callables still work
    assert opt.current_lr() == pytest.approx(0.02)     # never below min_lr
    # with a schedule the reduction scales it
    opt = fastnn.SGD(lr=fastnn.StepDecay(0.1, step_size=10, gamma=0.5))
    hist = model.fit(X, y, epochs=3, batch_size=8, optimizer=opt, verbose=0,
                     callbacks=[fastnn.ReduceLROnPlateau(0.1, 1, monitor="loss", min_delta=1e9)])
    # 5 updates per epoch: the schedule halves at t = 10; the plateau after epoch 2 scales
    assert hist.history["lr"] == pytest.approx([0.1, 0.05, 0.05 * 0.1])


def test_clip_norm_bounds_every_step():
    """With SGD each update moves the parameters by lr · (clipped gradient)."""
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((50, 4)), rng.standard_normal(50) * 100
    model = fastnn.Sequential([fastnn.Dense(4, 8, activation="tanh"), fastnn.Dense(8, 1)],
                              dtype="float64", seed=0)
    opt = fastnn.SGD(lr=0.1)
    for _ in range(5):
        before = model.params.copy()
        model.train_step(X, y, opt, clip_norm=0.5)
        assert np.linalg.norm(model.params - before) <= 0.1 * 0.5 * (1 + 1e-9)
    before = model.params.copy()
    model.train_step(X, y, opt, clip_value=0.01)
    assert np.abs(model.params - before).max() <= 0.1 * 0.01 * (1 + 1e-9)


def test_early_stopping_restores_running_statistics():
    rng = np.random.default_rng(7)
    X, y = rng.standard_normal((60, 8)), rng.standard_normal(60)
    Xv, yv = rng.standard_normal((60, 8)), rng.standard_normal(60)
    model = fastnn.Sequential([fastnn.Dense(8, 64), fastnn.BatchNorm(64),
                               fastnn.Activation("relu"), fastnn.Dense(64, 1)],
                              dtype="float64", seed=0)
    hist = model.fit(X, y, epochs=200, batch_size=8, optimizer=fastnn.Adam(lr=0.01),
                     validation_data=(Xv, yv), early_stopping=3, verbose=0)
    best = int(np.argmin(hist.history["val_loss"]))
    assert hist.best_epoch == best and len(hist.epoch) < 200
    assert model.evaluate(Xv, yv)["loss"] == pytest.approx(hist.history["val_loss"][best],
                                                           rel=1e-12)


def test_parity_with_pytorch_when_installed():
    """scripts/torch_parity.py: BatchNorm, AdamW, clipping and CosineDecay against
    PyTorch (not a test dependency: runs where the bench extra is installed)."""
    pytest.importorskip("torch")
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[1] / "scripts" / "torch_parity.py"
    spec = importlib.util.spec_from_file_location("torch_parity", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert max(module.parity().values()) < 1e-12
