"""fastnn.to_onnx: onnxruntime runs the exported graph and matches forward / predict /
predict_proba on random inputs, for every activation, loss, dtype and layer kind."""
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")           # both in the 'dev' extra
ort = pytest.importorskip("onnxruntime")

import fastnn  # noqa: E402

TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
HIDDEN = ["identity", "relu", "sigmoid", "tanh", "softplus"]
OUTPUTS = [("mse", "identity"), ("mse", "tanh"), ("binary_crossentropy", "sigmoid"),
           ("categorical_crossentropy", "softmax"), ("poisson", "exp")]


def _session(proto):
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def _random_model(rng, hidden, loss, out, dtype, norm, drop):
    """A model of random widths (1 and odd included) whose parameters and running
    statistics are all away from their initial values."""
    widths = [int(rng.choice([1, 3, 8, 17]))] + \
        [int(rng.choice([1, 5, 32])) for _ in range(int(rng.integers(1, 3)))]
    n_out = 1 if loss == "binary_crossentropy" and rng.random() < 0.5 else \
        int(rng.choice([2, 4])) if loss == "categorical_crossentropy" else int(rng.choice([1, 3]))
    layers = []
    for a, b in zip(widths, widths[1:]):
        if drop:
            layers.append(fastnn.Dropout(0.2))
        if norm:
            layers += [fastnn.Dense(a, b), fastnn.BatchNorm(b), fastnn.Activation(hidden)] \
                if hidden != "identity" else [fastnn.Dense(a, b), fastnn.BatchNorm(b)]
        else:
            layers.append(fastnn.Dense(a, b, hidden))
    layers.append(fastnn.Dense(widths[-1], n_out, out))
    model = fastnn.Sequential(layers, loss=loss, dtype=dtype, seed=int(rng.integers(100)))
    model.params[:] = rng.standard_normal(model.params.size) * 0.5
    for block in model.blocks:
        if block.norm is not None:   # the Dense bias stays 0 under BatchNorm, as trained
            block.layer.b[:] = 0
            block.norm.running_mean[:] = rng.standard_normal(block.norm.n)
            block.norm.running_var[:] = rng.uniform(0.2, 3.0, block.norm.n)
    return model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss, out", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("norm, drop", [(False, False), (True, False), (False, True),
                                        (True, True)])
