"""Bad input raises a clear error naming the argument, before any kernel runs,
and leaves the model's parameters (and the optimizer's state) unchanged."""
import numpy as np
import pytest

import fastnn


def classifier():
    return fastnn.Sequential([fastnn.Dense(4, 8, activation="relu"),
                              fastnn.Dense(8, 3, activation="softmax")],
                             loss="categorical_crossentropy", seed=0)


rng = np.random.default_rng(0)
X = rng.standard_normal((20, 4)).astype(np.float32)
y = rng.integers(0, 3, 20)


def with_nan(a, value=np.nan):
    a = a.astype(np.float64).copy()
    a.flat[5] = value
    return a


BAD_FIT = [
    ("X", dict(X=X[:, :3])),                                  # wrong feature count
    ("X", dict(X=X[0])),                                      # 1-D
    ("X", dict(X=X[:0], y=y[:0])),                            # empty
    ("X", dict(X=with_nan(X))),
    ("X", dict(X=with_nan(X, np.inf))),
    ("X", dict(X=X.astype(np.complex64))),                    # wrong dtype
    ("X", dict(X=np.array([["a"] * 4] * 20))),
    ("y", dict(y=y[:19])),                                    # length mismatch
    ("y", dict(y=np.where(np.arange(20) == 3, 3, y))),        # label == n_classes
    ("y", dict(y=np.where(np.arange(20) == 3, -1, y))),       # negative label
    ("y", dict(y=y + 0.5)),                                   # non-integer ids
    ("y", dict(y=with_nan(y))),
    ("y", dict(y=np.ones((20, 2)))),                          # wrong one-hot width
    ("y", dict(y=np.full((20, 3), 0.5))),                     # rows not summing to 1
    ("batch_size", dict(batch_size=0)),
    ("batch_size", dict(batch_size=-4)),
    ("batch_size", dict(batch_size=2.5)),
    ("epochs", dict(epochs=0)),
    ("epochs", dict(epochs=-1)),
    ("optimizer", dict(optimizer="adamax")),
    ("optimizer", dict(optimizer=3)),
    ("validation_data", dict(validation_data=(X,))),
    ("validation_data[0]", dict(validation_data=(with_nan(X), y))),
    ("validation_data[1]", dict(validation_data=(X, y + 3))),
    ("shuffle", dict(shuffle="yes")),
    ("seed", dict(seed=1.5)),
    ("clip_norm", dict(clip_norm=0)),
    ("clip_norm", dict(clip_norm=-1.0)),
    ("clip_norm", dict(clip_norm=float("nan"))),
    ("clip_value", dict(clip_value=0.0)),
    ("clip_value", dict(clip_value="1")),
    ("monitor", dict(callbacks=[fastnn.ReduceLROnPlateau(0.5, 2)])),   # no validation_data
    ("monitor", dict(callbacks=[fastnn.ReduceLROnPlateau(0.5, 2, monitor="val_acc")],
                     validation_data=(X, y))),
]


@pytest.mark.parametrize("argument,overrides", BAD_FIT,
                         ids=[f"{a}-{i}" for i, (a, _) in enumerate(BAD_FIT)])
def test_fit_rejects_bad_input_and_leaves_model_unchanged(argument, overrides):
    model = classifier()
    before = model.params.copy()
    opt = fastnn.Adam()
    kwargs = dict(X=X, y=y, epochs=2, batch_size=4, optimizer=opt, verbose=0)
    kwargs.update(overrides)
    Xa, ya = kwargs.pop("X"), kwargs.pop("y")
    with pytest.raises((ValueError, TypeError), match=argument.replace("[", r"\[")):
        model.fit(Xa, ya, **kwargs)
    np.testing.assert_array_equal(model.params, before)
    assert opt.steps == 0 and opt.state is None


@pytest.mark.parametrize("method", ["loss_and_grad", "loss", "evaluate"])
def test_other_entry_points_validate_too(method):
    model = classifier()
    before, grads = model.params.copy(), model.grads.copy()
    with pytest.raises(ValueError, match="y"):
        getattr(model, method)(X, np.full(20, 7))
    with pytest.raises(ValueError, match="X"):
        getattr(model, method)(X[:, :2], y)
    np.testing.assert_array_equal(model.params, before)
    np.testing.assert_array_equal(model.grads, grads)


def test_predict_validates():
    model = classifier()
    with pytest.raises(ValueError, match="X"):
        model.predict(with_nan(X))
    with pytest.raises(ValueError, match="features"):
        model.predict(np.ones((3, 5)))


