"""Sequential: a network described by flat vectors and integer tables.

All parameters live in one vector ``params`` (each Dense layer's W, then b, then its
BatchNorm's γ and β); ``grads`` has the same layout; each layer's ``W``, ``b``, ``dW``,
``db`` (``gamma``, ``beta``, ``dgamma``, ``dbeta``) are views into them, and BatchNorm's
running statistics views into ``stats``.
This module assembles the model, owns its buffers, infers and takes single steps;
``fit`` checks its arguments into a record and runs the one fit loop (fastnn.fit_loop)
on the engine of the model's device. It holds no math.
"""
import numbers

import numpy as np

from fastnn import fit_loop, persistence
from fastnn.blocks import blocks_of
from fastnn.buffers import aligned_zeros
from fastnn.compile_notice import announcing
from fastnn.device import check_device
from fastnn.engines import infer
from fastnn.kernels import contract
from fastnn.kernels.contract import (LOSSES, add_penalty_grad, make_network,
                                     planned_for)
from fastnn.optimizers import check_clip, get_optimizer
from fastnn.threads import one_pool
from fastnn.validation import (check_dtype, check_features, check_loss, check_sample_weight,
                               check_targets)

#: the classifiers' losses
_CLASSIFICATION = ("binary_crossentropy", "categorical_crossentropy")


