"""Convolution and max-pooling: the kernels against float64 references (PyTorch's
semantics, written with NumPy), whole convolutional networks against finite differences,
and the model's contract (shapes named before any kernel runs, save/load, threads)."""
import numba
import numpy as np
import pytest

import fastnn
import reference as ref
from fastnn.kernels._conv import (col2im, fold_bias, im2col, maxpool_backward, maxpool_forward,
                                  unfold_bias)
from fastnn.kernels._layout import planned_for
from fastnn.kernels._matmul import matmul

#: (c_in, c_out, (h, w), kernel, stride, padding): one channel and many, odd sizes,
#: strides and padding, a kernel as large as the input, 1-D as height 1
GEOMETRIES = [
    (1, 1, (1, 1), (1, 1), (1, 1), (0, 0)),
    (1, 6, (9, 9), (3, 3), (1, 1), (0, 0)),
    (3, 5, (7, 11), (3, 2), (2, 3), (1, 0)),
    (2, 4, (5, 5), (5, 5), (1, 1), (0, 0)),
    (4, 3, (6, 5), (3, 3), (2, 2), (2, 1)),
    (1, 25, (1, 40), (1, 5), (1, 2), (0, 1)),
    (25, 7, (1, 9), (1, 5), (1, 2), (0, 1)),
]


def _geometry(c_in, c_out, hw, kernel, stride, padding):
    (h, w), (kh, kw), (sh, sw), (ph, pw) = hw, kernel, stride, padding
    h_out, w_out = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    return np.array([c_in, h, w, c_out, h_out, w_out, kh, kw, sh, sw, ph, pw], dtype=np.int64)


def _columns(X):
    """(n, c, h, w) samples as the kernels' (c·h·w × n) column-major minibatch."""
    return np.asfortranarray(X.reshape(X.shape[0], -1).T)


def _convolve(X, W, b, g, dtype):
    """The kernels' forward: im2col, one product, unfold_bias."""
    n = X.shape[0]
    c_out, K, P = W.shape[0], int(g[0] * g[6] * g[7]), int(g[4] * g[5])
    cols = np.empty((K, n * P), dtype)
    lin = np.empty((c_out, n * P), dtype)
    Y = np.empty((c_out * P, n), dtype, order="F")
    im2col(_columns(X).astype(dtype), g, cols)
    matmul(W.reshape(c_out, K).astype(dtype), cols, lin)
    unfold_bias(lin, b.astype(dtype), Y)
    return Y, cols


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("case", GEOMETRIES)
@pytest.mark.parametrize("n", [1, 3, 17])
def test_convolution_forward_matches_the_reference(dtype, tol, case, n):
    c_in, c_out, (h, w), kernel = case[:4]
    g = _geometry(*case)
    rng = np.random.default_rng(n)
    X = rng.standard_normal((n, c_in, h, w))
    W = rng.standard_normal((c_out, c_in, *kernel))
    b = rng.standard_normal(c_out)
    Y, _ = _convolve(X, W, b, g, dtype)
    expected = ref.convolution(X, W, b, case[4], case[5]).reshape(n, -1).T
    np.testing.assert_allclose(Y, expected, rtol=tol, atol=tol * np.abs(expected).max())


@pytest.mark.parametrize("case", GEOMETRIES)
def test_col2im_is_the_adjoint_of_im2col(case):
    """<im2col(X), C> = <X, col2im(C)> for every X and C: col2im is im2col's transpose."""
    g = _geometry(*case)
    rng = np.random.default_rng(1)
    n, c_in, (h, w) = 5, case[0], case[2]
    K, P = int(g[0] * g[6] * g[7]), int(g[4] * g[5])
    X = _columns(rng.standard_normal((n, c_in, h, w)))
    C = rng.standard_normal((K, n * P))
    cols = np.empty((K, n * P))
    dX = np.full((c_in * h * w, n), np.nan, order="F")
    im2col(X, g, cols)
    col2im(C, g, dX)
    assert np.sum(cols * C) == pytest.approx(np.sum(X * dX), rel=1e-12)