def test_the_graph_computes_forward(dtype, loss, out, hidden, norm, drop):
    rng = np.random.default_rng(len(hidden) * 7 + len(loss) + norm * 3 + drop)
    model = _random_model(rng, hidden, loss, out, dtype, norm, drop)
    proto = fastnn.to_onnx(model)
    X = rng.standard_normal((int(rng.integers(1, 40)), model.n_inputs)).astype(dtype)
    Y, = _session(proto).run(None, {"X": X})
    expected = model.forward(X)
    assert Y.dtype == expected.dtype and Y.shape == expected.shape
    np.testing.assert_allclose(Y, expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
    ops = {node.op_type for node in proto.graph.node}
    assert "Dropout" not in ops and "BatchNormalization" not in ops   # omitted / folded


def test_the_batch_dimension_is_dynamic(tmp_path):
    rng = np.random.default_rng(1)
    model = _random_model(rng, "relu", "mse", "identity", "float32", True, True)
    path = tmp_path / "m.onnx"
    returned = fastnn.to_onnx(model, path)
    loaded = onnx.load(str(path))
    assert loaded == returned
    session = _session(loaded)
    for n in (1, 7, 300):
        X = rng.standard_normal((n, model.n_inputs)).astype(np.float32)
        np.testing.assert_allclose(session.run(None, {"X": X})[0], model.forward(X),
                                   rtol=1e-5, atol=1e-5)
    dims = loaded.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[1].dim_value == model.n_inputs


# --------------------------------------------------------------- estimators
def _fitted(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X, y)


@pytest.mark.parametrize("labels", ["strings", "ints", "bools", "multiclass", "multilabel",
                                    "one class"])
@pytest.mark.parametrize("options", [{}, {"batch_norm": True, "dropout": 0.2},
                                     {"dtype": "float32", "activation": "tanh"}])
def test_classifier_label_and_probabilities(labels, options):
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(2)
    X = rng.standard_normal((90, 6))
    codes = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    y = {"strings": np.array(["no", "yes", "maybe"], dtype=object)[codes],
         "ints": np.array([-4, 7, 30])[codes], "bools": codes > 0,
         "multiclass": codes, "multilabel": np.stack([codes == 0, codes == 2], 1).astype(int),
         "one class": np.full(90, "only", dtype=object)}[labels]
    estimator = _fitted(fastnn.MLPClassifier(hidden_layer_sizes=(9,), max_iter=30,
                                             random_state=0, **options), X, y)
    dtype = estimator.coefs_[0].dtype      # the input's (float64) by default, as scikit-learn
    assert dtype == options.get("dtype", "float64")
    label, probabilities = _session(fastnn.to_onnx(estimator)).run(None, {"X": X.astype(dtype)})
    np.testing.assert_array_equal(label.astype(estimator.predict(X).dtype), estimator.predict(X))
    np.testing.assert_allclose(probabilities, estimator.predict_proba(X),
                               rtol=TOLERANCE[dtype.name], atol=TOLERANCE[dtype.name])


@pytest.mark.parametrize("n_targets", [1, 2])
def test_regressor_prediction(n_targets):
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(3)
    X = rng.standard_normal((70, 4))
    y = X @ rng.standard_normal((4, n_targets))
    estimator = _fitted(fastnn.MLPRegressor(max_iter=20, random_state=0),
                        X, y[:, 0] if n_targets == 1 else y)
    prediction, = _session(fastnn.to_onnx(estimator)).run(None, {"X": X})   # float64
    assert prediction.shape == estimator.predict(X).shape
    np.testing.assert_allclose(prediction, estimator.predict(X), rtol=1e-12, atol=1e-12)


def test_bad_arguments():
    sklearn = pytest.importorskip("sklearn")
    with pytest.raises(TypeError, match="Sequential"):
        fastnn.to_onnx("model")
    with pytest.raises(sklearn.exceptions.NotFittedError):
        fastnn.to_onnx(fastnn.MLPClassifier())
    model = fastnn.Sequential([fastnn.Dense(2, 1)], seed=0)
    with pytest.raises(FileNotFoundError, match="cannot save the ONNX model"):
        fastnn.to_onnx(model, "/nonexistent/folder/m.onnx")


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_a_pipeline_of_scalers_and_an_estimator_is_one_graph(kind):
    """StandardScaler, MinMaxScaler (clipping), RobustScaler and "passthrough" before
    the estimator: the graph gives the pipeline's predictions (float64: to 1e-12;
    float32: to 1e-5)."""
    pytest.importorskip("sklearn")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

    rng = np.random.default_rng(4)
    X = rng.standard_normal((80, 5)) * [1, 10, 100, 0.1, 3] + [0, 5, -50, 1, 0]
    X[:, 4] = 2.0                                      # a constant feature (scale 1)
    new = rng.standard_normal((30, 5)) * 40             # beyond the training range: clipped
    for dtype in ("float64", "float32"):
        if kind == "classifier":
            y = (X[:, 0] + X[:, 1] / 10 > 0.5).astype(int)
            estimator = fastnn.MLPClassifier(hidden_layer_sizes=(6,), max_iter=40,
                                             random_state=0, dtype=dtype)
        else:
            y = X[:, 0] - X[:, 3]
            estimator = fastnn.MLPRegressor(hidden_layer_sizes=(6,), max_iter=40,
                                            random_state=0, dtype=dtype)
        pipe = make_pipeline(StandardScaler(), "passthrough", MinMaxScaler(clip=True),
                             RobustScaler(with_centering=False), estimator)
        _fitted(pipe, X, y)
        outputs = _session(fastnn.to_onnx(pipe)).run(None, {"X": new.astype(dtype)})
        tol = TOLERANCE[dtype]
        if kind == "classifier":
            np.testing.assert_array_equal(outputs[0], pipe.predict(new))
            np.testing.assert_allclose(outputs[1], pipe.predict_proba(new), rtol=tol, atol=tol)
        else:
            np.testing.assert_allclose(outputs[0], pipe.predict(new), rtol=tol, atol=tol)


def test_a_pipeline_with_other_steps_says_what_to_export():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((40, 4)), rng.integers(0, 2, 40)
    pipe = _fitted(make_pipeline(PCA(2), fastnn.MLPClassifier(max_iter=5)), X, y)
    with pytest.raises(TypeError, match=r"step 'pca' is a PCA.*to_onnx\(pipe\[-1\]\)"):
        fastnn.to_onnx(pipe)
    fastnn.to_onnx(pipe[-1])                            # the estimator alone exports
    other = _fitted(make_pipeline(StandardScaler(), LogisticRegression()), X, y)
    with pytest.raises(TypeError, match="the Pipeline's last step is a LogisticRegression"):
        fastnn.to_onnx(other)
    with pytest.raises(sklearn.exceptions.NotFittedError):
        fastnn.to_onnx(make_pipeline(StandardScaler(), fastnn.MLPClassifier()))
