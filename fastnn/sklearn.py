"""``fastnn.MLPClassifier`` and ``fastnn.MLPRegressor``: drop-ins for scikit-learn's
``sklearn.neural_network`` estimators, trained by fastnn's compiled epoch.

    from fastnn import MLPClassifier        # instead of sklearn.neural_network's
    make_pipeline(StandardScaler(), MLPClassifier(random_state=0)).fit(X, y)

Same parameters (names, defaults, validation), fitted attributes, methods and
convergence rules as scikit-learn's (solvers "adam", "sgd" and "lbfgs": SciPy's L-BFGS-B
on the full-batch objective, one compiled pass per evaluation), plus fastnn's ``dtype``
(None: scikit-learn's contract, float32 input trains in float32 and anything else in
float64; "float32" for fastnn's speed on any input), ``dropout`` (before every Dense but
the first) and ``batch_norm`` (after every hidden Dense, before its activation). The weights
start as scikit-learn's do (Glorot uniform from ``random_state``, biases too). fastnn's
losses average over outputs where scikit-learn's gradients sum over them, so each
model is trained on scikit-learn's objective times c (c = 2/m for squared error with m
outputs, 1/m for logistic and Poisson (exp) outputs, 1 for softmax) with the rates scaled to match: the
L2 term is c·alpha/batch_size, SGD's rate lr/c, Adam's epsilon c·epsilon — the same
updates as scikit-learn's, on minibatches in scikit-learn's shuffled order (drawn from
``random_state`` after the weights and the validation split, as it draws them).
Differences that remain (docs/sklearn.md):

- Adam adds epsilon to √v̂ (PyTorch, Keras) where scikit-learn adds it to √v: a
  difference of a factor √(1 − β₂ᵗ) in epsilon;
- the L2 term of a smaller last minibatch uses batch_size, not its own size;
- ``loss_`` adds the L2 term at the weights at the end of the epoch, not of each batch;
- with ``sample_weight`` and minibatches, a minibatch's L2 term divides by n_b times
  the mean weight, not by its own weight sum.

A fitted estimator pickles as arrays and plain values (fastnn.persistence's members),
never compiled code. scikit-learn is imported here only (``pip install -e '.[sklearn]'``
in fastnn's checkout).
"""
import hashlib
import math
import numbers
import warnings
from itertools import pairwise

import numpy as np
import scipy.optimize
import scipy.sparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor as _SklearnMLPRegressor
from sklearn.neural_network._base import LOSS_FUNCTIONS as _LOSS_FUNCTIONS
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from fastnn import persistence
from fastnn.compile_notice import announcing
from fastnn.layers import Activation, BatchNorm, Dense, Dropout
from fastnn.loading import model_from_arrays
from fastnn.model import Sequential
from fastnn.optimizers import SGD, Adam
from fastnn.threads import single_threaded_blas
from fastnn.validation import check_sample_weight, converted

_STOCHASTIC_SOLVERS = ("sgd", "adam")
#: scikit-learn's activation names -> fastnn's
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_OUT_ACTIVATIONS = {"identity": "identity", "sigmoid": "logistic", "softmax": "softmax",
                    "exp": "exp"}


def _constraints():
    """scikit-learn's parameter constraints for its MLP, and fastnn's own."""
    constraints = {k: v for k, v in _SklearnMLPRegressor._parameter_constraints.items()
                   if k != "loss"}
    constraints.update(dtype=[StrOptions({"float32", "float64"}), None],
                       dropout=[Interval(numbers.Real, 0, 1, closed="left")],
                       batch_norm=["boolean"])
    return constraints


