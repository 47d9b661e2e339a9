"""Sequential: a network described by flat vectors and integer tables.

All parameters live in one vector ``params`` (each Dense layer's W, then b, then its
BatchNorm's γ and β); ``grads`` has the same layout; each layer's ``W``, ``b``, ``dW``,
``db`` (``gamma``, ``beta``, ``dgamma``, ``dbeta``) are views into them, and BatchNorm's
running statistics views into ``stats``.
Training runs each epoch as compiled chunks of steps (fastnn.kernels.contract.train_batches);
this module validates input, owns the buffers and calls kernels. It holds no math.
"""
import contextlib
import math
import numbers
import time

import numpy as np

from fastnn import persistence
from fastnn.buffers import aligned_zeros
from fastnn.callbacks import Callback
from fastnn.compile_notice import announcing, flush as say_compile_time
from fastnn.epochs import EpochResult, EpochRun, Interrupt, OneProcess, Progress, epoch_order
from fastnn.history import History
from fastnn.layers import Activation, BatchNorm, Dense, Dropout
from fastnn.optimizers import check_clip, get_optimizer
from fastnn.threads import ThreadChooser, numba_threads, one_pool
from fastnn.validation import check_dtype, check_features, check_positive_int, check_targets
from fastnn.kernels import contract
from fastnn.kernels.contract import (ACTIVATIONS, LOSSES, add_penalty_grad, make_network,
                                     planned_for)

#: Output activations whose values are probabilities, as the cross-entropies need.
_PROBABILITY_OUTPUTS = ("softmax", "sigmoid")
#: Samples per chunk in predict/evaluate.
_EVAL_CHUNK = 512


class Block:
    """One dense block as the kernels see it: Dropout of its input (rate ``drop``), the
    Dense layer, an optional BatchNorm, the activation (folded from the Dense or a
    following Activation layer)."""

    def __init__(self, dense, drop):
        self.dense, self.drop, self.norm = dense, drop, None
        self.activation = dense.activation


def _blocks(layers):
    """The blocks of a layer list, with every rule of their order checked."""
    if isinstance(layers, (Dense, Activation, BatchNorm, Dropout)) or \
            not hasattr(layers, "__iter__"):
        raise TypeError("layers must be a list of Dense, BatchNorm, Activation and Dropout "
                        "layers")
    blocks, drop, previous = [], 0.0, None
    for i, layer in enumerate(layers):
        where = f"layers[{i}]"
        if isinstance(layer, Dense):
            blocks.append(Block(layer, drop))
            drop = 0.0
        elif isinstance(layer, Dropout):
            if isinstance(previous, Dropout):
                raise ValueError(f"{where}: two Dropout layers in a row; use one with the rate "
                                 "you want")
            drop = layer.rate
        elif isinstance(layer, BatchNorm):
            if not isinstance(previous, Dense):
                raise ValueError(f"{where}: a BatchNorm must directly follow a Dense layer")
            block = blocks[-1]
            if block.activation != "identity":
                raise ValueError(f"{where}: BatchNorm normalizes a Dense layer's output before "
                                 f"its activation, but {block.dense!r} already applies "
                                 f"{block.activation!r}; write Dense(..., activation=None), "
                                 f"BatchNorm(...), Activation({block.activation!r})")
            if layer.n != block.dense.n_out:
                raise ValueError(f"{where}: BatchNorm({layer.n}) follows {block.dense!r}, which "
                                 f"has {block.dense.n_out} outputs; its width must match")
            block.norm = layer
        elif isinstance(layer, Activation):
            if not isinstance(previous, (Dense, BatchNorm)) or blocks[-1].activation != "identity":
                raise ValueError(f"{where}: an Activation must follow a Dense (or its "
                                 "BatchNorm) whose own activation is identity")
            blocks[-1].activation = layer.activation
        else:
            raise TypeError(f"{where} is a {type(layer).__name__}, not a Dense, BatchNorm, "
                            "Activation or Dropout layer")
        previous = layer
    if not blocks:
        raise ValueError("layers must contain at least one Dense layer")
    if isinstance(previous, Dropout):
        raise ValueError("a Dropout cannot be the last layer: it would drop the network's "
                         "outputs (place it before a Dense layer)")
    for a, b in zip(blocks, blocks[1:]):
        if b.dense.n_in != a.dense.n_out:
            raise ValueError(f"layer shapes do not chain: {a.dense!r} gives {a.dense.n_out} "
                             f"outputs but {b.dense!r} takes {b.dense.n_in}")
    for block in blocks[:-1]:
        if block.activation == "softmax":
            raise ValueError("softmax is supported as the output activation only")
    return blocks