@pytest.mark.parametrize("case", GEOMETRIES)
def test_convolution_gradients_match_the_reference_and_finite_differences(case):
    """db, dW = D·colsᵀ and dX = col2im(Wᵀ·D) of the loss <Y, R> against the reference's
    central differences (the reference convolution is linear: they are exact)."""
    c_in, c_out, (h, w), kernel = case[:4]
    g = _geometry(*case)
    rng = np.random.default_rng(2)
    n = 3
    X = rng.standard_normal((n, c_in, h, w))
    W = rng.standard_normal((c_out, c_in, *kernel))
    b = rng.standard_normal(c_out)
    Y, cols = _convolve(X, W, b, g, np.float64)
    R = np.asfortranarray(rng.standard_normal(Y.shape))
    K = cols.shape[0]
    lin, db, dW = np.empty((c_out, cols.shape[1])), np.empty(c_out), np.empty((c_out, K))
    fold_bias(R, lin, db)
    matmul(lin, cols.T, dW)
    back = np.empty_like(cols)
    matmul(W.reshape(c_out, K).T, lin, back)
    dX = np.empty((c_in * h * w, n), order="F")
    col2im(back, g, dX)

    def loss(X, W, b):
        return np.sum(ref.convolution(X, W, b, case[4], case[5]).reshape(n, -1).T * R)

    for array, grad in ((X, _columns(np.zeros_like(X)) * 0 + dX.T.reshape(X.shape).
                         reshape(n, -1).T), (W, dW), (b, db)):
        grad = grad.reshape(-1) if array is not X else dX.T.reshape(-1)
        flat = array.reshape(-1)
        for i in rng.choice(flat.size, min(flat.size, 12), replace=False):
            saved = flat[i]
            flat[i] = saved + 1.0
            up = loss(X, W, b)
            flat[i] = saved - 1.0
            down = loss(X, W, b)
            flat[i] = saved
            assert grad[i] == pytest.approx((up - down) / 2.0, rel=1e-9, abs=1e-9)


POOLS = [((1, 1), (1, 1), (3, 3)), ((2, 2), (2, 2), (6, 7)), ((3, 2), (1, 2), (5, 8)),
         ((1, 3), (1, 2), (1, 9)), ((4, 4), (4, 4), (4, 4))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size, stride, hw", POOLS)
def test_max_pool_forward_and_backward_match_the_reference(dtype, size, stride, hw):
    rng = np.random.default_rng(3)
    n, c = 4, 3
    X = rng.standard_normal((n, c, *hw))
    h_out, w_out = (hw[0] - size[0]) // stride[0] + 1, (hw[1] - size[1]) // stride[1] + 1
    g = np.array([c, *hw, c, h_out, w_out, *size, *stride, 0, 0], dtype=np.int64)
    Y = np.empty((c * h_out * w_out, n), dtype, order="F")
    arg = np.empty_like(Y)
    maxpool_forward(_columns(X).astype(dtype), g, Y, arg)
    expected = ref.max_pool(X.astype(dtype), size, stride)
    np.testing.assert_array_equal(Y, expected.reshape(n, -1).T.astype(dtype))
    D = np.asfortranarray(rng.standard_normal(Y.shape)).astype(dtype)
    dX = np.full((c * hw[0] * hw[1], n), np.nan, dtype, order="F")
    maxpool_backward(D, arg, g, dX)
    # the gradient of Σ D·maxpool(X): each D to its window's (first) maximum
    want = np.zeros((n, c, *hw))
    Xd = X.astype(dtype)
    for oy in range(h_out):
        for ox in range(w_out):
            win = Xd[:, :, oy * stride[0]:oy * stride[0] + size[0],
                     ox * stride[1]:ox * stride[1] + size[1]].reshape(n, c, -1)
            where = win.argmax(axis=2)
            for j in range(n):
                for ch in range(c):
                    ky, kx = divmod(where[j, ch], size[1])
                    want[j, ch, oy * stride[0] + ky, ox * stride[1] + kx] += \
                        D[(ch * h_out + oy) * w_out + ox, j]
    np.testing.assert_allclose(dX, want.reshape(n, -1).T, rtol=1e-6)


# ---------------------------------------------------------------- networks
def _lenet(dtype="float64", seed=0, side=12):
    """The notes' LeNet, scaled down: two 3×3 convolutions each followed by 2×2 pooling."""
    after = ((side - 2) // 2 - 2) // 2
    return fastnn.Sequential([
        fastnn.Conv2D(1, 3, 3, activation="relu"), fastnn.MaxPool2D(2),
        fastnn.Conv2D(3, 4, 3, activation="tanh"), fastnn.MaxPool2D(2), fastnn.Flatten(),
        fastnn.Dense(4 * after * after, 6, activation="relu"),
        fastnn.Dense(6, 3, activation="softmax")],
        input_shape=(1, side, side), loss="categorical_crossentropy", dtype=dtype, seed=seed)


def _mnist1d_cnn(dtype="float64", seed=0, length=40, channels=5, l2=0.0, drop=0.0):
    """MNIST-1D's CNN (three Conv1D, kernel 5, stride 2, padding 1), narrower."""
    layers = [fastnn.Conv1D(1, channels, 5, stride=2, padding=1, activation="relu", l2=l2),
              fastnn.Conv1D(channels, channels, 5, stride=2, padding=1, activation="relu"),
              fastnn.Dropout(drop) if drop else None,
              fastnn.Conv1D(channels, channels, 5, stride=2, padding=1, activation="relu"),
              fastnn.Flatten(), fastnn.Dense(channels * 4, 10, activation="softmax")]
    return fastnn.Sequential([l for l in layers if l is not None], input_shape=(1, length),
                             loss="categorical_crossentropy", dtype=dtype, seed=seed)


def _reference_forward(model, X):
    """The network's outputs computed layer by layer with the float64 references."""
    A = np.asarray(X, np.float64).reshape(X.shape[0], *model.input_shape)
    for block in model.blocks:
        layer = block.layer
        if block.kind == "dense":
            A = A.reshape(A.shape[0], -1) @ np.asarray(layer.W, np.float64).T + layer.b
        else:
            lift = (lambda t, one=1: (one, *t)) if layer.dims == 1 else (lambda t, one=1: t)
            A4 = A.reshape(A.shape[0], A.shape[1], *lift(A.shape[2:]))
            if block.kind == "conv":
                W = np.asarray(layer.W, np.float64).reshape(layer.c_out, layer.c_in,
                                                            *lift(layer.kernel))
                A4 = ref.convolution(A4, W, layer.b, lift(layer.stride),
                                     lift(layer.padding, 0))
            else:
                A4 = ref.max_pool(A4, lift(layer.kernel), lift(layer.stride))
            A = A4.reshape(A4.shape[0], A4.shape[1], *A4.shape[2 + (layer.dims == 1):])
        if block.activation == "softmax":
            A = np.exp(A - A.max(axis=1, keepdims=True))
            A /= A.sum(axis=1, keepdims=True)
        else:
            A = ref.activation(block.activation, A.reshape(A.shape[0], -1).T).T.reshape(A.shape)
    return A.reshape(A.shape[0], -1)


@pytest.mark.parametrize("build", [_lenet, _mnist1d_cnn])
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-4)])
def test_a_conv_network_computes_the_references_layers(build, dtype, tol):
    model = build(dtype)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((9, *model.input_shape))
    np.testing.assert_allclose(model.predict_proba(X), _reference_forward(model, X),
                               rtol=tol, atol=tol)
    flat = X.reshape(9, -1)       # flat rows are the same samples
    np.testing.assert_array_equal(model.predict_proba(flat), model.predict_proba(X))


