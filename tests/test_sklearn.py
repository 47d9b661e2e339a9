"""fastnn.MLPClassifier / MLPRegressor against scikit-learn's MLP: its estimator checks,
the same training trajectory (SGD in float64 takes scikit-learn's steps to rounding),
labels, pipelines and model selection, pickling, convergence, bad input."""
import inspect
import io
import pickle
import re
import warnings
from contextlib import redirect_stdout

import numpy as np
import pytest

pytest.importorskip("sklearn")   # a test dependency of this module (the 'dev' extra)

import joblib  # noqa: E402
from sklearn import neural_network  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastnn  # noqa: E402
from fastnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


def _expected_failures(estimator):
    """BatchNorm normalizes with its minibatch's statistics and Dropout draws a mask per
    row, so for them a sample of weight 2 is not a repeated row: the checks that weights
    equal repeated rows fail (xfail). Every other estimator passes them."""
    if not (estimator.batch_norm or estimator.dropout):
        return {}
    reason = "BatchNorm's batch statistics and Dropout's masks are per row, not per weight"
    return {"check_sample_weight_equivalence_on_dense_data": reason,
            "check_sample_weight_equivalence_on_sparse_data": reason}


@parametrize_with_checks([
    MLPClassifier(), MLPRegressor(),
    MLPClassifier(solver="sgd", learning_rate="adaptive", dtype="float64"),
    MLPClassifier(dropout=0.2, batch_norm=True), MLPRegressor(batch_norm=True),
    MLPClassifier(solver="lbfgs", alpha=1.0, dtype="float64"), MLPRegressor(solver="lbfgs"),
], expected_failed_checks=_expected_failures)
def test_scikit_learn_estimator_checks(estimator, check):
    """Skips: only check_classifiers_multilabel_output_format_decision_function, as for
    scikit-learn's own MLPClassifier (neither has decision_function). L-BFGS with the
    default alpha fits the multilabel check's small set until probabilities round to 1.0
    and fails its 0 < p < 1 check — as scikit-learn's own MLPClassifier(solver="lbfgs")
    does; with alpha=1 both pass every check. Expected failures: _expected_failures."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_parameters_are_scikit_learns(kind):
    """The same names, order and defaults, plus fastnn's dtype, dropout and batch_norm
    (and the classifier's class_weight, default None)."""
    ours, theirs = _pair(kind)
    extra = ["batch_norm", "dropout", "dtype"] + (["class_weight"] if kind == "classifier"
                                                  else [])
    assert sorted(ours().get_params()) == sorted([*theirs().get_params(), *extra])
    ours_defaults = {k: v for k, v in ours().get_params().items() if k not in extra}
    assert ours_defaults == theirs().get_params()
    assert ours().get_params().get("class_weight") is None
    positional = [p.name for p in inspect.signature(ours).parameters.values()
                  if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert positional == [p.name for p in inspect.signature(theirs).parameters.values()
                          if p.kind == p.POSITIONAL_OR_KEYWORD]


def _scaled(X):
    return StandardScaler().fit_transform(X)


def _classification(rng, n=None, n_classes=3):
    n = n or int(rng.integers(150, 400))
    X, y = make_classification(n, int(rng.integers(3, 12)), n_informative=3,
                               n_redundant=0, n_classes=n_classes,
                               random_state=int(rng.integers(1000)))
    return _scaled(X), y


def _regression(rng, n_targets=1):
    n = int(rng.integers(150, 400))
    X, y = make_regression(n, int(rng.integers(2, 10)), n_targets=n_targets, noise=5.0,
                           random_state=int(rng.integers(1000)))
    return _scaled(X), y / y.std()


def _pair(kind):
    """(fastnn's estimator class, scikit-learn's) of a kind."""
    return (MLPClassifier, neural_network.MLPClassifier) if kind == "classifier" else \
        (MLPRegressor, neural_network.MLPRegressor)


def _data(kind, rng):
    return _classification(rng) if kind == "classifier" else _regression(rng)


def _both(ours, theirs, X, y, **params):
    common = {**dict(random_state=0, max_iter=6, shuffle=False), **params}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = ours(dtype="float64", **common).fit(X, y)
        b = theirs(**common).fit(X, y)
    return a, b


# --------------------------------------------------------- the same training
TARGETS = {
    "multiclass": lambda rng: _classification(rng, n_classes=3),
    "binary": lambda rng: _classification(rng, n_classes=2),
    "multilabel": lambda rng: (lambda X, y: (X, np.stack([y == 0, y == 1, y != 2], 1)))(
        *_classification(rng, n_classes=3)),
    "regression": lambda rng: _regression(rng),
    "two targets": lambda rng: _regression(rng, n_targets=2),
}
SGD_SETTINGS = [dict(solver="sgd"), dict(solver="sgd", nesterovs_momentum=False),
                dict(solver="sgd", momentum=0.0, batch_size=37),
                dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.05),
                dict(solver="sgd", activation="tanh", hidden_layer_sizes=(7, 5)),
                dict(solver="sgd", activation="logistic", batch_size=64)]


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("params", SGD_SETTINGS, ids=str)
def test_sgd_takes_scikit_learns_steps(target, params, shuffle):
    """float64 SGD: the loss curve and every weight as scikit-learn's (the objective
    scale, velocity and rate schedule all mapped exactly; the samples visited in
    scikit-learn's shuffled order)."""
    X, y = TARGETS[target](np.random.default_rng(len(target) + len(params)))
    params = dict(params, shuffle=shuffle)
    ours, theirs = _pair("classifier" if target[0] in "mb" else "regressor")
    if X.shape[0] % params.get("batch_size", 200) != 0:   # L2 of a partial batch differs
        params = dict(params, alpha=0.0)
    a, b = _both(ours, theirs, X, y, **params)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-7)
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(ca, cb, rtol=1e-6, atol=1e-9)
    assert (a.n_iter_, a.t_, a.n_layers_, a.n_outputs_, a.out_activation_) == \
        (b.n_iter_, b.t_, b.n_layers_, b.n_outputs_, b.out_activation_)


