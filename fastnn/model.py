"""Sequential: a network described by flat vectors and integer tables.

All parameters live in one vector ``params`` (each layer's W, then b); ``grads``
has the same layout; each layer's ``W``, ``b``, ``dW``, ``db`` are views into them.
Training runs one compiled kernel per epoch (fastnn.kernels.training.train_epoch);
this module validates input, owns the buffers and calls kernels. It holds no math.
"""
import math
import numbers
import time

import numpy as np

from fastnn.buffers import aligned_zeros
from fastnn.history import History
from fastnn.layers import Activation, Dense, check_positive_int
from fastnn.optimizers import get_optimizer
from fastnn.validation import check_dtype, check_features, check_targets
from fastnn.kernels import network, training
from fastnn.kernels.activations import ACTIVATIONS
from fastnn.kernels.losses import LOSSES
from fastnn.kernels.optimizers import add_penalty_grad

#: Output activations whose values are probabilities, as the cross-entropies need.
_PROBABILITY_OUTPUTS = ("softmax", "sigmoid")
#: Samples per chunk in predict/evaluate.
_EVAL_CHUNK = 512


def _fold_layers(layers):
    """Dense layers with any following Activation folded into their activation."""
    if isinstance(layers, (Dense, Activation)) or not hasattr(layers, "__iter__"):
        raise TypeError("layers must be a list of Dense (and Activation) layers")
    dense = []
    for i, layer in enumerate(layers):
        if isinstance(layer, Dense):
            dense.append(layer)
        elif isinstance(layer, Activation):
            if not dense or dense[-1].activation != "identity":
                raise ValueError(f"layers[{i}]: an Activation must follow a Dense layer "
                                 "whose own activation is identity")
            dense[-1].activation = layer.activation
        else:
            raise TypeError(f"layers[{i}] is a {type(layer).__name__}, not a Dense or "
                            "Activation layer")
    if not dense:
        raise ValueError("layers must contain at least one Dense layer")
    for i in range(1, len(dense)):
        if dense[i].n_in != dense[i - 1].n_out:
            raise ValueError(f"layer shapes do not chain: {dense[i - 1]!r} gives "
                             f"{dense[i - 1].n_out} outputs but {dense[i]!r} takes {dense[i].n_in}")
    for layer in dense[:-1]:
        if layer.activation == "softmax":
            raise ValueError("softmax is supported as the output activation only")
    return dense


def _initial_weights(layer, rng):
    """He normal for ReLU-like layers, Glorot uniform otherwise (float64)."""
    fan_in, fan_out = layer.n_in, layer.n_out
    if layer.activation in ("relu", "softplus"):
        return rng.standard_normal((fan_out, fan_in)) * math.sqrt(2.0 / fan_in)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, (fan_out, fan_in))