@pytest.mark.parametrize("build, kwargs", [(_lenet, {}), (_mnist1d_cnn, {"l2": 1e-2}),
                                           (_mnist1d_cnn, {"drop": 0.3})])
def test_a_conv_network_passes_the_finite_difference_check(build, kwargs):
    model = build("float64", **kwargs)
    rng = np.random.default_rng(5)
    X = rng.standard_normal((6, *model.input_shape))
    y = rng.integers(0, model.n_outputs, 6)
    model.loss_and_grad(X, y, step=3)
    grads, params = model.grads.copy(), model.params.copy()
    h = 1e-6
    for i in rng.choice(params.size, 60, replace=False):
        model.params[i] = params[i] + h
        up = model.loss(X, y, training=True, step=3)
        model.params[i] = params[i] - h
        down = model.loss(X, y, training=True, step=3)
        model.params[i] = params[i]
        assert grads[i] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8)


def test_conv_fits_are_bitwise_alike_on_one_and_two_threads_and_learn():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((300, 1, 40)).astype(np.float32)
    y = (X[:, 0, 10:20].sum(axis=1) > 0).astype(np.int64) + 2 * (X[:, 0, 25] > 0)
    results = []
    original = numba.get_num_threads()
    try:
        for threads in (1, 2, 1):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            model = _mnist1d_cnn("float32", seed=3, channels=16)
            history = model.fit(X, y, epochs=6, batch_size=128, verbose=0,
                                optimizer=fastnn.Adam(3e-3))
            results.append((model.params.copy(), np.array(history.history["loss"])))
    finally:
        numba.set_num_threads(original)
    assert planned_for(model.net, 128, training=True).plan.split is (numba.config.NUMBA_NUM_THREADS > 1)
    for got in results[1:]:
        for a, b in zip(got, results[0]):
            np.testing.assert_array_equal(a, b)
    losses = results[0][1]
    assert losses[-1] < 0.8 * losses[0]


