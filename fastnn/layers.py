"""Layer descriptions. They hold no math: a model builds them into its flat vectors,
after which ``W``, ``b``, ``dW`` and ``db`` (and BatchNorm's ``gamma``, ``beta``,
``dgamma``, ``dbeta``) are views into ``model.params`` and ``model.grads``, and
BatchNorm's ``running_mean`` and ``running_var`` views into ``model.stats``."""
import math

from fastnn.kernels.contract import ACTIVATIONS
from fastnn.validation import (check_in_range, check_nonnegative_float, check_positive_int,
                               check_real)


def check_activation(name, argument="activation"):
    """The activation code of ``name`` (None means identity)."""
    if name is None:
        name = "identity"
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a string or None, got {type(name).__name__}")
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown {argument} {name!r}; choose from {sorted(ACTIVATIONS)}")
    return name


class Dense:
    """Fully connected layer Y = f(W·X + b), W of shape (n_out, n_in).

    ``l1`` and ``l2`` regularize W (not b): the penalty l1·|W|₁ + l2/2·|W|².
    """

    def __init__(self, n_in, n_out, activation=None, *, l1=0.0, l2=0.0):
        self.n_in = check_positive_int(n_in, "n_in")
        self.n_out = check_positive_int(n_out, "n_out")
        self.activation = check_activation(activation)
        self.l1 = check_nonnegative_float(l1, "l1")
        self.l2 = check_nonnegative_float(l2, "l2")
        self.W = self.b = self.dW = self.db = None

    def config(self):
        """The constructor's arguments (what ``save`` stores)."""
        return dict(n_in=self.n_in, n_out=self.n_out, activation=self.activation, l1=self.l1,
                    l2=self.l2)

    def __repr__(self):
        reg = "".join(f", {k}={v:g}" for k, v in (("l1", self.l1), ("l2", self.l2)) if v)
        return f"Dense({self.n_in}, {self.n_out}, activation={self.activation!r}{reg})"


class Activation:
    """An activation as its own layer; a model folds it into the Dense before it."""

    def __init__(self, name):
        self.activation = check_activation(name, "name")

    def config(self):
        return dict(name=self.activation)

    def __repr__(self):
        return f"Activation({self.activation!r})"


class BatchNorm:
    """Batch normalization of the n features of the Dense layer before it (placed before
    that layer's activation), with PyTorch ``BatchNorm1d`` semantics: training
    normalizes with the minibatch mean and biased variance and updates the running
    statistics as r = (1 − momentum)·r + momentum·stat (unbiased variance); inference
    uses the running statistics. γ (``gamma``, initially 1) and β (``beta``, 0) are
    parameters, never penalized or decayed; the Dense layer's bias is unused (β takes
    its place) and stays 0."""

    def __init__(self, n, momentum=0.1, eps=1e-5):
        self.n = check_positive_int(n, "n")
        self.momentum = check_in_range(momentum, "momentum", 0.0, 1.0, low_open=True)
        self.eps = check_real(eps, "eps")
        if not (math.isfinite(self.eps) and self.eps > 0.0):
            raise ValueError(f"eps must be finite and > 0, got {self.eps}")
        self.gamma = self.beta = self.dgamma = self.dbeta = None
        self.running_mean = self.running_var = None

    def config(self):
        return dict(n=self.n, momentum=self.momentum, eps=self.eps)

    def __repr__(self):
        return f"BatchNorm({self.n}, momentum={self.momentum:g}, eps={self.eps:g})"


class Dropout:
    """Inverted dropout of the layer before (or of the inputs, as the first layer):
    during ``fit``/``train_step`` each value is zeroed with probability ``rate`` and the
    rest scaled by 1/(1 − rate); the identity in predict and evaluate. The mask comes
    from a counter-based stream (model seed, update count, layer, element): a run is
    bitwise reproducible and no mask is stored."""

    def __init__(self, rate):
        self.rate = check_in_range(rate, "rate", 0.0, 1.0, high_open=True)

    def config(self):
        return dict(rate=self.rate)

    def __repr__(self):
        return f"Dropout({self.rate:g})"


#: class name -> layer class, for ``load`` (the only classes a model file can name)
LAYERS = {cls.__name__: cls for cls in (Dense, Activation, BatchNorm, Dropout)}