def _initial_weights(block, rng):
    """He normal for ReLU-like blocks, Glorot uniform otherwise (float64)."""
    fan_in, fan_out = block.dense.n_in, block.dense.n_out
    if block.activation in ("relu", "softplus"):
        return rng.standard_normal((fan_out, fan_in)) * math.sqrt(2.0 / fan_in)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, (fan_out, fan_in))


class Sequential:
    """A stack of dense blocks trained as one compiled loop.

    Parameters: ``layers`` (Dense layers, each optionally followed by BatchNorm and/or
    Activation, with Dropout before any Dense), ``loss`` ("mse", "binary_crossentropy",
    "categorical_crossentropy"), ``dtype`` ("float32" or "float64"), ``seed`` (initial
    weights and the dropout stream; also the default shuffling seed of ``fit``) and
    ``device`` ("cpu", or "cuda" to train and infer on a GPU — or the CUDA simulator —
    with fastnn.kernels.cuda; see fastnn.device).
    """

    def __init__(self, layers, *, loss="mse", dtype="float32", seed=None, device="cpu"):
        self._setup(layers, loss, dtype, seed, device)
        self._init_params()

    @classmethod
    def _restored(cls, layers, loss, dtype, seed, device, dropout_key):
        """A model with the given architecture and dropout stream key whose parameters
        are left at zero, for ``fastnn.load`` to fill (fastnn.persistence)."""
        model = cls.__new__(cls)
        model._setup(layers, loss, dtype, seed, device, dropout_key)
        return model

    def _setup(self, layers, loss, dtype, seed, device, dropout_key=None):
        if not isinstance(loss, str):
            raise TypeError(f"loss must be a string, got {type(loss).__name__}")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose from {sorted(LOSSES)}")
        self.dtype = check_dtype(dtype)
        layers = list(layers) if hasattr(layers, "__iter__") else layers
        self.blocks = _blocks(layers)
        self.layers = layers
        self.loss_name = loss
        if loss != "mse" and self.blocks[-1].activation not in _PROBABILITY_OUTPUTS:
            raise ValueError(f"loss {loss!r} needs probabilities: give the last layer "
                             f"activation 'softmax' or 'sigmoid', not "
                             f"{self.blocks[-1].activation!r}")
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
        #: the optimizer of the last ``fit`` (None before any): ``fit(optimizer=None)``
        #: continues with it, state, step count and schedule intact
        self.optimizer = None
        #: the CSV preprocessing ``fastnn train PATH.csv`` fitted (fastnn.tabular), kept
        #: in the model file for ``fastnn predict``; None otherwise
        self.preprocessing = None
        self._build(dropout_key)

    # --------------------------------------------------------------- saving
    def save(self, path):
        """Write the model to ``path`` (one ``.npz`` file, conventionally ``.fnn``): its
        layers, loss, dtype and seed, parameters, running statistics, the last fit's
        optimizer (class, hyperparameters, schedule, state, step count) and the shuffling
        generator, so that ``fastnn.load(path)`` resumes exactly. The write is atomic: a
        failure leaves any previous file at ``path`` intact (fastnn.persistence)."""
        persistence.save(self, path)

    # ------------------------------------------------------------------ layout
    def _build(self, dropout_key=None):
        blocks = self.blocks
        sizes = [blocks[0].dense.n_in] + [b.dense.n_out for b in blocks]
        acts = [ACTIVATIONS[b.activation] for b in blocks]
        loss_code = LOSSES[self.loss_name]
        key = np.random.SeedSequence(self.seed, spawn_key=(1,)).generate_state(1, np.uint64)[0] \
            if dropout_key is None else np.uint64(dropout_key)
        self.net, n_params, n_stats = make_network(
            sizes, acts, [int(b.norm is not None) for b in blocks],
            [b.norm.momentum if b.norm else 0.0 for b in blocks],
            [b.norm.eps if b.norm else 0.0 for b in blocks], [b.drop for b in blocks],
            [b.dense.l1 for b in blocks], [b.dense.l2 for b in blocks], loss_code,
            contract.is_fused.py_func(acts[-1], loss_code), key)
        self.params = aligned_zeros(n_params, self.dtype)
        self.grads = aligned_zeros(n_params, self.dtype)
        self.stats = aligned_zeros(n_stats, self.dtype)
        net = self.net
        for l, block in enumerate(blocks):
            dense, norm = block.dense, block.norm
            dense.W = contract.weight_view.py_func(self.params, net, l)
            dense.b = contract.bias_view.py_func(self.params, net, l)
            dense.dW = contract.weight_view.py_func(self.grads, net, l)
            dense.db = contract.bias_view.py_func(self.grads, net, l)
            if norm is not None:
                norm.gamma = contract.gamma_view.py_func(self.params, net, l)
                norm.beta = contract.beta_view.py_func(self.params, net, l)
                norm.dgamma = contract.gamma_view.py_func(self.grads, net, l)
                norm.dbeta = contract.beta_view.py_func(self.grads, net, l)
                norm.running_mean = contract.running_mean_view.py_func(self.stats, net, l)
                norm.running_var = contract.running_var_view.py_func(self.stats, net, l)
        self._ws = aligned_zeros(0, self.dtype)
        self._acc = np.zeros(max(1, int(net.acc_size)))
        self._no_state = aligned_zeros((1, 0), self.dtype)

    def _init_params(self):
        rng = np.random.default_rng(self.seed)
        for block in self.blocks:
            block.dense.W[...] = _initial_weights(block, rng)
            block.dense.b[...] = 0
            if block.norm is not None:
                for array, value in ((block.norm.gamma, 1), (block.norm.beta, 0),
                                     (block.norm.running_mean, 0), (block.norm.running_var, 1)):
                    array[...] = value

    def _buffers(self, cap, state=None, net=None):
        """The kernels' ``Buffers``, with a workspace for minibatches of ``cap`` (for the
        plan of ``net``, by default the model's)."""
        need = contract.workspace_size.py_func(self.net if net is None else net, cap)
        if self._ws.size < need:
            self._ws = aligned_zeros(need, self.dtype)
        return contract.Buffers(self.params, self.grads,
                               self._no_state if state is None else state, self.stats,
                               self._ws, self._acc)

    # ------------------------------------------------------------ properties
    @property
    def layout(self):
        """What a custom compiled loop needs: the kernels' tables, the flat vectors and
        workspaces for a batch size (fastnn.model_layout.ModelLayout)."""
        from fastnn.model_layout import ModelLayout

        return ModelLayout(self)

    @property
    def n_inputs(self):
        return int(self.net.sizes[0])

    @property
    def n_outputs(self):
        return int(self.net.sizes[-1])

    @property
    def is_classifier(self):
        return self.loss_name != "mse"

    @property
    def dense_layers(self):
        """The Dense layers, in order."""
        return [block.dense for block in self.blocks]

    @property
    def has_batchnorm(self):
        return any(block.norm is not None for block in self.blocks)

    def _xy(self, X, y, xname="X", yname="y"):
        X = check_features(X, self.n_inputs, self.dtype, xname)
        T = check_targets(y, X.shape[0], self.n_outputs, self.loss_name, self.dtype, yname)
        return X, T

    def _check_batch_statistics(self, n, batch_size, argument):
        """BatchNorm's training statistics need at least 2 samples in every minibatch."""
        if self.has_batchnorm and (min(n, batch_size) < 2 or n % batch_size == 1):
            raise ValueError(f"{argument}: with BatchNorm every training minibatch needs at "
                             f"least 2 samples, but {n} samples in minibatches of {batch_size} "
                             f"leave one of 1; change {argument}")

    # ------------------------------------------------------------- inference
    def forward(self, X):
        """The network's outputs f_L(...f_1(W_1 x + b_1)...) for each row of X: (n, n_outputs).
        BatchNorm uses its running statistics; Dropout is the identity."""
        X = check_features(X, self.n_inputs, self.dtype)
        cap = min(X.shape[0], _EVAL_CHUNK)
        if self.device == "cuda":
            from fastnn import device

            return device.forward(self, X, cap)
        out = np.empty((X.shape[0], self.n_outputs), dtype=self.dtype)
        no_targets = np.empty((0, self.n_outputs), dtype=self.dtype)
        net = planned_for(self.net, cap, rows=X.shape[0])
        with one_pool(net, cap), announcing():
            contract.infer_batches(X, no_targets, out, net, self._buffers(cap), cap)
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
        for classifiers}, in inference mode."""
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
        no_outputs = np.empty((0, self.n_outputs), dtype=self.dtype)
        net = planned_for(self.net, cap, rows=X.shape[0])
        with one_pool(net, cap), announcing():
            return contract.infer_batches(X, T, no_outputs, net, self._buffers(cap), cap)

    def _metrics(self, total, correct, n):
        result = {"loss": total / n}
        if self.is_classifier:
            result["accuracy"] = correct / self._accuracy_denominator(n)
        return result

    def _accuracy_denominator(self, n):
        return n * self.n_outputs if self.loss_name == "binary_crossentropy" else n

    # ------------------------------------------------------------- gradients
    def penalty(self):
        """The regularization term l1·|W|₁ + l2/2·|W|² summed over the Dense layers."""
        return sum(l.l1 * float(np.abs(l.W, dtype=np.float64).sum())
                   + 0.5 * l.l2 * float(np.square(l.W, dtype=np.float64).sum())
                   for l in self.dense_layers)

    def loss_and_grad(self, X, y, *, step=0):
        """The training objective on (X, y) as one minibatch — mean loss plus the penalty —
        and its gradient written into ``grads`` (every layer's dW, db, dgamma, dbeta).
        Training mode: BatchNorm normalizes with the batch's statistics (its running
        statistics are left unchanged) and Dropout drops with the stream of update number
        ``step`` + 1 (``fit`` at step t draws the same mask for the same batch)."""
        X, T = self._xy(X, y)
        step = _check_step(step)
        self._check_batch_statistics(X.shape[0], X.shape[0], "X")
        buf = self._buffers(X.shape[0])
        net = planned_for(self.net, X.shape[0])
        with one_pool(net, X.shape[0]), announcing():
            loss = contract.batch_loss_and_grad(X, T, net, buf, step)
        return loss + add_penalty_grad(self.params, self.grads, self.net.seg)

    def loss(self, X, y, *, training=False, step=0):
        """The objective on (X, y): mean loss plus the penalty. ``training=False``: in
        inference mode (running statistics, no dropout); ``training=True``: exactly the
        objective ``loss_and_grad`` differentiates (grads are left unchanged)."""
        if not training:
            X, T = self._xy(X, y)
            return self._evaluate(X, T)["loss"] + self.penalty()
        saved = self.grads.copy()
        try:
            return self.loss_and_grad(X, y, step=step)
        finally:
            np.copyto(self.grads, saved)

    def train_step(self, X, y, optimizer, *, clip_norm=None, clip_value=None):
        """One optimizer step on (X, y) as a minibatch, exactly as ``fit`` makes it
        (running statistics updated). Returns the minibatch loss before the update
        (without the penalty)."""
        X, T = self._xy(X, y)
        optimizer = get_optimizer(optimizer)
        clip = check_clip(clip_norm, clip_value)
        n = X.shape[0]
        self._check_batch_statistics(n, n, "X")
        net = planned_for(self.net, n, training=True)
        buf = self._buffers(n, optimizer.bind(self), net)
        with one_pool(net, n), announcing():
            loss, _, optimizer.steps = contract.train_batches(
                X, T, np.arange(n), 0, n, n, net,
                optimizer.update_rule(clip, net.plan.parallel), buf,
                optimizer.steps, 0.0, 0)
        return loss / n

    # --------------------------------------------------------------- training
    def fit(self, X, y, *, epochs=1, batch_size=32, optimizer=None, shuffle=True,
            validation_data=None, seed=None, verbose=1, callbacks=(), early_stopping=None,
            clip_norm=None, clip_value=None, comm=None):
        """Minibatch training; returns a History of per-epoch ``loss``, ``val_loss``
        (and ``accuracy``, ``val_accuracy`` for classifiers) and ``lr``.

        Each epoch shuffles the samples (``shuffle=True``; or ``shuffle(perm)``, a function
        that writes the epoch's order, a permutation of 0..n-1, into the int64 ``perm``),
        then for each minibatch of
        ``batch_size`` (the last may be smaller) runs forward (BatchNorm with batch
        statistics, Dropout active), loss, backward and the ``optimizer`` update: penalty
        gradient, then clipping — each element to ±``clip_value``, then the whole
        gradient to global L2 norm ``clip_norm`` (PyTorch's clip_grad_norm_) — then the
        optimizer's rule at the rate its schedule gives. ``optimizer=None`` continues with
        ``model.optimizer`` (the last fit's: state, step count and schedule intact), or
        Adam(1e-3) for a model that never trained; the optimizer given becomes
        ``model.optimizer``. ``loss`` is the mean over samples of their minibatch's loss,
        taken before each update; ``lr`` the rate in force at the end of the epoch.
        ``seed`` fixes the shuffling (default: the model's own generator, which
        ``save``/``load`` keep). ``callbacks``: plain callables ``cb(epoch, logs)`` or
        fastnn.Callback objects (ReduceLROnPlateau, Checkpoint), called after each
        epoch; one returning True stops training. ``early_stopping=k`` (needs
        ``validation_data``) stops after k epochs without a lower ``val_loss`` and
        restores the parameters and running statistics of the best epoch
        (``history.best_epoch``); the optimizer keeps its latest state.

        An epoch runs as compiled chunks of about 0.2 s (fastnn.epochs): Ctrl-C stops
        training at the next step boundary with the model consistent (the partial epoch
        is recorded, ``history.interrupted`` is True; a second Ctrl-C interrupts at
        once), and ``verbose=1`` on a terminal shows a progress line during epochs longer
        than about a second. A fit that must compile kernels first (a configuration new to
        this machine's cache) says so before compiling, and how long it took, on the logger
        ``fastnn`` and, with ``verbose``, on stderr (fastnn.compile_notice). Everything is
        validated before the first update; a diverging run (non-finite loss) stops with
        FloatingPointError.

        ``comm``: an mpi4py communicator of k processes, each calling ``fit`` with the
        same arguments: data-parallel training (fastnn.distributed). Each takes its share
        of every minibatch of ``batch_size`` samples and one allreduce of the gradient per
        step makes the update the one-process fit would make (to rounding); all end
        with the same parameters. Output and checkpoints come from rank 0 only. Not for
        BatchNorm or Dropout (their statistics and masks are per process).
        """
        echo = bool(verbose) and (comm is None or getattr(comm, "Get_rank", lambda: 0)() == 0)
        with announcing(echo=echo):
            return self._fit(X, y, epochs, batch_size, optimizer, shuffle, validation_data,
                             seed, verbose, callbacks, early_stopping, clip_norm, clip_value,
                             comm)

    def _fit(self, X, y, epochs, batch_size, optimizer, shuffle, validation_data, seed,
             verbose, callbacks, early_stopping, clip_norm, clip_value, comm):
        if comm is not None:
            from fastnn import distributed

            comm = distributed.check_comm(comm)
        try:
            checked = self._fit_arguments(X, y, epochs, batch_size, optimizer, shuffle,
                                          validation_data, seed, early_stopping, callbacks,
                                          clip_norm, clip_value, comm)
        except (TypeError, ValueError) as error:
            if comm is None:
                raise
            distributed.agree(comm, error, {})
            raise
        X, T, epochs, batch_size, optimizer, clip, val, callbacks = checked
        if comm is not None:
            distributed.agree(comm, None, {
                "X shape": X.shape, "y shape": T.shape, "dtype": np.dtype(self.dtype).name,
                "network": repr(self), "epochs": epochs, "batch_size": batch_size,
                "optimizer": repr(optimizer), "validation rows":
                    None if val is None else val[0].shape[0], "seed": seed,
                "early_stopping": early_stopping, "clip": clip, "callbacks": len(callbacks)})
        for cb in callbacks:
            if isinstance(cb, Callback):
                cb.on_train_begin(self, optimizer, val is not None)

        rng = np.random.default_rng(seed) if seed is not None else self._rng
        self.optimizer = optimizer
        rank = 0 if comm is None else comm.Get_rank()
        with Interrupt() as interrupt, _rank_of(self, rank):
            run = EpochRun(interrupt, Progress(verbose == 1 and rank == 0))
            if comm is None:
                return self._run_epochs(X, T, val, epochs, batch_size, optimizer, clip,
                                        shuffle, rng, verbose, callbacks, early_stopping, run)
            with distributed.abort_on_error(comm):
                return self._run_epochs(X, T, val, epochs, batch_size, optimizer, clip,
                                        shuffle, rng, verbose if rank == 0 else 0, callbacks,
                                        early_stopping, run, comm)

    def _fit_arguments(self, X, y, epochs, batch_size, optimizer, shuffle, validation_data,
                       seed, early_stopping, callbacks, clip_norm, clip_value, comm):
        """fit's arguments checked: (X, T, epochs, batch_size, optimizer, clip, val,
        callbacks)."""
        X, T = self._xy(X, y)
        epochs = check_positive_int(epochs, "epochs")
        batch_size = min(check_positive_int(batch_size, "batch_size"), X.shape[0])
        self._check_batch_statistics(X.shape[0], batch_size, "batch_size")
        optimizer = self.optimizer if optimizer is None and self.optimizer is not None \
            else get_optimizer(optimizer)
        clip = check_clip(clip_norm, clip_value)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a tuple (X_val, y_val)")
            val = self._xy(*validation_data, xname="validation_data[0]",
                           yname="validation_data[1]")
        if not isinstance(shuffle, (bool, np.bool_)) and not callable(shuffle):
            raise TypeError(f"shuffle must be a bool or a function, got {type(shuffle).__name__}")
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
        if comm is not None:
            if self.device != "cpu":
                raise ValueError(f"comm: data-parallel training runs on the CPU; this model "
                                 f"has device={self.device!r}")
            if self.has_batchnorm or any(b.drop > 0.0 for b in self.blocks):
                raise ValueError("comm: BatchNorm and Dropout are not supported in "
                                 "data-parallel training (each process would normalize with "
                                 "its own share's statistics and draw its own masks)")
            if self.params.size >= 2 ** 31:
                raise ValueError(f"comm: {self.params.size} parameters; MPI counts stop at "
                                 f"2^31 - 1")
        return X, T, epochs, batch_size, optimizer, clip, val, callbacks

    def _run_epochs(self, X, T, val, epochs, batch_size, optimizer, clip, shuffle, rng,
                    verbose, callbacks, early_stopping, run, comm=None):
        if comm is not None:
            from fastnn import distributed

            epochs_run = self._fit_cpu(X, T, val, epochs, batch_size, optimizer, clip, shuffle,
                                       rng, run, distributed.Processes(comm))
        elif self.device == "cuda":
            from fastnn import device

            epochs_run = device.fit(self, X, T, val, epochs, batch_size, optimizer, clip,
                                    shuffle, rng, _EVAL_CHUNK, run)
        else:
            epochs_run = self._fit_cpu(X, T, val, epochs, batch_size, optimizer, clip, shuffle,
                                       rng, run)
        history = History()
        best, best_loss, since_best = None, math.inf, 0
        if early_stopping is not None:
            best = (self.params.copy(), self.stats.copy())
        started = time.perf_counter()
        for epoch, result in enumerate(epochs_run):
            logs = self._metrics(result.total, result.correct, result.samples)
            if not math.isfinite(logs["loss"]):
                epochs_run.close()
                raise FloatingPointError(f"training diverged in epoch {epoch + 1}: the loss is "
                                         f"{logs['loss']}; lower the learning rate")
            if val is not None:   # NaN for an epoch cut short, which is not validated
                measured = dict.fromkeys(logs, math.nan) if result.val_sums is None else \
                    self._metrics(*result.val_sums, val[0].shape[0])
                logs.update({"val_" + key: value for key, value in measured.items()})
            logs["lr"] = optimizer.current_lr()
            logs["time"], started = time.perf_counter() - started, time.perf_counter()
            history.append(epoch, logs)
            run.progress.clear()
            say_compile_time()
            if not result.complete:
                history.interrupted = True
                if verbose:
                    print(f"epoch {epoch + 1}/{epochs} interrupted after {result.samples} of "
                          f"{X.shape[0]} samples  loss {logs['loss']:.4f}  "
                          f"({logs['time']:.2f} s)", flush=True)
                break
            if verbose:
                shown = "  ".join(f"{k} {v:.4g}" if k == "lr" else f"{k} {v:.4f}"
                                  for k, v in logs.items() if k != "time")
                print(f"epoch {epoch + 1}/{epochs}  {shown}  ({logs['time']:.2f} s)", flush=True)
            if any(getattr(cb, "needs_host_state", False) for cb in callbacks):
                result.sync()
            stop = any([bool(cb(epoch, logs)) for cb in callbacks])
            if early_stopping is not None:
                if logs["val_loss"] < best_loss:
                    best_loss, since_best, history.best_epoch = logs["val_loss"], 0, epoch
                    result.copy_state(*best)
                else:
                    since_best += 1
                    stop = stop or since_best >= early_stopping
            if stop or run.stopped:
                history.interrupted = history.interrupted or run.stopped
                break
        epochs_run.close()
        if early_stopping is not None:
            np.copyto(self.params, best[0])
            np.copyto(self.stats, best[1])
        return history

    def _copy_state(self, params, stats):
        np.copyto(params, self.params)
        np.copyto(stats, self.stats)

    def _fit_cpu(self, X, T, val, epochs, batch_size, optimizer, clip, shuffle, rng, run,
                 team=None):
        """The epochs of ``fit``, each as compiled chunks of consecutive steps (about
        CHUNK_SECONDS each: fastnn.epochs); yields an EpochResult per epoch. After Ctrl-C,
        the epoch in progress ends at the next chunk boundary, as a partial result.
        ``team``: the processes training together (fastnn.epochs.OneProcess, or
        fastnn.distributed.Processes for a data-parallel fit)."""
        team = OneProcess() if team is None else team
        cap = team.workspace_samples(batch_size)
        net = planned_for(self.net, cap, training=team.splits)
        buf = self._buffers(cap, optimizer.bind(self), net)
        team.begin(self, optimizer, rng)
        rule = optimizer.update_rule(clip, net.plan.parallel)
        n = X.shape[0]
        steps_total = -(-n // batch_size)
        perm = np.arange(n, dtype=np.int64)
        chooser = ThreadChooser(net.plan, (tuple(net.sizes.tolist()), cap))
        for epoch in range(epochs):
            if team.agree(0, run.stopped)[1]:
                run.interrupt.requested = True
                return
            epoch_order(perm, shuffle, rng)
            team.same_order(perm, shuffle)
            total, correct, done, began = 0.0, 0, 0, time.perf_counter()
            while done < n:
                threads, steps = chooser.next(run.sizer.steps)
                steps, stopped = team.agree(steps, run.stopped)
                if stopped:
                    run.interrupt.requested = True
                    break
                stop = min(n, done + steps * batch_size)
                chunk_began = time.perf_counter()
                with one_pool(net, cap), numba_threads(threads):
                    total, correct, optimizer.steps = team.train(
                        X, T, perm, done, stop, batch_size, net, optimizer.refresh(rule),
                        buf, optimizer.steps, total, correct)
                now = time.perf_counter()
                ran = -(-(stop - done) // batch_size)
                run.sizer.record(ran, now - chunk_began)
                chooser.record(threads, ran, now - chunk_began)
                done = stop
                run.progress.update(f"epoch {epoch + 1}/{epochs}", -(-done // batch_size),
                                    steps_total, done, now - began)
            total, correct = team.totals(total, correct)
            complete = done == n
            val_sums = None if val is None or not complete else team.validate(self, val)
            yield EpochResult(total, correct, done, val_sums, complete, self._copy_state)

    def __repr__(self):
        layers = ", ".join(repr(l) for l in self.layers)
        device = "" if self.device == "cpu" else f", device={self.device!r}"
        return (f"Sequential([{layers}], loss={self.loss_name!r}, "
                f"dtype={np.dtype(self.dtype).name!r}, seed={self.seed!r}{device})")


@contextlib.contextmanager
def _rank_of(model, rank):
    """``model._rank`` is ``rank`` inside (Checkpoint writes from rank 0 only)."""
    model._rank = rank
    try:
        yield
    finally:
        model._rank = 0


def _check_step(step):
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"step must be an integer >= 0, got {step!r}")
    return int(step)