@pytest.mark.parametrize("build,argument", [
    (lambda: fastnn.Dense(4, 3, activation="gelu"), "activation"),
    (lambda: fastnn.Dense(4, 0), "n_out"),
    (lambda: fastnn.Dense(4.0, 3), "n_in"),
    (lambda: fastnn.Dense(4, 3, l2=-1), "l2"),
    (lambda: fastnn.Dense(4, 3, l1=float("nan")), "l1"),
    (lambda: fastnn.Sequential([fastnn.Dense(4, 3)], loss="hinge"), "loss"),
    (lambda: fastnn.Sequential([fastnn.Dense(4, 3)], dtype="float16"), "dtype"),
    (lambda: fastnn.Sequential([fastnn.Dense(4, 3)], dtype="int32"), "dtype"),
    (lambda: fastnn.Sequential([fastnn.Dense(4, 3), fastnn.Dense(4, 2)]), "chain"),
    (lambda: fastnn.Sequential([]), "layers"),
    (lambda: fastnn.Sequential([fastnn.Dense(4, 3)], loss="categorical_crossentropy"),
     "softmax"),
    (lambda: fastnn.Sequential([fastnn.Dense(4, 3, activation="softmax"), fastnn.Dense(3, 1)]),
     "softmax"),
    (lambda: fastnn.Adam(lr=0), "lr"),
    (lambda: fastnn.Adam(beta1=1.0), "beta1"),
    (lambda: fastnn.SGD(momentum=-0.1), "momentum"),
    (lambda: fastnn.SGD(nesterov=True), "nesterov"),
    (lambda: fastnn.RMSprop(rho=2), "rho"),
    (lambda: fastnn.Adagrad(eps=0), "eps"),
    (lambda: fastnn.SGD(decay=-1), "decay"),
    (lambda: fastnn.Dropout(1.0), "rate"),
    (lambda: fastnn.Dropout(-0.1), "rate"),
    (lambda: fastnn.Dropout("0.5"), "rate"),
    (lambda: fastnn.BatchNorm(4, momentum=0.0), "momentum"),
    (lambda: fastnn.BatchNorm(4, momentum=1.5), "momentum"),
    (lambda: fastnn.BatchNorm(4, eps=0.0), "eps"),
    (lambda: fastnn.BatchNorm(4, eps=-1e-5), "eps"),
    (lambda: fastnn.BatchNorm(0), "n"),
    (lambda: fastnn.AdamW(weight_decay=-0.01), "weight_decay"),
    (lambda: fastnn.Lamb(weight_decay=-1.0), "weight_decay"),
    (lambda: fastnn.Lamb(beta2=1.0), "beta2"),
    (lambda: fastnn.CosineDecay(1e-3, total_steps=100, warmup_steps=101), "warmup_steps"),
    (lambda: fastnn.CosineDecay(1e-3, total_steps=0), "total_steps"),
    (lambda: fastnn.CosineDecay(1e-3, total_steps=10, min_lr=1.0), "min_lr"),
    (lambda: fastnn.StepDecay(1e-3, step_size=0), "step_size"),
    (lambda: fastnn.StepDecay(1e-3, step_size=5, gamma=0), "gamma"),
    (lambda: fastnn.ExponentialDecay(0.0, 0.9), "lr"),
    (lambda: fastnn.ExponentialDecay(1e-3, 1.5), "gamma"),
    (lambda: fastnn.Adam(lr="cosine"), "lr"),                        # wrong schedule type
    (lambda: fastnn.SGD(lr=fastnn.Adam()), "lr"),
    (lambda: fastnn.Adam(lr=fastnn.StepDecay(1e-3, 10), decay=0.1), "decay"),
    (lambda: fastnn.ReduceLROnPlateau(factor=1.0), "factor"),
    (lambda: fastnn.ReduceLROnPlateau(factor=0.5, patience=0), "patience"),
    (lambda: fastnn.ReduceLROnPlateau(min_lr=-1), "min_lr"),
    (lambda: fastnn.Sequential([fastnn.Dense(4, 3), fastnn.BatchNorm(5)]), "width"),
    (lambda: fastnn.Sequential([fastnn.BatchNorm(4), fastnn.Dense(4, 3)]), "BatchNorm"),
    (lambda: fastnn.Sequential([fastnn.Dense(4, 3, activation="relu"), fastnn.BatchNorm(3)]),
     "before its activation"),
    (lambda: fastnn.Sequential([fastnn.Dense(4, 3), fastnn.Dropout(0.1)]), "last layer"),
    (lambda: fastnn.Sequential([fastnn.Dropout(0.1), fastnn.Dropout(0.2), fastnn.Dense(4, 3)]),
     "in a row"),
    (lambda: fastnn.Sequential([fastnn.Dense(4, 3), fastnn.Dropout(0.1),
                                fastnn.Activation("relu"), fastnn.Dense(3, 1)]), "Activation"),
    (lambda: fastnn.Sequential([fastnn.Dense(4, 3), fastnn.Dropout(0.5)]), "Dropout"),
])
def test_constructors_reject_bad_arguments(build, argument):
    with pytest.raises((ValueError, TypeError), match=argument):
        build()