class Sequential:
    """A stack of blocks trained as one compiled loop.

    Parameters: ``layers`` (Dense layers, each optionally followed by BatchNorm and/or
    Activation, with Dropout before any Dense; convolutions and pooling, then Flatten,
    before them: docs/convolutions.md), ``input_shape`` (one sample's shape, such as
    (channels, height, width); needed when the first layer is not Dense), ``loss``
    ("mse", "binary_crossentropy", "categorical_crossentropy", or "poisson" with an "exp"
    output: half the Poisson deviance of counts), ``dtype`` ("float32" or "float64"), ``seed`` (initial
    weights and the dropout stream; also the default shuffling seed of ``fit``) and
    ``device`` ("cpu", or "cuda" to train and infer on a GPU — or the CUDA simulator —
    with fastnn.kernels.cuda; see fastnn.device).
    """

    def __init__(self, layers, *, input_shape=None, loss="mse", dtype="float32", seed=None,
                 device="cpu"):
        self._setup(layers, input_shape, loss, dtype, seed, device)
        self._init_params()

    @classmethod
    def _restored(cls, layers, input_shape, loss, dtype, seed, device, dropout_key):
        """A model with the given architecture and dropout stream key whose parameters
        are left at zero, for ``fastnn.load`` to fill (fastnn.persistence)."""
        model = cls.__new__(cls)
        model._setup(layers, input_shape, loss, dtype, seed, device, dropout_key)
        return model

    def _setup(self, layers, input_shape, loss, dtype, seed, device, dropout_key=None):
        self.dtype = check_dtype(dtype)
        layers = list(layers) if hasattr(layers, "__iter__") else layers
        self.blocks = blocks_of(layers, input_shape)
        self.layers = layers
        #: one sample's shape: (features,), or (channels, length), (channels, height, width)
        self.input_shape = self.blocks[0].shape_in
        self.loss_name = check_loss(loss, self.blocks[-1].activation, LOSSES)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"seed must be an integer or None, got {type(seed).__name__}")
        self.device = check_device(device, self.blocks)
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
        loss_code = LOSSES[self.loss_name]
        key = np.random.SeedSequence(self.seed, spawn_key=(1,)).generate_state(1, np.uint64)[0] \
            if dropout_key is None else np.uint64(dropout_key)
        specs = [block.spec() for block in blocks]
        self.net, n_params, n_stats = make_network(
            specs, loss_code, contract.is_fused.py_func(specs[-1].act, loss_code), key)
        self.params = aligned_zeros(n_params, self.dtype)
        self.grads = aligned_zeros(n_params, self.dtype)
        self.stats = aligned_zeros(n_stats, self.dtype)
        net = self.net
        for l, block in enumerate(blocks):
            layer, norm = block.layer, block.norm
            if block.kind != "pool":
                shape = getattr(layer, "weight_shape", None)
                for name, flat in (("W", self.params), ("dW", self.grads)):
                    W = contract.weight_view.py_func(flat, net, l)
                    setattr(layer, name, W if shape is None else W.reshape(shape))
                layer.b = contract.bias_view.py_func(self.params, net, l)
                layer.db = contract.bias_view.py_func(self.grads, net, l)
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
        for block in self.weighted_blocks:
            block.layer.W[...] = block.initial_weights(rng)
            block.layer.b[...] = 0
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
        return self.loss_name in _CLASSIFICATION

    @property
    def dense_layers(self):
        """The Dense layers, in order."""
        return [block.layer for block in self.blocks if block.kind == "dense"]

    @property
    def weighted_blocks(self):
        """The blocks with weights (Dense and convolutions), in order."""
        return [block for block in self.blocks if block.kind != "pool"]

    @property
    def has_batchnorm(self):
        return any(block.norm is not None for block in self.blocks)

    def _xy(self, X, y, xname="X", yname="y"):
        X = check_features(X, self.input_shape, self.dtype, xname)
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
        X = check_features(X, self.input_shape, self.dtype)
        out = np.empty((X.shape[0], self.n_outputs), dtype=self.dtype)
        infer(self, X, np.empty((0, self.n_outputs), dtype=self.dtype), out)
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

    def evaluate(self, X, y, sample_weight=None):
        """{"loss": mean loss over the samples (without the penalty) — weighted by
        ``sample_weight``, Σ w L / Σ w, if given —, and "accuracy" (of the samples,
        unweighted) for classifiers}, in inference mode."""
        X, T = self._xy(X, y)
        w = check_sample_weight(sample_weight, X.shape[0])
        return self._metrics(*self._evaluate_sums(X, T, w), X.shape[0],
                             None if w is None else w.sum())

    def _evaluate(self, X, T):
        return self._metrics(*self._evaluate_sums(X, T), X.shape[0])

    def _evaluate_sums(self, X, T, sample_weight=None):
        """(sum over samples of the loss (Σ w L with weights), correct predictions)."""
        return infer(self, X, T, np.empty((0, self.n_outputs), dtype=self.dtype),
                     sample_weight)

    def _metrics(self, total, correct, n, weight=None):
        result = {"loss": total / (n if weight is None else weight)}
        if self.is_classifier:
            result["accuracy"] = correct / self._accuracy_denominator(n)
        return result

    def _accuracy_denominator(self, n):
        return n * self.n_outputs if self.loss_name == "binary_crossentropy" else n

    # ------------------------------------------------------------- gradients
    def penalty(self):
        """The regularization term l1·|W|₁ + l2/2·|W|² summed over the layers with
        weights."""
        return sum(l.l1 * float(np.abs(l.W, dtype=np.float64).sum())
                   + 0.5 * l.l2 * float(np.square(l.W, dtype=np.float64).sum())
                   for l in (block.layer for block in self.weighted_blocks))

    def loss_and_grad(self, X, y, *, step=0, sample_weight=None):
        """The training objective on (X, y) as one minibatch — mean loss plus the penalty —
        and its gradient written into ``grads`` (every layer's dW, db, dgamma, dbeta).
        Training mode: BatchNorm normalizes with the batch's statistics (its running
        statistics are left unchanged) and Dropout drops with the stream of update number
        ``step`` + 1 (``fit`` at step t draws the same mask for the same batch). With
        ``sample_weight``, the weighted mean loss Σ w L / Σ w."""
        return self._full_batch(X, y, _check_step(step), sample_weight)()

    def objective(self, X, y, sample_weight=None):
        """The training objective on all of (X, y) as one minibatch, as a function of the
        parameters, for full-batch optimizers (L-BFGS): ``f(params)`` copies ``params``
        into the model and returns ``loss_and_grad``'s loss and a float64 copy of the
        gradient; ``f.outputs()`` is then the network's outputs (n × n_outputs, the
        probabilities of a classifier), a view valid until the model computes again.
        X and y are checked and converted once; each call is one compiled pass. With
        ``sample_weight`` the loss is the weighted mean Σ w L / Σ w."""
        evaluate = self._full_batch(X, y, 0, sample_weight)

        def f(params):
            np.copyto(self.params, params, casting="same_kind")
            loss = evaluate()
            return loss, self.grads.astype(np.float64)
        f.outputs = evaluate.outputs
        return f

    def _full_batch(self, X, y, step, sample_weight=None):
        """A function evaluating the objective on (X, y) at the current parameters (its
        ``outputs()``: the outputs it left in the workspace, A_L)."""
        X, T = self._xy(X, y)
        w = check_sample_weight(sample_weight, X.shape[0])
        order = None if w is None else np.arange(X.shape[0])
        n, m = X.shape[0], self.n_outputs
        self._check_batch_statistics(n, n, "X")
        net = planned_for(self.net, n)
        start = int(net.a_unit[-1]) * n     # A_L: m × n, column-major

        def evaluate():
            buf = self._buffers(n)
            with one_pool(net, n), announcing():
                loss = contract.batch_loss_and_grad(X, T, net, buf, step, w, order)
            return loss + add_penalty_grad(self.params, self.grads, self.net.seg)
        evaluate.outputs = lambda: self._ws[start:start + m * n].reshape(n, m)
        return evaluate

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
    def fit(self, X, y, *, sample_weight=None, epochs=1, batch_size=32, optimizer=None,
            shuffle=True, validation_data=None, seed=None, verbose=1, callbacks=(),
            early_stopping=None, clip_norm=None, clip_value=None, comm=None):
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
        ``sample_weight`` (n,): each minibatch's loss is the weighted mean of its samples'
        losses, Σ w L / Σ w (scikit-learn's semantics; the epoch's ``loss`` averages the
        minibatches' as without weights); ``validation_data`` may carry the validation
        samples' weights as a third element, making ``val_loss`` weighted (accuracies
        count samples). ``seed`` fixes the shuffling (default: the model's own generator, which
        ``save``/``load`` keep). ``callbacks``: plain callables ``cb(epoch, logs)`` or
        fastnn.Callback objects (ReduceLROnPlateau, Checkpoint), called after each
        epoch; one returning True stops training. ``early_stopping=k`` (needs
        ``validation_data``) stops after k epochs without a lower ``val_loss`` and
        restores the parameters and running statistics of the best epoch
        (``history.best_epoch``); the optimizer keeps its latest state.

        An epoch runs as compiled chunks of about 0.2 s (fastnn.fit_loop), on the CPU and
        on the GPU alike: Ctrl-C stops
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
        options = dict(sample_weight=sample_weight, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                       shuffle=shuffle, validation_data=validation_data, seed=seed,
                       verbose=verbose, callbacks=callbacks, early_stopping=early_stopping,
                       clip_norm=clip_norm, clip_value=clip_value, comm=comm)
        return fit_loop.fit(self, X, y, options)

    def __repr__(self):
        layers = ", ".join(repr(l) for l in self.layers)
        device = "" if self.device == "cpu" else f", device={self.device!r}"
        shape = f"input_shape={self.input_shape!r}, " if len(self.input_shape) > 1 else ""
        return (f"Sequential([{layers}], {shape}loss={self.loss_name!r}, "
                f"dtype={np.dtype(self.dtype).name!r}, seed={self.seed!r}{device})")


def _check_step(step):
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"step must be an integer >= 0, got {step!r}")
    return int(step)