def test_l2_penalty_matches_when_the_batches_are_full():
    """The same steps; the reported loss adds the L2 term at the epoch's last weights
    where scikit-learn adds each batch's (a 1e-5 relative difference here)."""
    rng = np.random.default_rng(4)
    X, y = _classification(rng, n=300)
    a, b = _both(MLPClassifier, neural_network.MLPClassifier, X, y, solver="sgd", alpha=0.3,
                 batch_size=100)
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(ca, cb, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-4)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_adam_follows_scikit_learn(target):
    """Adam differs only in where epsilon enters (√v̂ + ε against √v + ε): loss curves
    agree to 1e-4 relative on standardized data."""
    X, y = TARGETS[target](np.random.default_rng(7))
    ours, theirs = _pair("classifier" if target[0] in "mb" else "regressor")
    a, b = _both(ours, theirs, X, y, alpha=0.0)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-4)


def test_adaptive_rate_and_convergence_as_scikit_learn():
    """A tol so large that every epoch counts as no improvement: scikit-learn divides the
    rate by 5 (adaptive) and stops at the same epoch, printing the same lines."""
    X, y = _classification(np.random.default_rng(5))
    params = dict(solver="sgd", learning_rate="adaptive", tol=0.5, n_iter_no_change=2,
                  max_iter=200, verbose=True, alpha=0.0)
    outputs = []
    for cls in (MLPClassifier, neural_network.MLPClassifier):
        buffer = io.StringIO()
        with redirect_stdout(buffer), warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            estimator = _both_one(cls, X, y, **params)
        outputs.append((estimator, buffer.getvalue()))
    (a, text_a), (b, text_b) = outputs
    assert a.n_iter_ == b.n_iter_ < 200
    assert _numbers(text_a) == pytest.approx(_numbers(text_b), rel=1e-6)
    assert _words(text_a) == _words(text_b)
    assert "Setting learning rate to" in text_a and "Learning rate too small" in text_a


def _both_one(cls, X, y, **params):
    extra = {"dtype": "float64"} if cls.__module__.startswith("fastnn") else {}
    return cls(random_state=0, shuffle=False, **params, **extra).fit(X, y)


def _numbers(text):
    return [float(x) for x in re.findall(r"-?\d+\.\d+", text)]