def test_float64_input_to_float32_model_overflowing_is_rejected():
    """A finite value beyond float32's range is named as such (not "NaN or infinity"),
    in X and in a regressor's y, and nothing changes."""
    model = classifier()
    before = model.params.copy()
    big = X.astype(np.float64)
    big[0, 0] = 1e300  # finite in float64, inf in the model's float32
    with pytest.raises(ValueError, match="X has values beyond the range of float32"):
        model.fit(big, y, epochs=1, verbose=0)
    regressor = fastnn.Sequential([fastnn.Dense(4, 1)], seed=0)
    with pytest.raises(ValueError, match="y has values beyond the range of float32"):
        regressor.fit(X, np.full(X.shape[0], -1e39), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="X contains NaN or infinity"):   # a real one
        big[0, 0] = np.inf
        model.fit(big, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(model.params, before)


def batchnorm_model():
    return fastnn.Sequential([fastnn.Dropout(0.1), fastnn.Dense(4, 8), fastnn.BatchNorm(8),
                              fastnn.Activation("relu"), fastnn.Dropout(0.2),
                              fastnn.Dense(8, 3, activation="softmax")],
                             loss="categorical_crossentropy", seed=0)


@pytest.mark.parametrize("argument,overrides", [
    ("batch_size", dict(batch_size=1)),           # BatchNorm needs 2 samples per batch
    ("batch_size", dict(batch_size=19)),          # 20 samples: the last minibatch holds 1
    ("clip_norm", dict(clip_norm=0.0)),
    ("optimizer", dict(optimizer=fastnn.CosineDecay(1e-3, 10))),
])
def test_fit_with_remedies_rejects_bad_input_and_changes_nothing(argument, overrides):
    model = batchnorm_model()
    before, stats = model.params.copy(), model.stats.copy()
    opt = fastnn.AdamW(lr=fastnn.CosineDecay(1e-3, total_steps=50, warmup_steps=5))
    kwargs = dict(epochs=2, batch_size=4, optimizer=opt, verbose=0, clip_norm=1.0)
    kwargs.update(overrides)
    with pytest.raises((ValueError, TypeError), match=argument):
        model.fit(X, y, **kwargs)
    np.testing.assert_array_equal(model.params, before)
    np.testing.assert_array_equal(model.stats, stats)
    assert opt.steps == 0 and opt.state is None


def test_single_sample_steps_with_batchnorm_are_rejected():
    model = batchnorm_model()
    before, stats, grads = model.params.copy(), model.stats.copy(), model.grads.copy()
    for call in (lambda: model.train_step(X[:1], y[:1], fastnn.Adam()),
                 lambda: model.loss_and_grad(X[:1], y[:1])):
        with pytest.raises(ValueError, match="BatchNorm"):
            call()
    np.testing.assert_array_equal(model.params, before)
    np.testing.assert_array_equal(model.stats, stats)
    np.testing.assert_array_equal(model.grads, grads)
    assert model.predict(X[:1]).shape == (1,)   # inference on one sample is fine


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
def test_the_finiteness_scan_finds_every_nan_and_inf_without_a_copy(dtype, order):
    """fit's scan of X is compiled and parallel, in blocks of 65536 elements: a bad value
    at either end of a block, or of the array, is found, and checking a float32 or
    float64 array of the model's dtype allocates nothing proportional to it (NumPy's
    isfinite(X).all() built a boolean array a quarter of a float32 X)."""
    import tracemalloc

    from fastnn.validation import check_features

    rng = np.random.default_rng(3)
    X = np.asarray(rng.standard_normal((70_001, 3)).astype(dtype), order=order)
    check_features(X[:5], 3, dtype)     # compile (or load) the scan outside the measurement
    tracemalloc.start()
    try:
        checked = check_features(X, 3, dtype)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if order == "C":      # (an F-ordered X is copied to the C order the kernels read)
        assert peak < X.nbytes / 200, peak
    assert checked.flags.c_contiguous
    for position in (0, 65_535, 65_536, 131_071, X.size - 1):
        for bad in (np.nan, np.inf, -np.inf):
            Y = X.copy(order="K")
            Y.ravel(order="K")[position] = bad        # a view: Y is contiguous
            with pytest.raises(ValueError, match="X contains NaN or infinity"):
                fastnn.validation._finite(Y, "X")
    strided = np.asarray(rng.standard_normal((500, 8)), dtype=dtype)[:, ::2]
    strided[499, 3] = np.inf
    with pytest.raises(ValueError, match="S contains NaN"):
        fastnn.validation._finite(strided, "S")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 65_537, (1 << 22) + 5])
def test_the_scans_count_what_numpy_counts(dtype, n):
    """The one-thread scan (below PARALLEL_SCAN elements) and the scan in blocks across
    threads (from it) count NaN and ±inf as NumPy does, wherever they lie."""
    from fastnn.kernels._scan import count_nonfinite, scan_blocks, total_nonfinite

    rng = np.random.default_rng(n)
    flat = rng.standard_normal(n).astype(dtype)
    bad = rng.choice(n, size=min(n, 5), replace=False)
    flat[bad] = rng.choice([np.nan, np.inf, -np.inf], size=bad.size)
    expected = int(np.count_nonzero(~np.isfinite(flat)))
    counts = np.full(scan_blocks(n), -1, dtype=np.int64)
    count_nonfinite(flat, counts)
    assert int(counts.sum()) == expected == total_nonfinite(flat)
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        fastnn.validation._finite(flat.reshape(-1, 1), "X")