class _MLP(BaseEstimator):
    """What the classifier and the regressor share: fitting, weights, pickling."""

    _parameter_constraints = _constraints()

    # ------------------------------------------------------------- fitting
    def fit(self, X, y, sample_weight=None):
        """Train on (X, y) for up to ``max_iter`` epochs (from the start, or from the
        current weights with ``warm_start=True``); ``sample_weight`` (n_samples,) weighs
        each sample's loss (scikit-learn's semantics: each minibatch's loss is the weighted
        mean). Returns self."""
        self._validate_params()
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    def _fit(self, X, y, incremental, sample_weight=None):
        if self.solver == "lbfgs" and (self.dropout or self.batch_norm):
            raise ValueError("dropout and batch_norm need a stochastic solver ('adam' or "
                             "'sgd'); solver='lbfgs' minimizes the full-batch loss")
        hidden = list(self.hidden_layer_sizes) if hasattr(self.hidden_layer_sizes, "__iter__") \
            else [self.hidden_layer_sizes]
        if np.any(np.array(hidden) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        before = dict(self.__dict__)
        model = getattr(self, "_model", None)
        snapshot = None if model is None else \
            {name: np.array(a) for name, a in persistence.model_arrays(model).items()}
        try:
            with announcing(echo=self.verbose):
                return self._fit_checked(X, y, hidden, incremental, sample_weight)
        except BaseException:   # a failed fit leaves the estimator as it was
            self.__dict__.clear()
            self.__dict__.update(before)
            if snapshot is not None:
                self._model = model_from_arrays(snapshot)
                self._expose_weights()
            raise

    def _fit_checked(self, X, y, hidden, incremental, sample_weight):
        assigned = self._assigned_weights()
        first_pass = (not hasattr(self, "_model") and assigned is None) or \
            (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        weights = self._sample_weights(y, sample_weight, incremental)
        rng = check_random_state(self.random_state)
        units = [X.shape[1]] + hidden + [y.shape[1]]
        if first_pass:
            initial = self._initialize(y.shape[1], units, rng)
        elif y.shape[1] != getattr(self, "n_outputs_", y.shape[1]):
            raise ValueError(f"y has {y.shape[1]} outputs; the fitted model has "
                             f"{self.n_outputs_}")
        elif assigned is not None:
            self._take_assigned(assigned, units, X.dtype, rng)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        if self.solver == "lbfgs":
            return self._fit_lbfgs(X, y, weights, units, initial if first_pass else None, rng)
        val = None
        if self.early_stopping:
            stratify = y if isinstance(self, ClassifierMixin) and y.shape[1] == 1 else None
            parts = (X, y) if weights is None else (X, y, weights)
            split = train_test_split(*parts, random_state=rng, stratify=stratify,
                                     test_size=self.validation_fraction)
            X, X_val, y, y_val = split[:4]
            weights, w_val = split[4:] if weights is not None else (None, None)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            val = (X_val, self._labels(y_val), w_val)
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It "
                              "is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n))
        scale = self._objective_scale(y.shape[1])
        l2 = scale * self.alpha / (batch_size * (1.0 if weights is None else weights.mean()))
        if first_pass:
            self._model = self._new_model(units, initial, l2, _seed_of(rng), X.dtype)
            self._expose_weights()
        model = self._model_with_l2(l2)
        if not incremental or model.optimizer is None:
            model.optimizer = self._new_optimizer(scale)
        X, T = converted(X, model.dtype, "X"), converted(y, model.dtype, "y")
        if val is not None:
            val = (converted(val[0], model.dtype, "X"),) + val[1:]
        self._train(model, (X, T, weights), val, batch_size, incremental, rng)
        return self

    def _sample_weights(self, y, sample_weight, incremental):
        """The samples' weights: ``sample_weight`` times the class weights (classifiers'
        ``class_weight``), checked; None when they are all alike."""
        n = y.shape[0]
        weights = check_sample_weight(sample_weight, n)
        by_class = self._class_weights(y, incremental)
        if by_class is None:
            return weights
        return check_sample_weight(by_class if weights is None else by_class * weights, n,
                                   "class_weight (times sample_weight)")

    def _class_weights(self, y, incremental):
        """Per-sample weights of the samples' classes (None: no class weights)."""
        return None

    def _fit_lbfgs(self, X, y, weights, units, initial, rng):
        """scikit-learn's L-BFGS: SciPy's L-BFGS-B on its full-batch objective (mean loss
        plus α/(2n)·|W|² — weighted: Σ w L / Σ w plus α/(2 Σ w)·|W|²), each evaluation one
        compiled pass over all samples, fastnn's objective and gradient divided by c (the
        module docstring)."""
        n = X.shape[0] if weights is None else weights.sum()
        scale = self._objective_scale(y.shape[1])
        if initial is not None:
            self._model = self._new_model(units, initial, scale * self.alpha / n,
                                          _seed_of(rng), X.dtype)
            self._expose_weights()
        model = self._model_with_l2(scale * self.alpha / n)
        loss_and_grad = self._full_batch_objective(model, X, y, weights)
        with single_threaded_blas():    # L-BFGS-B's own BLAS calls: no threads left spinning
            result = scipy.optimize.minimize(
                loss_and_grad, model.params.astype(np.float64), method="L-BFGS-B", jac=True,
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol,
                         **_get_additional_lbfgs_options_dict("iprint",
                                                              1 if self.verbose else -1)})
        self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
        self.loss_ = float(result.fun)
        np.copyto(model.params, result.x, casting="same_kind")
        if not np.isfinite(model.params).all():
            raise ValueError("Solver produced non-finite parameter weights. The input data "
                             "may contain large values and need to be preprocessed.")
        return self

    def _full_batch_objective(self, model, X, y, weights=None):
        """scikit-learn's L-BFGS objective on (X, y) as a function of ``model``'s flat
        parameters: (mean loss plus α/(2n)·|W|², its gradient), from fastnn's objective
        (``model`` built with L2 c·α/n) and gradient divided by c. The loss's value is
        computed as scikit-learn computes it, from the outputs (probabilities clipped to
        [eps, 1 − eps], where fastnn's is exact from the logits), so that the line searches
        see the same values. ``weights``: the samples' (Σ w L / Σ w, and Σ w for n)."""
        n = X.shape[0] if weights is None else weights.sum()
        scale = self._objective_scale(y.shape[1])
        X, T = converted(X, model.dtype, "X"), converted(y, model.dtype, "y")
        objective = model.objective(X, T, sample_weight=weights)
        data_loss = _LOSS_FUNCTIONS[self._sklearn_loss_name(y.shape[1])]

        def loss_and_grad(params):
            _, grad = objective(params)
            squares = _weight_squares(model)
            loss = data_loss(T, objective.outputs(), weights) + \
                0.5 * self.alpha * squares / n
            grad /= scale
            return loss, grad
        return loss_and_grad

    def _loss_grad_lbfgs(self, packed, X, y, sample_weight, *buffers):
        """scikit-learn's private L-BFGS objective, as its tests call it on a fitted
        estimator: loss and gradient at ``packed`` (its packing: every coefs_ raveled,
        then every intercepts_) on (X, y), y as its fit binarizes it; the model's
        weights are left at ``packed``. The buffer arguments are scikit-learn's and unused."""
        y = np.asarray(y)
        y = y.reshape(-1, 1) if y.ndim == 1 else y
        weights = check_sample_weight(sample_weight, len(X))
        n = len(X) if weights is None else weights.sum()
        model = self._model_with_l2(self._objective_scale(y.shape[1]) * self.alpha / n)
        layers = [(dense.W, dense.b) for dense in model.dense_layers]
        ends = np.cumsum([W.size for W, _ in layers] + [b.size for _, b in layers])
        cuts = np.split(np.asarray(packed, dtype=np.float64), ends[:-1])
        for (W, b), coef, intercept in zip(layers, cuts, cuts[len(layers):]):
            W[...] = coef.reshape(W.shape[::-1]).T
            b[...] = intercept
        loss, _ = self._full_batch_objective(model, np.asarray(X), y, weights)(model.params)
        grads = [(np.asarray(dense.dW, np.float64).T.ravel(), np.asarray(dense.db, np.float64))
                 for dense in model.dense_layers]     # views of the gradient just made
        return loss, np.concatenate([g for g, _ in grads] + [g for _, g in grads])

    def _assigned_weights(self):
        """[(coef, intercept)] assigned to ``coefs_`` and ``intercepts_`` by hand (new
        arrays, not views of the model's weights), or None."""
        coefs, intercepts = self.__dict__.get("coefs_"), self.__dict__.get("intercepts_")
        if coefs is None or intercepts is None:
            return None
        model = self.__dict__.get("_model")
        if model is not None and len(coefs) == len(intercepts) == len(model.dense_layers) \
                and all(np.shares_memory(c, d.W) and np.shares_memory(b, d.b)
                        for c, b, d in zip(coefs, intercepts, model.dense_layers)):
            return None
        return list(zip(coefs, intercepts))

    def _take_assigned(self, assigned, units, input_dtype, rng):
        """Continue from coefficients assigned by hand (as scikit-learn does): into the
        model's weights, or a new model of them; the fitted attributes not set are
        scikit-learn's initial ones."""
        shapes = [(a, b) for a, b in pairwise(units)]
        if len(assigned) != len(shapes) or any(
                np.shape(c) != s or np.shape(b) != (s[1],) for (c, b), s in zip(assigned, shapes)):
            raise ValueError(f"coefs_ and intercepts_ assigned have shapes "
                             f"{[(np.shape(c), np.shape(b)) for c, b in assigned]}; the "
                             f"network needs {[(s, (s[1],)) for s in shapes]}")
        if "_model" in self.__dict__:
            for (coef, intercept), dense in zip(assigned, self._model.dense_layers):
                dense.W[...] = np.asarray(coef).T
                dense.b[...] = intercept
        else:
            self._reset_books(units[-1], units, only_missing=True)
            self._model = self._new_model(units, [(np.asarray(c), np.asarray(b))
                                                  for c, b in assigned], 0.0,
                                          _seed_of(rng), input_dtype)
        self._expose_weights()

    def _initialize(self, n_outputs, units, rng):
        """Reset the fitted attributes; scikit-learn's initial weights (Glorot uniform,
        biases too), drawn from ``rng`` in its order: [(coef (n_in, n_out), intercept)]."""
        self._reset_books(n_outputs, units)
        return self._initial_weights(units, rng)

    def _reset_books(self, n_outputs, units, only_missing=False):
        """scikit-learn's fitted attributes at the start of training (with
        ``only_missing``, those not set already)."""
        books = dict(n_iter_=0, t_=0, n_outputs_=n_outputs, n_layers_=len(units),
                     out_activation_=_OUT_ACTIVATIONS[self._out_activation(n_outputs)])
        if self.solver in _STOCHASTIC_SOLVERS:
            books.update(loss_curve_=[], _no_improvement_count=0)
            if self.early_stopping:
                books.update(validation_scores_=[], best_validation_score_=-np.inf,
                             best_loss_=None)
            else:
                books.update(validation_scores_=None, best_validation_score_=None,
                             best_loss_=np.inf)
        for name, value in books.items():
            if not (only_missing and name in self.__dict__):
                setattr(self, name, value)

    def _initial_weights(self, units, rng):
        """scikit-learn's initial weights: [(coef (n_in, n_out), intercept)] from ``rng``."""
        factor = 2.0 if self.activation == "logistic" else 6.0
        initial = []
        for n_in, n_out in pairwise(units):
            bound = math.sqrt(factor / (n_in + n_out))
            initial.append((rng.uniform(-bound, bound, (n_in, n_out)),
                            rng.uniform(-bound, bound, n_out)))
        return initial

    def _new_model(self, units, initial, l2, seed, input_dtype):
        """The fastnn model: Dropout before each Dense but the first, BatchNorm after
        each hidden Dense (before its activation), the given initial weights; in
        ``dtype``, or with dtype=None in float32 for float32 input, else float64."""
        out = self._out_activation(units[-1])
        activation = _ACTIVATIONS[self.activation]
        layers = []
        for i, (n_in, n_out) in enumerate(pairwise(units)):
            if i and self.dropout:
                layers.append(Dropout(self.dropout))
            if i == len(units) - 2:
                layers.append(Dense(n_in, n_out, out, l2=l2))
            elif self.batch_norm:
                layers += [Dense(n_in, n_out, l2=l2), BatchNorm(n_out), Activation(activation)]
            else:
                layers.append(Dense(n_in, n_out, activation, l2=l2))
        loss = {"identity": "mse", "sigmoid": "binary_crossentropy",
                "softmax": "categorical_crossentropy", "exp": "poisson"}[out]
        dtype = self.dtype or ("float32" if input_dtype == np.float32 else "float64")
        model = Sequential(layers, loss=loss, dtype=dtype, seed=seed)
        for block, (coef, intercept) in zip(model.blocks, initial):
            block.layer.W[...] = coef.T
            block.layer.b[...] = 0.0 if block.norm is not None else intercept   # β instead
        return model

    def _sklearn_loss_name(self, n_outputs):
        """The name of scikit-learn's loss function for these outputs."""
        return {"identity": "squared_error", "sigmoid": "binary_log_loss",
                "softmax": "log_loss", "exp": "poisson"}[self._out_activation(n_outputs)]

    def _objective_scale(self, n_outputs):
        """c: fastnn's loss over scikit-learn's objective (see the module docstring)."""
        out = self._out_activation(n_outputs)
        return {"identity": 2.0 / n_outputs, "sigmoid": 1.0 / n_outputs, "exp": 1.0 / n_outputs,
                "softmax": 1.0}[out]

    def _model_with_l2(self, l2):
        """The model, rebuilt with its weights, statistics, optimizer and generator when
        its Dense layers' L2 factor is not ``l2`` (a new number of samples per batch)."""
        model = self._model
        if all(dense.l2 == l2 for dense in model.dense_layers):
            return model
        layers = [Dense(**{**layer.config(), "l2": l2}) if isinstance(layer, Dense)
                  else type(layer)(**layer.config()) for layer in model.layers]
        rebuilt = Sequential._restored(layers, None, model.loss_name, model.dtype, model.seed,
                                       model.device, int(model.net.key))
        np.copyto(rebuilt.params, model.params)
        np.copyto(rebuilt.stats, model.stats)
        rebuilt._rng, rebuilt.optimizer = model._rng, model.optimizer
        if model.optimizer is not None and model.optimizer._owner is model:
            model.optimizer._owner = rebuilt
        self._model = rebuilt
        self._expose_weights()
        return rebuilt

    def _new_optimizer(self, scale):
        if self.solver == "adam":
            return Adam(self.learning_rate_init, beta1=self.beta_1, beta2=self.beta_2,
                        eps=scale * self.epsilon)
        momentum = float(self.momentum)
        return SGD(self.learning_rate_init / scale, momentum=momentum,
                   nesterov=bool(self.nesterovs_momentum) and momentum > 0)

    def _train(self, model, data, val, batch_size, incremental, rng):
        """The epochs over ``data`` = (X, T, sample weights or None), as one compiled
        ``fit`` whose epoch callback keeps scikit-learn's books: loss_curve_, the
        no-improvement count (on ``val`` = (X, y, weights) with early stopping), the rate
        schedule, stopping. The samples are visited in scikit-learn's order (its shuffle of
        the running order, drawn from ``rng`` after the weights and the validation
        split)."""
        X, T, weights = data
        optimizer = model.optimizer
        n = X.shape[0]
        loss_factor = self._reported_loss_factor(T.shape[1])
        # each batch's α/(2 n_b)·|W|², weighted α/(2 Σ_b w)·|W|² (Σ_b w taken as n_b·w̄)
        mean_weight = 1.0 if weights is None else weights.mean()
        penalty = 0.5 * self.alpha * -(-n // batch_size) / (n * mean_weight)
        best = (model.params.copy(), model.stats.copy()) if self.early_stopping else None
        self.n_iter_ = 0
        converged = [False]
        order = np.arange(X.shape[0])

        def scikit_learn_order(perm):
            rng.shuffle(order)   # sklearn.utils.shuffle's draws and result, without its checks
            perm[:] = order

        def end_of_epoch(epoch, logs):
            self.n_iter_ += 1
            self.t_ += n
            squares = _weight_squares(model)
            self.loss_ = loss_factor * logs["loss"] + penalty * squares
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
            if self._count_no_improvement(val):
                np.copyto(best[0], model.params)
                np.copyto(best[1], model.stats)
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                _rescale_rate(optimizer, 1.0 / (self.t_ + 1) ** self.power_t)
            if self._no_improvement_count > self.n_iter_no_change:
                what = "Validation score" if self.early_stopping else "Training loss"
                message = (f"{what} did not improve more than tol={self.tol:f} for "
                           f"{self.n_iter_no_change} consecutive epochs.")
                if self._stops(optimizer, message):
                    converged[0] = True
                    return True
                self._no_improvement_count = 0
            return False

        epochs = 1 if incremental else self.max_iter
        try:
            interrupted = model.fit(X, T, sample_weight=weights, epochs=epochs,
                                    batch_size=batch_size,
                                    optimizer=optimizer,
                                    shuffle=scikit_learn_order if self.shuffle else False,
                                    verbose=0, callbacks=[end_of_epoch]).interrupted
        except FloatingPointError as error:
            if not self.early_stopping:
                raise ValueError("Solver produced non-finite parameter weights. The input "
                                 "data may contain large values and need to be "
                                 "preprocessed.") from None
            self._diverged(epochs, n, str(error))
            interrupted = False
        if interrupted:
            warnings.warn("Training interrupted by user.")
        elif not incremental and not converged[0] and self.n_iter_ == self.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                          "reached and the optimization hasn't converged yet.",
                          ConvergenceWarning)
        if self.early_stopping:
            np.copyto(model.params, best[0])
            np.copyto(model.stats, best[1])
        if not np.isfinite(model.params).all():
            raise ValueError("Solver produced non-finite parameter weights. The input data "
                             "may contain large values and need to be preprocessed.")

    def _diverged(self, epochs, n, message):
        """The books of scikit-learn's run after its loss diverges with early stopping: it
        trains on with NaN weights, their scores NaN (never counted as no improvement: NaN
        compares false) until the last epoch, then keeps the best epoch's weights."""
        warnings.warn(f"{message}; the weights of the best validation score are kept",
                      RuntimeWarning)
        left = epochs - self.n_iter_
        self.n_iter_ += left
        self.t_ += n * left
        self.loss_ = math.nan
        self.loss_curve_ += [math.nan] * left
        self.validation_scores_ += [math.nan] * left
        self._no_improvement_count = 0

    def _count_no_improvement(self, val):
        """scikit-learn's bookkeeping after an epoch; True when the validation score (on
        ``val`` = (X, y, weights or None), weighted) is the best so far (early stopping
        keeps those weights)."""
        if self.early_stopping:
            score = self._score(*val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                return True
            return False
        if self.loss_curve_[-1] > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])
        return False

    def _stops(self, optimizer, message):
        """scikit-learn's trigger_stopping: stop, or (sgd, adaptive) divide the rate by 5
        while it is above 1e-6."""
        if self.solver == "sgd" and self.learning_rate == "adaptive":
            rate = self.learning_rate_init * optimizer.lr_scale
            if rate > 1e-6:
                _rescale_rate(optimizer, optimizer.lr_scale / 5.0)
                if self.verbose:
                    print(message + " Setting learning rate to %f" % (rate / 5.0))
                return False
            if self.verbose:
                print(message + " Learning rate too small. Stopping.")
            return True
        if self.verbose:
            print(message + " Stopping.")
        return True

    # ------------------------------------------------------------ inference
    def _forward(self, X, check_input=True):
        """The network's outputs for X (validated against the fitted features)."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"],
                              dtype=(np.float64, np.float32), reset=False)
        return self._model.forward(_dense(X))

    def _score(self, X, y, sample_weight=None):
        """scikit-learn's score on (X, y) without validating X again: NaN for
        non-finite predictions."""
        prediction = self._predict(X, check_input=False)
        if prediction.dtype.kind == "f" and not np.isfinite(prediction).all():
            return np.nan
        return self._score_function(y, prediction, sample_weight=sample_weight)

    @property
    def _optimizer(self):
        """scikit-learn's optimizer as its tests read it (stochastic solvers, after a fit):
        ``learning_rate``, its rate in force — SGD's with the adaptive or invscaling
        changes, Adam's bias-corrected lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) after t updates."""
        model = self.__dict__.get("_model")
        if model is None or model.optimizer is None or self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute '_optimizer'")
        optimizer, rate = model.optimizer, self.learning_rate_init
        if self.solver == "sgd" and self.learning_rate == "invscaling":
            rate /= (self.t_ + 1) ** self.power_t     # as scikit-learn computes it
        elif self.solver == "sgd":
            rate *= optimizer.lr_scale
        elif optimizer.steps:
            t = optimizer.steps
            rate *= math.sqrt(1.0 - self.beta_2 ** t) / (1.0 - self.beta_1 ** t)
        return _OptimizerView(rate)

    # -------------------------------------------------------------- weights
    def _expose_weights(self):
        """coefs_ and intercepts_: views (n_in, n_out) and (n_out,) of the model's."""
        self.coefs_ = [dense.W.T for dense in self._model.dense_layers]
        self.intercepts_ = [dense.b for dense in self._model.dense_layers]

    def __getstate__(self):
        state = dict(self.__dict__)
        for name in ("coefs_", "intercepts_"):
            state.pop(name, None)
        if "_model" in state:
            state["_model"] = {name: np.array(array)
                               for name, array in persistence.model_arrays(self._model).items()}
        return state

    def __setstate__(self, state):
        state = dict(state)
        arrays = state.pop("_model", None)
        self.__dict__.update(state)
        if arrays is not None:
            self._model = model_from_arrays(arrays)
            self._expose_weights()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _store_parameters(estimator, arguments):
    """__init__'s arguments as attributes of the same names (scikit-learn's rule: store
    the parameters, nothing else)."""
    for name, value in arguments.items():
        if name != "self":
            setattr(estimator, name, value)