def _words(text):
    return re.sub(r"-?\d+(\.\d+)?", "#", text)


def test_max_iter_warns_as_scikit_learn():
    X, y = _classification(np.random.default_rng(6))
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        MLPClassifier(max_iter=3, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = MLPClassifier(max_iter=500, tol=0.2, random_state=0).fit(X, y)
    assert model.n_iter_ < 500 and model._no_improvement_count > model.n_iter_no_change


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_early_stopping_scores_and_restores_the_best_weights(kind):
    X, y = _data(kind, np.random.default_rng(8))
    ours, theirs = _pair(kind)
    a, b = _both(ours, theirs, X, y, solver="sgd", early_stopping=True, max_iter=40,
                 n_iter_no_change=3, alpha=0.0, shuffle=True)
    np.testing.assert_allclose(a.validation_scores_, b.validation_scores_, rtol=1e-6)
    assert a.best_validation_score_ == pytest.approx(b.best_validation_score_, rel=1e-6)
    assert a.best_loss_ is None and b.best_loss_ is None
    for ca, cb in zip(a.coefs_, b.coefs_):   # the best epoch's weights, restored
        np.testing.assert_allclose(ca, cb, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_partial_fit_and_warm_start_as_scikit_learn(kind):
    X, y = _data(kind, np.random.default_rng(9))
    ours, theirs = _pair(kind)
    extra = {"classes": np.unique(y)} if kind == "classifier" else {}
    params = dict(solver="sgd", shuffle=False, random_state=0, alpha=0.0)
    a, b = ours(dtype="float64", **params), theirs(**params)
    for start in (0, 100, 0):   # different batch sizes: the model is rebuilt for each
        part = slice(start, start + 100 + start)
        a.partial_fit(X[part], y[part], **extra)
        b.partial_fit(X[part], y[part], **extra)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-7)
    a2, b2 = (e.set_params(warm_start=True, max_iter=3) for e in (a, b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a2.fit(X, y)
        b2.fit(X, y)
    np.testing.assert_allclose(a2.loss_curve_, b2.loss_curve_, rtol=1e-7)
    assert a2.t_ == b2.t_ and a2.n_iter_ == b2.n_iter_ == 3


# --------------------------------------------------------------- labels
@pytest.mark.parametrize("labels", [["cat", "dog", "emu"], [3, 7, 11], [-1, 1], [True, False],
                                    ["only"]])
def test_labels_of_any_kind(labels):
    rng = np.random.default_rng(len(labels))
    X, codes = _classification(rng, n_classes=max(2, len(labels)))
    y = np.asarray(labels, dtype=object if isinstance(labels[0], str) else None)[
        codes % len(labels)]
    model = MLPClassifier(random_state=0, max_iter=50).fit(X, y)
    assert list(model.classes_) == sorted(set(labels))
    prediction = model.predict(X)
    assert set(prediction) <= set(labels) and prediction.shape == (X.shape[0],)
    proba = model.predict_proba(X)
    assert proba.shape == (X.shape[0], max(2, len(labels)) if len(labels) > 1 else 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(model.predict_log_proba(X), np.log(proba), rtol=1e-6)
    if len(labels) > 1:
        assert model.score(X, y) > 0.7


def test_multilabel_and_multi_output_regression():
    rng = np.random.default_rng(12)
    X, codes = _classification(rng, n_classes=3)
    Y = np.stack([codes == 0, codes == 1, codes != 2], 1).astype(int)
    model = MLPClassifier(random_state=0, max_iter=100).fit(X, Y)
    assert model.predict(X).shape == Y.shape and model.out_activation_ == "logistic"
    assert model.predict_proba(X).shape == Y.shape
    X, Y = _regression(rng, n_targets=3)
    model = MLPRegressor(random_state=0, max_iter=300).fit(X, Y)
    assert model.predict(X).shape == Y.shape and model.score(X, Y) > 0.8


def test_dataframes_in():
    pd = pytest.importorskip("pandas")
    X, y = _classification(np.random.default_rng(13))
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    model = MLPClassifier(random_state=0, max_iter=30).fit(frame, pd.Series(y))
    assert list(model.feature_names_in_) == list(frame.columns)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        np.testing.assert_array_equal(model.predict(frame), model.predict(X))
    with pytest.raises(ValueError, match="feature names"):
        model.predict(frame.rename(columns={"f0": "other"}))


# ------------------------------------------------- pipelines and selection
def test_pipeline_grid_search_and_cross_validation():
    X, y = make_classification(300, 8, n_informative=4, random_state=0)
    pipeline = make_pipeline(StandardScaler(), MLPClassifier(random_state=0, max_iter=60))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipeline, X, y, cv=3)
        search = GridSearchCV(pipeline, {"mlpclassifier__alpha": [1e-4, 1e-1],
                                         "mlpclassifier__hidden_layer_sizes": [(8,), (32,)]},
                              cv=3, n_jobs=2).fit(X, y)
    assert scores.shape == (3,) and scores.mean() > 0.7
    assert search.best_score_ > 0.7 and len(search.cv_results_["params"]) == 4
    assert search.predict(X).shape == (300,)


def test_a_search_on_joblibs_threads_scores_as_one_on_one_job():
    """GridSearchCV with n_jobs=2 on joblib's threads (fits in two Python threads at once:
    docs/performance.md) gives every candidate's scores bit for bit as n_jobs=1, for a
    serial plan and a parallel one (BLAS held at one thread from the workers' threads)."""
    import joblib

    X, y = make_classification(600, 784, n_informative=20, random_state=1)
    grid = {"alpha": [1e-4, 1e-2], "hidden_layer_sizes": [(16,), (512,)]}
    results = []
    for n_jobs, backend in [(1, "loky"), (2, "threading")]:
        search = GridSearchCV(MLPClassifier(random_state=0, max_iter=3, batch_size=256),
                              grid, cv=3, n_jobs=n_jobs, scoring="neg_log_loss")
        with warnings.catch_warnings(), joblib.parallel_config(backend=backend):
            warnings.simplefilter("ignore", ConvergenceWarning)
            search.fit(X, y)
        results.append(search.cv_results_)
    for key in [f"split{i}_test_score" for i in range(3)]:
        np.testing.assert_array_equal(results[0][key], results[1][key])


@pytest.mark.parametrize("make", [
    lambda: (MLPClassifier(random_state=0, max_iter=20, batch_norm=True, dropout=0.1),
             _classification(np.random.default_rng(14))),
    lambda: (MLPRegressor(random_state=0, max_iter=20, solver="sgd"),
             _regression(np.random.default_rng(15), n_targets=2)),
])
def test_clone_pickle_and_joblib_round_trip(make, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model, (X, y) = make()
        model.fit(X, y)
        fresh = clone(model)
        assert not hasattr(fresh, "coefs_") and fresh.get_params() == model.get_params()
        data = pickle.dumps(model)
        modules = _modules_named(data)
        assert not any(m.startswith(("numba", "llvmlite")) for m in modules), modules
        copies = [pickle.loads(data)]
        joblib.dump(model, tmp_path / "m.joblib")
        copies.append(joblib.load(tmp_path / "m.joblib"))
        for copy in copies:
            np.testing.assert_array_equal(copy.predict(X), model.predict(X))
            for ca, cb in zip(copy.coefs_, model.coefs_):
                np.testing.assert_array_equal(ca, cb)
        # training continues exactly: the optimizer state and generator travel too
        copy = copies[0]
        model.partial_fit(X, y)
        copy.partial_fit(X, y)
        np.testing.assert_array_equal(copy.predict(X), model.predict(X))
        assert copy.loss_curve_ == model.loss_curve_


def _modules_named(data):
    """The modules whose classes or functions unpickling ``data`` looks up."""
    modules = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            modules.add(module)
            return super().find_class(module, name)

    Recorder(io.BytesIO(data)).load()
    return modules


def test_the_estimator_trains_a_fastnn_model_with_the_options():
    X, y = _classification(np.random.default_rng(16))
    model = MLPClassifier(hidden_layer_sizes=(16, 8), dropout=0.25, batch_norm=True,
                          random_state=0, max_iter=5).fit(X, y)
    kinds = [type(layer).__name__ for layer in model._model.layers]
    assert kinds == ["Dense", "BatchNorm", "Activation", "Dropout", "Dense", "BatchNorm",
                     "Activation", "Dropout", "Dense"]
    assert [c.shape for c in model.coefs_] == [(X.shape[1], 16), (16, 8), (8, 3)]
    assert isinstance(model._model, fastnn.Sequential)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_the_dtype_follows_the_input_as_in_scikit_learn(kind):
    """dtype=None (the default): float32 input trains and predicts in float32, anything
    else in float64, as scikit-learn's MLP does; dtype="float32" is float32 for any
    input."""
    X, y = _data(kind, np.random.default_rng(27))
    estimator = _pair(kind)[0]
    for X_dtype, dtype, expected in ((np.float64, None, np.float64), (np.int64, None, np.float64),
                                     (np.float32, None, np.float32),
                                     (np.float64, "float32", np.float32),
                                     (np.float32, "float64", np.float64)):
        model = estimator(max_iter=2, dtype=dtype, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit((X * 4).astype(X_dtype), y)
        assert model.coefs_[0].dtype == expected and model.intercepts_[0].dtype == expected
        outputs = model.predict_proba(X) if kind == "classifier" else model.predict(X)
        assert outputs.dtype == expected


# ------------------------------------------------------------- bad input
BAD_FITS = {
    "nan in X": lambda X, y: (np.where(X > 1.5, np.nan, X), y),
    "inf in X": lambda X, y: (np.where(X > 1.5, np.inf, X), y),
    "1-D X": lambda X, y: (X[:, 0], y),
    "3-D X": lambda X, y: (X[:, :, None], y),
    "short y": lambda X, y: (X, y[:-1]),
    "no samples": lambda X, y: (X[:0], y[:0]),
    "text X": lambda X, y: (np.full(X.shape, "a"), y),
}


@pytest.mark.parametrize("case", sorted(BAD_FITS))
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_bad_input_raises_as_scikit_learn_and_leaves_the_model(case, kind):
    X, y = _data(kind, np.random.default_rng(17))
    ours, theirs = _pair(kind)
    fitted = ours(random_state=0, max_iter=5).fit(X, y)
    before = pickle.dumps(fitted)
    prediction = fitted.predict(X)
    bad_X, bad_y = BAD_FITS[case](X, y)
    with pytest.raises(Exception) as expected:
        theirs(random_state=0, max_iter=5).fit(bad_X, bad_y)
    for call in (lambda e: e.fit(bad_X, bad_y), lambda e: e.partial_fit(bad_X, bad_y)):
        with pytest.raises(type(expected.value)):
            call(fitted)
        np.testing.assert_array_equal(fitted.predict(X), prediction)
        assert pickle.dumps(fitted) == before


@pytest.mark.parametrize("params", [dict(alpha=-1.0), dict(hidden_layer_sizes=(0,)),
                                    dict(activation="softplus"), dict(batch_size=0),
                                    dict(learning_rate_init=0.0), dict(momentum=1.5),
                                    dict(validation_fraction=1.0), dict(solver="newton")])
def test_invalid_parameters_raise_as_scikit_learn(params):
    X, y = _classification(np.random.default_rng(18))
    with pytest.raises(Exception) as expected:
        neural_network.MLPClassifier(**params).fit(X, y)
    with pytest.raises(type(expected.value)):
        MLPClassifier(**params).fit(X, y)


@pytest.mark.parametrize("params", [dict(dtype="float16"), dict(dropout=1.0),
                                    dict(batch_norm="yes")])
def test_invalid_fastnn_parameters(params):
    X, y = _classification(np.random.default_rng(19))
    with pytest.raises(ValueError, match=next(iter(params))):
        MLPClassifier(**params).fit(X, y)


def test_unsupported_choices_say_what_to_use():
    X, y = _classification(np.random.default_rng(20))
    for params in (dict(dropout=0.1), dict(batch_norm=True)):
        fitted = MLPClassifier(solver="lbfgs", max_iter=3, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted.fit(X, y)
        coefs = [c.copy() for c in fitted.coefs_]
        with pytest.raises(ValueError, match="stochastic solver.*lbfgs"):
            fitted.set_params(**params).fit(X, y)
        for before, after in zip(coefs, fitted.coefs_):     # nothing changed
            np.testing.assert_array_equal(before, after)
    with pytest.raises(AttributeError, match="partial_fit"):
        MLPClassifier(solver="lbfgs").partial_fit
    with pytest.raises(ValueError, match="negative values"):     # Poisson targets are >= 0
        MLPRegressor(loss="poisson").fit(X, y.astype(float) - 1.0)
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(X)


@pytest.mark.parametrize("kind,outputs", [("classifier", 3), ("classifier", 2),
                                          ("classifier", "multilabel"), ("regressor", 1),
                                          ("regressor", 3)])
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic"])
def test_lbfgs_gives_scikit_learns_coefficients(kind, outputs, activation):
    """solver="lbfgs" in float64 from the same initial weights: scikit-learn's iterates
    (SciPy's L-BFGS-B on the same objective and gradient, the parameters in another
    order), n_iter_ and loss_."""
    rng = np.random.default_rng(23)
    if kind == "regressor":
        X, y = _regression(rng, n_targets=outputs)
    elif outputs == "multilabel":
        X, y = _classification(rng, n_classes=3)
        y = np.stack([y == 0, y != 1, y == 2], axis=1).astype(int)
    else:
        X, y = _classification(rng, n_classes=outputs)
    ours_cls, theirs_cls = _pair(kind)
    params = dict(solver="lbfgs", hidden_layer_sizes=(9, 5), activation=activation,
                  alpha=0.01, max_iter=12, random_state=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = ours_cls(dtype="float64", **params).fit(X, y)
        theirs = theirs_cls(**params).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-8 * np.abs(b).max())
    assert not hasattr(ours, "loss_curve_") and not hasattr(theirs, "loss_curve_")


def test_lbfgs_warns_as_scikit_learn_and_continues_with_warm_start():
    X, y = _classification(np.random.default_rng(24))
    model = MLPClassifier(solver="lbfgs", max_iter=4, random_state=0)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        model.fit(X, y)
    assert model.n_iter_ == 4
    first = model.loss_
    model.set_params(warm_start=True, max_iter=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    assert model.loss_ < first and model.score(X, y) > 0.8


def test_partial_fit_classes():
    X, y = _classification(np.random.default_rng(21))
    model = MLPClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        model.partial_fit(X, y)
    assert not hasattr(model, "classes_")
    model.partial_fit(X[:50], y[:50], classes=[0, 1, 2])
    with pytest.raises(ValueError, match="not the same as on last call"):
        model.partial_fit(X, y, classes=[0, 1, 5])
    with pytest.raises(ValueError, match="classes not in"):
        model.partial_fit(X, np.where(y == 2, 9, y))


def test_the_optimizer_as_scikit_learns_tests_read_it():
    """_optimizer.learning_rate: scikit-learn's rate in force, computed as it computes it."""
    X, y = _classification(np.random.default_rng(25), n=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sgd = MLPClassifier(solver="sgd", learning_rate="invscaling", power_t=0.25,
                            max_iter=3, random_state=0).fit(X, y)
        adam = MLPClassifier(max_iter=2, batch_size=16, random_state=0).fit(X, y)
        theirs = neural_network.MLPClassifier(max_iter=2, batch_size=16,
                                              random_state=0).fit(X, y)
    assert sgd._optimizer.learning_rate == 0.001 / (3 * 64 + 1) ** 0.25
    assert adam._optimizer.learning_rate == pytest.approx(theirs._optimizer.learning_rate,
                                                          rel=1e-12)
    with pytest.raises(AttributeError, match="_optimizer"):
        MLPClassifier(solver="lbfgs").fit(X, y)._optimizer


def test_a_diverging_fit_with_early_stopping_keeps_the_best_weights():
    """As scikit-learn: the run goes on to max_iter with NaN scores, then keeps the best
    validation epoch's weights (a warning says so)."""
    rng = np.random.default_rng(26)
    X, y = rng.standard_normal((150, 4)), rng.standard_normal(150)
    model = MLPRegressor(hidden_layer_sizes=50, activation="identity", solver="sgd",
                         learning_rate_init=1.0, max_iter=12, early_stopping=True,
                         random_state=0, dtype="float64")
    with pytest.warns(RuntimeWarning, match="diverged.*best validation score"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
    assert model.n_iter_ == 12 and len(model.validation_scores_) == 12
    assert np.isnan(model.validation_scores_[-1]) and np.isnan(model.loss_curve_[-1])
    assert all(np.isfinite(c).all() for c in model.coefs_)
    assert np.isfinite(model.predict(X)).all()
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        model.set_params(early_stopping=False).fit(X, y)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_scikit_learns_private_lbfgs_objective(n_classes):
    """_loss_grad_lbfgs (scikit-learn's tests call it): its loss and gradient, in its
    packing, at the same coefficients."""
    X, y = _classification(np.random.default_rng(28), n=60, n_classes=n_classes)
    params = dict(solver="lbfgs", hidden_layer_sizes=7, max_iter=1, random_state=1,
                  activation="tanh", alpha=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(**params).fit(X, y)
        theirs = neural_network.MLPClassifier(**params).fit(X, y)
    Y = ours._label_binarizer.transform(y) if hasattr(ours, "_label_binarizer") else \
        theirs._label_binarizer.transform(y)
    units = [X.shape[1], 7, theirs.n_outputs_]
    buffers = ([X] + [np.empty((len(X), u)) for u in units[1:]],
               [np.empty((len(X), u)) for u in units[1:]],
               [np.empty((a, b)) for a, b in zip(units, units[1:])],
               [np.empty(b) for b in units[1:]])
    theta = np.random.default_rng(1).standard_normal(sum(a * b + b for a, b in
                                                         zip(units, units[1:])))
    expected = theirs._loss_grad_lbfgs(theta, X, Y, None, *buffers)
    value, grad = ours._loss_grad_lbfgs(theta, X, Y, None, *buffers)
    assert value == pytest.approx(expected[0], rel=1e-12)
    np.testing.assert_allclose(grad, expected[1], rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(ours.coefs_[0], theta[:X.shape[1] * 7].reshape(-1, 7))


def test_assigned_coefficients_are_what_training_continues_from():
    """As in scikit-learn: coefs_/intercepts_ assigned by hand — on an unfitted estimator
    before partial_fit, or replacing a fitted one's — are the weights training goes on
    from; shapes that do not fit are a ValueError that changes nothing."""
    X, y = _classification(np.random.default_rng(29), n=80, n_classes=2)
    params = dict(solver="sgd", hidden_layer_sizes=3, random_state=0, momentum=0.0,
                  dtype="float64")
    rng = np.random.default_rng(5)
    coefs = [rng.standard_normal((X.shape[1], 3)), rng.standard_normal((3, 1))]
    intercepts = [rng.standard_normal(3), rng.standard_normal(1)]
    theirs = neural_network.MLPClassifier(**{k: v for k, v in params.items() if k != "dtype"})
    ours = MLPClassifier(**params)
    for estimator in (theirs, ours):     # what scikit-learn's own test_fit sets
        estimator.coefs_ = [c.copy() for c in coefs]
        estimator.intercepts_ = [b.copy() for b in intercepts]
        for name, value in dict(n_outputs_=1, n_layers_=3, out_activation_="logistic",
                                t_=0, n_iter_=0, best_loss_=np.inf, loss_curve_=[],
                                _no_improvement_count=0).items():
            setattr(estimator, name, value)
        estimator.partial_fit(X, y, classes=[0, 1])
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
    ours.coefs_ = [c.copy() for c in coefs]            # replacing a fitted estimator's
    ours.intercepts_ = [b.copy() for b in intercepts]
    ours.set_params(warm_start=True, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
    assert np.abs(ours.coefs_[0] - coefs[0]).max() < 0.1       # one epoch from them
    kept = [c.copy() for c in ours.coefs_]
    ours.coefs_ = [np.zeros((2, 3)), coefs[1]]
    with pytest.raises(ValueError, match="coefs_ and intercepts_ assigned"):
        ours.partial_fit(X, y)
    for a, b in zip(kept, ours._model.dense_layers):
        np.testing.assert_array_equal(a, b.W.T)
