"""Layer descriptions. They hold no math: a model builds them into its flat vectors,
after which ``W``, ``b``, ``dW`` and ``db`` are views into ``model.params`` and
``model.grads``."""
import numbers

from fastnn.kernels.activations import ACTIVATIONS


def check_activation(name, argument="activation"):
    """The activation code of ``name`` (None means identity)."""
    if name is None:
        name = "identity"
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a string or None, got {type(name).__name__}")
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown {argument} {name!r}; choose from {sorted(ACTIVATIONS)}")
    return name


def check_positive_int(value, argument):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{argument} must be an integer, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{argument} must be positive, got {value}")
    return int(value)


def check_nonnegative_float(value, argument):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argument} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not value >= 0.0 or value == float("inf"):
        raise ValueError(f"{argument} must be finite and >= 0, got {value}")
    return value


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

    def __repr__(self):
        reg = "".join(f", {k}={v:g}" for k, v in (("l1", self.l1), ("l2", self.l2)) if v)
        return f"Dense({self.n_in}, {self.n_out}, activation={self.activation!r}{reg})"


class Activation:
    """An activation as its own layer; a model folds it into the Dense before it."""

    def __init__(self, name):
        self.activation = check_activation(name, "name")

    def __repr__(self):
        return f"Activation({self.activation!r})"
