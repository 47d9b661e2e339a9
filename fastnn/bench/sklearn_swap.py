"""``fastnn bench --sklearn`` / ``scripts/sklearn_swap.py``: scikit-learn's MLP against
fastnn's drop-in on scikit-learn's bundled data sets and the bike data — 5-fold
``cross_validate`` of ``make_pipeline(StandardScaler(), estimator)``, the same
hyperparameters and ``random_state`` for both, the two alternating fold set by fold
set. Prints each one's mean ± std score (accuracy, or R²) and fit time (the five folds'
fits, summed), and the fit-time ratio. fastnn's kernels are compiled (or loaded from
the cache) by a warm-up fit before any timing.
"""
import argparse
import time
import warnings

import numpy as np

#: data set -> (loader, estimator kind, hyperparameters both estimators get)
DATASETS = {
    "digits": ("load_digits", "classifier", {}),
    "breast_cancer": ("load_breast_cancer", "classifier", {}),
    "wine": ("load_wine", "classifier", {}),
    "iris": ("load_iris", "classifier", {"max_iter": 1000}),
    "diabetes": ("load_diabetes", "regressor", {"max_iter": 2000}),
    "bike": ("bike", "regressor", {"hidden_layer_sizes": (64, 64)}),
    "digits_lbfgs": ("load_digits", "classifier", {"solver": "lbfgs"}),
    "breast_cancer_lbfgs": ("load_breast_cancer", "classifier", {"solver": "lbfgs"}),
    "bike_lbfgs": ("bike", "regressor", {"hidden_layer_sizes": (64, 64), "solver": "lbfgs"}),
}


#: the pause before each timed cross-validation. An OpenBLAS worker thread keeps spinning
#: for a while after its last call; measured here, a fit right after scikit-learn's took
#: 60-80 ms longer (on a 130 ms fit) than the same fit after a 0.5 s pause. Pausing before
#: both contenders keeps one's leftover threads out of the other's time.
SETTLE_SECONDS = 0.5


def load(name):
    """(X, y) of a data set: scikit-learn's loader, or bike's train + validation rows."""
    loader = DATASETS[name][0]
    if loader == "bike":
        from fastnn.datasets import load_bike

        data = load_bike(dtype="float64")
        return (np.concatenate([data.X_train, data.X_val]),
                np.concatenate([data.y_train, data.y_val]))
    import sklearn.datasets

    return getattr(sklearn.datasets, loader)(return_X_y=True)


def estimators(kind, params, random_state=0, dtype=None):
    """{"scikit-learn": its MLP, "fastnn": fastnn's}, with the same hyperparameters (and
    fastnn's ``dtype``: None, scikit-learn's contract, or "float32")."""
    from sklearn import neural_network

    import fastnn

    name = "MLPClassifier" if kind == "classifier" else "MLPRegressor"
    return {"scikit-learn": getattr(neural_network, name)(random_state=random_state, **params),
            "fastnn": getattr(fastnn, name)(random_state=random_state, dtype=dtype, **params)}


def _warm_up():
    """Compile (or load) the kernels both estimator kinds use, outside any timing."""
    import fastnn

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # two iterations do not converge
        for solver in ("adam", "lbfgs"):
            for labels in (rng.integers(0, 2, 40), rng.integers(0, 3, 40)):
                fastnn.MLPClassifier(solver=solver, max_iter=2).fit(X, labels)
            fastnn.MLPRegressor(solver=solver, max_iter=2).fit(X, X[:, 0])


def compare(names, folds=5, rounds=1, log=print, dtype=None):
    """rows[name][contender] = (scores over folds, summed fit seconds per round)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _warm_up()
    rows = {}
    for name in names:
        X, y = load(name)
        _, kind, params = DATASETS[name]
        splitter = (StratifiedKFold if kind == "classifier" else KFold)(
            folds, shuffle=True, random_state=0)
        rows[name] = {}
        for r in range(rounds):
            contenders = list(estimators(kind, params, dtype=dtype).items())
            for contender, estimator in (contenders if r % 2 == 0 else contenders[::-1]):
                time.sleep(SETTLE_SECONDS)   # the other one's BLAS threads stop spinning
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    result = cross_validate(make_pipeline(StandardScaler(), estimator), X, y,
                                            cv=splitter)
                scores, seconds = rows[name].setdefault(contender, ([], []))
                scores[:] = result["test_score"]
                seconds.append(float(np.sum(result["fit_time"])))
        log(f"{name}: {X.shape[0]} samples, {X.shape[1]} features done")
    return rows


def table(rows):
    lines = [f"{'data set':<20}{'metric':<9}{'scikit-learn':>18}{'fastnn':>18}"
             f"{'sklearn fit s':>15}{'fastnn fit s':>14}{'speed-up':>10}  within 1 std"]
    for name, per in rows.items():
        metric = "accuracy" if DATASETS[name][1] == "classifier" else "R2"
        (sk_scores, sk_s), (fn_scores, fn_s) = per["scikit-learn"], per["fastnn"]
        sk_t, fn_t = np.median(sk_s), np.median(fn_s)
        ok = np.mean(fn_scores) >= np.mean(sk_scores) - np.std(sk_scores)
        lines.append(f"{name:<20}{metric:<9}"
                     f"{np.mean(sk_scores):>10.4f} ± {np.std(sk_scores):.4f}"
                     f"{np.mean(fn_scores):>10.4f} ± {np.std(fn_scores):.4f}"
                     f"{sk_t:>15.2f}{fn_t:>14.2f}{sk_t / fn_t:>9.1f}x  {'yes' if ok else 'NO'}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastnn bench --sklearn", description=(
        "scikit-learn's MLP against fastnn's drop-in estimators: k-fold cross_validate of "
        "make_pipeline(StandardScaler(), estimator), the same hyperparameters and "
        "random_state for both, the two alternating fold set by fold set. Prints each "
        "one's mean and std of the score (accuracy or R2), the fit time (the folds' fits "
        "summed) and the ratio. fastnn's kernels are compiled or loaded by a warm-up fit "
        "before any timing. Needs scikit-learn (pip install -e '.[sklearn]')."))
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help="comma-separated, from: " + ", ".join(DATASETS))
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (5)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the timed cross-validations (median fit time)")
    parser.add_argument("--fastnn-dtype", choices=("input", "float32"), default="input",
                        help="fastnn's dtype: the input's, as scikit-learn (float64 for "
                             "these data sets; the default), or float32")
    args = parser.parse_args(argv)
    names = [n for n in args.datasets.split(",") if n]
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        parser.error(f"unknown data sets {unknown}; choose from {sorted(DATASETS)}")
    started = time.perf_counter()
    dtype = None if args.fastnn_dtype == "input" else args.fastnn_dtype
    rows = compare(names, args.folds, args.rounds, dtype=dtype)
    print()
    print(table(rows))
    print(f"\n{args.folds}-fold cross-validation of make_pipeline(StandardScaler(), MLP) with "
          f"random_state=0; fit time: the {args.folds} fits summed (median of "
          f"{args.rounds} round(s)); fastnn's dtype: {args.fastnn_dtype}; "
          f"{time.perf_counter() - started:.0f} s in all")
    return 0