def _seed_of(rng):
    """The fastnn model's seed (its dropout stream) from the state of scikit-learn's
    generator, without drawing from it: scikit-learn's own draws stay in its order."""
    digest = hashlib.sha256(np.asarray(rng.get_state()[1]).tobytes()).digest()
    return int.from_bytes(digest[:4], "little") >> 1


def _weight_squares(model):
    """|W|²: the squared weights of every Dense layer of ``model``, summed in float64."""
    return sum(float(np.square(d.W, dtype=np.float64).sum()) for d in model.dense_layers)


class _OptimizerView:
    """What scikit-learn's tests read of its optimizer object."""

    def __init__(self, learning_rate):
        self.learning_rate = learning_rate


def _rescale_rate(optimizer, lr_scale):
    """Set SGD's rate scale as scikit-learn changes its rate: its velocity holds steps
    (v ← μv − lr·g) where fastnn's holds gradients (v ← μv + g; p ← p − lr·v), so the
    velocity is scaled by old/new rate to carry on with the same steps."""
    if optimizer.state is not None and optimizer.momentum > 0:
        optimizer.state *= optimizer.lr_scale / lr_scale
    optimizer.lr_scale = lr_scale


def _dense(X):
    return X.toarray() if scipy.sparse.issparse(X) else X