class Sequential:
    """A stack of dense layers trained as one compiled loop.

    Parameters: ``layers`` (Dense, optionally followed by Activation layers),
    ``loss`` ("mse", "binary_crossentropy", "categorical_crossentropy"), ``dtype``
    ("float32" or "float64"), ``seed`` (initial weights; also the default
    shuffling seed of ``fit``) and ``device`` ("cpu", or "cuda" to train and infer on a
    GPU — or the CUDA simulator — with fastnn.kernels.cuda; see fastnn.device).
    """

    def __init__(self, layers, *, loss="mse", dtype="float32", seed=None, device="cpu"):
        if not isinstance(loss, str):
            raise TypeError(f"loss must be a string, got {type(loss).__name__}")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose from {sorted(LOSSES)}")
        self.dtype = check_dtype(dtype)
        self.layers = _fold_layers(list(layers) if hasattr(layers, "__iter__") else layers)
        self.loss_name = loss
        if loss != "mse" and self.layers[-1].activation not in _PROBABILITY_OUTPUTS:
            raise ValueError(f"loss {loss!r} needs probabilities: give the last layer "
                             f"activation 'softmax' or 'sigmoid', not "
                             f"{self.layers[-1].activation!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"seed must be an integer or None, got {type(seed).__name__}")
        if device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
        if device == "cuda":
            from fastnn import device as _device

            _device._cuda()  # a clear error, now, when CUDA is not available
        self.device = device
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._build()
        self._init_params()

    # ------------------------------------------------------------------ layout
    def _build(self):
        layers = self.layers
        self.sizes = np.array([layers[0].n_in] + [l.n_out for l in layers], dtype=np.int64)
        self.acts = np.array([ACTIVATIONS[l.activation] for l in layers], dtype=np.int64)
        w_off, b_off, bounds, l1, l2 = [], [], [0], [], []
        offset = 0
        for layer in layers:
            w_off.append(offset)
            offset += layer.n_out * layer.n_in
            b_off.append(offset)
            bounds.append(offset)
            l1.append(layer.l1)
            l2.append(layer.l2)
            offset += layer.n_out
            bounds.append(offset)
            l1.append(0.0)
            l2.append(0.0)
        self.w_off = np.array(w_off, dtype=np.int64)
        self.b_off = np.array(b_off, dtype=np.int64)
        self.reg_bounds = np.array(bounds, dtype=np.int64)
        self.reg_l1 = np.array(l1, dtype=np.float64)
        self.reg_l2 = np.array(l2, dtype=np.float64)
        self.loss_code = LOSSES[self.loss_name]
        self.fused = bool(network.is_fused(self.acts[-1], self.loss_code))
        self.params = aligned_zeros(offset, self.dtype)
        self.grads = aligned_zeros(offset, self.dtype)
        for l, layer in enumerate(layers):
            layer.W = network.weight_view(self.params, self.w_off, self.sizes, l)
            layer.b = network.bias_view(self.params, self.b_off, self.sizes, l)
            layer.dW = network.weight_view(self.grads, self.w_off, self.sizes, l)
            layer.db = network.bias_view(self.grads, self.b_off, self.sizes, l)
        self._ws = aligned_zeros(0, self.dtype)

    def _init_params(self):
        rng = np.random.default_rng(self.seed)
        for layer in self.layers:
            layer.W[...] = _initial_weights(layer, rng)
            layer.b[...] = 0

    def _workspace(self, cap):
        need = network.workspace_size(self.sizes, cap)
        if self._ws.size < need:
            self._ws = aligned_zeros(need, self.dtype)
        return self._ws

    # ------------------------------------------------------------ properties
    @property
    def n_inputs(self):
        return int(self.sizes[0])

    @property
    def n_outputs(self):
        return int(self.sizes[-1])

    @property
    def is_classifier(self):
        return self.loss_name != "mse"

    def _xy(self, X, y, xname="X", yname="y"):
        X = check_features(X, self.n_inputs, self.dtype, xname)
        T = check_targets(y, X.shape[0], self.n_outputs, self.loss_name, self.dtype, yname)
        return X, T

    def _kernel_tables(self):
        return self.sizes, self.acts, self.w_off, self.b_off

    # ------------------------------------------------------------- inference
    def forward(self, X):
        """The network's outputs f_L(...f_1(W_1 x + b_1)...) for each row of X: (n, n_outputs)."""
        X = check_features(X, self.n_inputs, self.dtype)
        cap = min(X.shape[0], _EVAL_CHUNK)
        if self.device == "cuda":
            from fastnn import device

            return device.forward(self, X, cap)
        out = np.empty((X.shape[0], self.n_outputs), dtype=self.dtype)
        training.predict_batches(X, out, self.params, *self._kernel_tables(),
                                 self._workspace(cap), cap)
        return out

    def predict_proba(self, X):
        """Class probabilities (n, n_outputs) of a classifier."""
        if not self.is_classifier:
            raise AttributeError("predict_proba is for classifiers (cross-entropy losses)")
        return self.forward(X)

    def predict(self, X):
        """Regressors: the outputs, (n,) for one output else (n, n_outputs).
        Classifiers: class ids (n,) for categorical cross-entropy; 0/1 labels for
        binary cross-entropy, (n,) for one output else (n, n_outputs)."""
        out = self.forward(X)
        if self.loss_name == "categorical_crossentropy":
            return out.argmax(axis=1)
        if self.loss_name == "binary_crossentropy":
            out = (out > 0.5).astype(np.int64)
        return out[:, 0] if self.n_outputs == 1 else out

    def evaluate(self, X, y):
        """{"loss": mean loss over the samples (without the penalty), and "accuracy"
        for classifiers}."""
        X, T = self._xy(X, y)
        return self._evaluate(X, T)

    def _evaluate(self, X, T):
        return self._metrics(*self._evaluate_sums(X, T), X.shape[0])

    def _evaluate_sums(self, X, T):
        """(sum over samples of the loss, correct predictions)."""
        cap = min(X.shape[0], _EVAL_CHUNK)
        if self.device == "cuda":
            from fastnn import device

            return device.evaluate(self, X, T, cap)
        return training.evaluate_batches(X, T, self.params, *self._kernel_tables(),
                                         self.loss_code, self.fused, self._workspace(cap), cap)

    def _metrics(self, total, correct, n):
        result = {"loss": total / n}
        if self.is_classifier:
            result["accuracy"] = correct / self._accuracy_denominator(n)
        return result

    def _accuracy_denominator(self, n):
        return n * self.n_outputs if self.loss_name == "binary_crossentropy" else n

    # ------------------------------------------------------------- gradients
    def penalty(self):
        """The regularization term l1·|W|₁ + l2/2·|W|² summed over layers."""
        return sum(l.l1 * float(np.abs(l.W, dtype=np.float64).sum())
                   + 0.5 * l.l2 * float(np.square(l.W, dtype=np.float64).sum())
                   for l in self.layers)

    def loss_and_grad(self, X, y):
        """The objective on (X, y) as one batch — mean loss plus the penalty — and its
        gradient written into ``grads`` (so into every layer's dW, db)."""
        X, T = self._xy(X, y)
        n = X.shape[0]
        ws = self._workspace(n)
        loss = training.batch_loss_and_grad(X, T, self.params, self.grads,
                                            *self._kernel_tables(), self.loss_code, self.fused, ws)
        return loss + add_penalty_grad(self.params, self.grads, self.reg_bounds, self.reg_l1,
                                       self.reg_l2)

    def loss(self, X, y):
        """The objective on (X, y): mean loss plus the penalty."""
        X, T = self._xy(X, y)
        return self._evaluate(X, T)["loss"] + self.penalty()

    def train_step(self, X, y, optimizer):
        """One optimizer step on (X, y) as a minibatch, exactly as ``fit`` makes it.
        Returns the minibatch loss before the update (without the penalty)."""
        X, T = self._xy(X, y)
        optimizer = get_optimizer(optimizer)
        n = X.shape[0]
        state = optimizer.bind(self)
        loss, _, optimizer.steps = training.train_epoch(
            X, T, np.arange(n), n, self.params, self.grads, state, optimizer.code,
            optimizer.hyperparameters(), optimizer.steps, self.reg_bounds, self.reg_l1,
            self.reg_l2, *self._kernel_tables(), self.loss_code, self.fused, self._workspace(n))
        return loss / n

    # --------------------------------------------------------------- training
    def fit(self, X, y, *, epochs=1, batch_size=32, optimizer=None, shuffle=True,
            validation_data=None, seed=None, verbose=1, callbacks=(), early_stopping=None):
        """Minibatch training; returns a History of per-epoch ``loss``, ``val_loss``
        (and ``accuracy``, ``val_accuracy`` for classifiers).

        Each epoch (one compiled call) shuffles the samples (``shuffle=True``), then for
        each minibatch of ``batch_size`` (the last may be smaller) runs forward, loss,
        backward and the regularized ``optimizer`` update. ``loss`` is the mean over
        samples of their minibatch's loss, taken before each update. ``seed`` fixes the
        shuffling (default: drawn from the model's seed). ``callbacks`` are called as
        ``cb(epoch, logs)`` after each epoch; one returning True stops training.
        ``early_stopping=k`` (needs ``validation_data``) stops after k epochs without a
        lower ``val_loss`` and restores the parameters of the best epoch
        (``history.best_epoch``); the optimizer keeps its latest state.
        Everything is validated before the first update; a diverging run (non-finite
        loss) stops with FloatingPointError.
        """
        X, T = self._xy(X, y)
        epochs = check_positive_int(epochs, "epochs")
        batch_size = min(check_positive_int(batch_size, "batch_size"), X.shape[0])
        optimizer = get_optimizer(optimizer)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a tuple (X_val, y_val)")
            val = self._xy(*validation_data, xname="validation_data[0]",
                           yname="validation_data[1]")
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be a bool, got {type(shuffle).__name__}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"seed must be an integer or None, got {type(seed).__name__}")
        if early_stopping is not None:
            early_stopping = check_positive_int(early_stopping, "early_stopping")
            if val is None:
                raise ValueError("early_stopping needs validation_data")
        callbacks = list(callbacks)
        for cb in callbacks:
            if not callable(cb):
                raise TypeError(f"callbacks must be callables, got {type(cb).__name__}")

        rng = np.random.default_rng(seed) if seed is not None else self._rng
        if self.device == "cuda":
            from fastnn import device

            epochs_run = device.fit(self, X, T, val, epochs, batch_size, optimizer, shuffle, rng,
                                    _EVAL_CHUNK)
        else:
            epochs_run = self._fit_cpu(X, T, val, epochs, batch_size, optimizer, shuffle, rng)
        n = X.shape[0]
        history = History()
        best_params, best_loss, since_best = None, math.inf, 0
        if early_stopping is not None:
            best_params = self.params.copy()
        started = time.perf_counter()
        for epoch, (total, correct, val_sums, copy_params) in enumerate(epochs_run):
            logs = self._metrics(total, correct, n)
            if not math.isfinite(logs["loss"]):
                epochs_run.close()
                raise FloatingPointError(f"training diverged in epoch {epoch + 1}: the loss is "
                                         f"{logs['loss']}; lower the learning rate")
            if val_sums is not None:
                for key, value in self._metrics(*val_sums, val[0].shape[0]).items():
                    logs["val_" + key] = value
            logs["time"], started = time.perf_counter() - started, time.perf_counter()
            history.append(epoch, logs)
            if verbose:
                shown = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if k != "time")
                print(f"epoch {epoch + 1}/{epochs}  {shown}  ({logs['time']:.2f} s)", flush=True)
            stop = any([bool(cb(epoch, logs)) for cb in callbacks])
            if early_stopping is not None:
                if logs["val_loss"] < best_loss:
                    best_loss, since_best, history.best_epoch = logs["val_loss"], 0, epoch
                    copy_params(best_params)
                else:
                    since_best += 1
                    stop = stop or since_best >= early_stopping
            if stop:
                break
        epochs_run.close()
        if early_stopping is not None:
            np.copyto(self.params, best_params)
        return history

    def _fit_cpu(self, X, T, val, epochs, batch_size, optimizer, shuffle, rng):
        """Per epoch, one compiled call; yields (loss sum, correct, validation sums or
        None, a function copying the parameters out)."""
        state = optimizer.bind(self)
        hp = optimizer.hyperparameters()
        ws = self._workspace(batch_size)
        perm = np.arange(X.shape[0], dtype=np.int64)
        for _ in range(epochs):
            if shuffle:
                rng.shuffle(perm)
            total, correct, optimizer.steps = training.train_epoch(
                X, T, perm, batch_size, self.params, self.grads, state, optimizer.code, hp,
                optimizer.steps, self.reg_bounds, self.reg_l1, self.reg_l2,
                *self._kernel_tables(), self.loss_code, self.fused, ws)
            val_sums = None if val is None else self._evaluate_sums(*val)
            yield total, correct, val_sums, lambda out: np.copyto(out, self.params)

    def __repr__(self):
        layers = ", ".join(repr(l) for l in self.layers)
        device = "" if self.device == "cpu" else f", device={self.device!r}"
        return (f"Sequential([{layers}], loss={self.loss_name!r}, "
                f"dtype={np.dtype(self.dtype).name!r}, seed={self.seed!r}{device})")