def test_a_conv_model_saves_loads_and_resumes_bitwise(tmp_path):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((64, 1, 12, 12))
    y = rng.integers(0, 3, 64)
    model = _lenet("float32")
    model.fit(X, y, epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "m.fnn")
    loaded = fastnn.load(tmp_path / "m.fnn")
    assert repr(loaded) == repr(model) and loaded.input_shape == (1, 12, 12)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    model.fit(X, y, epochs=1, batch_size=16, verbose=0)
    loaded.fit(X, y, epochs=1, batch_size=16, verbose=0)
    np.testing.assert_array_equal(loaded.params, model.params)
    assert model.layers[0].W.shape == (3, 1, 3, 3) and np.shares_memory(model.layers[0].W,
                                                                         model.params)


def test_conv_layers_report_their_arguments():
    assert repr(fastnn.Conv2D(1, 6, 3)) == "Conv2D(1, 6, 3, activation='identity')"
    assert repr(fastnn.Conv2D(2, 4, (3, 1), stride=2, padding=(1, 0), activation="relu")) == \
        "Conv2D(2, 4, (3, 1), stride=2, padding=(1, 0), activation='relu')"
    assert repr(fastnn.MaxPool1D(3, stride=2)) == "MaxPool1D(3, stride=2)"
    assert fastnn.Conv1D(3, 5, 4).weight_shape == (5, 3, 4)


@pytest.mark.parametrize("layers, input_shape, match", [
    ([fastnn.Conv1D(2, 3, 3), fastnn.Flatten(), fastnn.Dense(24, 1)], (1, 10), "takes 2 channels"),
    ([fastnn.Conv1D(1, 3, 3), fastnn.Dense(24, 1)], (1, 10), "put a Flatten"),
    ([fastnn.Conv1D(1, 3, 3), fastnn.Flatten(), fastnn.Dense(25, 1)], (1, 10), "gives 24"),
    ([fastnn.Conv2D(1, 3, 3), fastnn.Flatten(), fastnn.Dense(24, 1)], (1, 10), "(channels, height"),
    ([fastnn.Conv1D(1, 3, 11), fastnn.Flatten(), fastnn.Dense(3, 1)], (1, 10), "larger than"),
    ([fastnn.Conv1D(1, 3, 3), fastnn.Flatten(), fastnn.Dense(24, 1)], None, "needs input_shape"),
    ([fastnn.Conv1D(1, 3, 3), fastnn.BatchNorm(24)], (1, 10), "not supported yet"),
    ([fastnn.MaxPool1D(2)], (1, 10), "at least one Dense or convolution"),
    ([fastnn.Dense(3, 1)], (0, 3), "input_shape must be"),
])
def test_bad_architectures_are_named(layers, input_shape, match):
    with pytest.raises(ValueError, match=match.replace("(", r"\(")):
        fastnn.Sequential(layers, input_shape=input_shape)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"kernel": 0}, ValueError, "kernel must be >= 1"),
    ({"kernel": 2.5}, TypeError, "kernel must be an integer"),
    ({"kernel": 3, "stride": 0}, ValueError, "stride must be >= 1"),
    ({"kernel": 3, "padding": -1}, ValueError, "padding must be >= 0"),
    ({"kernel": (3, 3)}, TypeError, "kernel must be an integer"),
])
def test_bad_conv_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        fastnn.Conv1D(1, 2, **kwargs)


def test_bad_input_is_named_before_any_kernel_runs():
    model = _mnist1d_cnn("float32")
    before = model.params.copy()
    X = np.zeros((5, 2, 40), np.float32)
    with pytest.raises(ValueError, match=r"or \(n_samples, 1, 40\)"):
        model.fit(X, np.zeros(5, np.int64), verbose=0)
    with pytest.raises(ValueError, match=r"one sample of shape \(1, 40\)"):
        model.predict(np.zeros((5, 41)))
    np.testing.assert_array_equal(model.params, before)


def test_what_conv_layers_cannot_do_yet_is_said():
    with pytest.raises(ValueError, match="CPU only"):
        fastnn.Sequential([fastnn.Conv1D(1, 2, 3), fastnn.Flatten(), fastnn.Dense(16, 1)],
                          input_shape=(1, 10), device="cuda")
    pytest.importorskip("onnx")
    with pytest.raises(ValueError, match="cannot be exported yet"):
        fastnn.to_onnx(_lenet())