class MLPClassifier(ClassifierMixin, _MLP):
    """scikit-learn's ``MLPClassifier``, trained by fastnn (see the module docstring):
    softmax outputs for multiclass, logistic outputs for binary and multilabel targets;
    labels of any kind scikit-learn accepts."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None, dropout=0.0, batch_norm=False, class_weight=None):
        _store_parameters(self, locals())

    _parameter_constraints = {**_MLP._parameter_constraints,
                              "class_weight": [dict, StrOptions({"balanced"}), None]}
    _score_function = staticmethod(accuracy_score)

    def _class_weights(self, y, incremental):
        """``class_weight`` as per-sample weights: a dict {label: weight} (labels not
        named weigh 1), or "balanced", n_samples / (n_classes · the class's count) —
        scikit-learn's formula (``compute_sample_weight``). Single-label targets only."""
        if self.class_weight is None:
            return None
        if self._label_binarizer.y_type_.startswith("multilabel"):
            raise ValueError("class_weight is for single-label targets; y is multilabel "
                             "(weigh its samples with sample_weight)")
        if self.class_weight == "balanced" and incremental:
            raise ValueError("class_weight='balanced' is not supported for partial_fit (each "
                             "call's counts would differ); pass a dict of weights")
        labels = self._labels(y)
        if isinstance(self.class_weight, dict):
            unknown = [k for k in self.class_weight if k not in set(self.classes_.tolist())]
            if unknown:
                raise ValueError(f"class_weight names {unknown}, not classes of y "
                                 f"{self.classes_.tolist()}")
            bad = [k for k, v in self.class_weight.items()
                   if not (isinstance(v, numbers.Real) and math.isfinite(v) and v >= 0)]
            if bad:
                raise ValueError(f"class_weight: the weights of {bad} must be finite numbers "
                                 ">= 0")
        return compute_sample_weight(self.class_weight, labels)

    def _out_activation(self, n_outputs):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "sigmoid"

    def _reported_loss_factor(self, n_outputs):
        """scikit-learn's log loss sums over logistic outputs where fastnn's binary loss
        averages over them."""
        return 1.0 if self._out_activation(n_outputs) == "softmax" else float(n_outputs)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        X = _dense(X)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same "
                                     "classes as in the previous call to fit. Previously got "
                                     f"{self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` "
                                 f"has {self.classes_}. 'y' has {classes}.")
        return X, self._label_binarizer.transform(y).astype(bool)

    def _labels(self, y):
        """Binarized targets back to labels (for the validation score)."""
        return self._label_binarizer.inverse_transform(y)

    @available_if(lambda estimator: estimator._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y), weighted by ``sample_weight``. ``classes`` (every label
        of all calls) is required on the first call. Returns self."""
        self._validate_params()
        first = not hasattr(self, "classes_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if not first and classes is not None and \
                not np.array_equal(self.classes_, unique_labels(classes)):
            raise ValueError(f"`classes={classes!r}` is not the same as on last call to "
                             f"partial_fit, was: {self.classes_!r}")
        if first:
            before = dict(self.__dict__)
            binarizer = LabelBinarizer()
            binarizer.fit(y if type_of_target(y).startswith("multilabel") else classes)
            self._label_binarizer, self.classes_ = binarizer, binarizer.classes_
            try:
                return self._fit(X, y, incremental=True, sample_weight=sample_weight)
            except BaseException:
                self.__dict__.clear()
                self.__dict__.update(before)
                raise
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def _predict(self, X, check_input=True):
        outputs = self._forward(X, check_input)
        if self.n_outputs_ == 1:
            outputs = outputs.ravel()
        return self._label_binarizer.inverse_transform(outputs)

    def predict(self, X):
        """The predicted classes, (n_samples,) (or (n_samples, n_classes) multilabel)."""
        check_is_fitted(self)
        return self._predict(X)

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes), in the order of ``classes_``."""
        check_is_fitted(self)
        outputs = self._forward(X)
        if self.n_outputs_ == 1:
            p = outputs.ravel()
            return np.vstack([1 - p, p]).T
        return outputs

    def predict_log_proba(self, X):
        """log(predict_proba(X))."""
        probabilities = self.predict_proba(X)
        return np.log(probabilities, out=probabilities)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _MLP):
    """scikit-learn's ``MLPRegressor``, trained by fastnn (see the module docstring):
    squared error with identity outputs, or loss="poisson" with exp outputs; one or several
    targets."""

    _parameter_constraints = {**_MLP._parameter_constraints,
                              "loss": [StrOptions({"squared_error", "poisson"})]}

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None, dropout=0.0, batch_norm=False):
        _store_parameters(self, locals())

    _score_function = staticmethod(r2_score)

    def _out_activation(self, n_outputs):
        """identity for the squared error; exp, the log link, for the Poisson loss."""
        return "exp" if self.loss == "poisson" else "identity"

    def _reported_loss_factor(self, n_outputs):
        """scikit-learn reports half the mean squared error (over samples and outputs),
        and the Poisson loss summed over outputs where fastnn's averages."""
        return float(n_outputs) if self.loss == "poisson" else 0.5

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return _dense(X), y

    @staticmethod
    def _labels(y):
        return y

    @available_if(lambda estimator: estimator._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), weighted by ``sample_weight``. Returns self."""
        self._validate_params()
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def _predict(self, X, check_input=True):
        outputs = self._forward(X, check_input)
        return outputs.ravel() if outputs.shape[1] == 1 else outputs

    def predict(self, X):
        """The predicted values, (n_samples,) or (n_samples, n_outputs)."""
        check_is_fitted(self)
        return self._predict(X)
