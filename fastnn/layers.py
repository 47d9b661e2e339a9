"""Layer descriptions. They hold no math: a model builds them into its flat vectors,
after which ``W``, ``b``, ``dW`` and ``db`` (and BatchNorm's ``gamma``, ``beta``,
``dgamma``, ``dbeta``) are views into ``model.params`` and ``model.grads``, and
BatchNorm's ``running_mean`` and ``running_var`` views into ``model.stats``.

Convolutions and pooling (``Conv1D``, ``Conv2D``, ``MaxPool1D``, ``MaxPool2D``) take
inputs of PyTorch's shapes, (channels, length) and (channels, height, width) per sample,
and ``Flatten`` turns them into the features of a Dense layer (docs/convolutions.md)."""
import math
import numbers

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


def _pair(value, name, dims, minimum):
    """``value`` (an int, or ``dims`` ints) as a tuple of ``dims`` ints >= ``minimum``."""
    values = (value,) * dims if isinstance(value, numbers.Integral) and \
        not isinstance(value, bool) else value
    if not isinstance(values, (tuple, list)) or len(values) != dims or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in values):
        raise TypeError(f"{name} must be an integer" + (f" or a pair of integers" if dims == 2
                                                       else "") + f", got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return tuple(int(v) for v in values)


def _unpair(values):
    return values[0] if len(set(values)) == 1 else values


class SpatialLayer:
    """What convolutions and pooling share: ``dims`` (1 or 2) spatial dimensions, a
    window, its stride and zero padding, each an int or (for 2-D) a pair."""

    dims = 1

    def _window(self, kernel, stride, padding):
        self.kernel = _pair(kernel, "kernel", self.dims, 1)
        self.stride = _pair(stride, "stride", self.dims, 1)
        self.padding = _pair(padding, "padding", self.dims, 0)

    def channels_out(self, channels, where, shape):
        """The output's channels for an input of ``channels`` (a ValueError naming
        ``where`` when the layer cannot take them)."""
        raise NotImplementedError

    def output_shape(self, shape, where):
        """The (channels, *spatial) shape of the output for an input of ``shape``; a
        ValueError naming ``where`` when the input does not fit."""
        dims = self.dims
        if len(shape) != dims + 1:
            wanted = "(channels, length)" if dims == 1 else "(channels, height, width)"
            raise ValueError(f"{where}: {self!r} takes inputs of shape {wanted}, but its "
                             f"input has shape {tuple(shape)}")
        channels = self.channels_out(shape[0], where, shape)
        out = []
        for size, k, s, p in zip(shape[1:], self.kernel, self.stride, self.padding):
            if size + 2 * p < k:
                raise ValueError(f"{where}: {self!r}'s window {k} is larger than its padded "
                                 f"input ({size} + 2·{p}; input shape {tuple(shape)})")
            out.append((size + 2 * p - k) // s + 1)
        return (channels, *out)

    def geometry(self, shape):
        """The 12 numbers the kernels read (docs/convolutions.md): input and output channels,
        heights and widths, window, strides and padding — a 1-D layer as height 1."""
        out = self.output_shape(shape, "")
        lift = (lambda t, one: (one, *t)) if self.dims == 1 else (lambda t, one: t)
        return (shape[0], *lift(tuple(shape[1:]), 1), out[0], *lift(out[1:], 1),
                *lift(self.kernel, 1), *lift(self.stride, 1), *lift(self.padding, 0))


class Conv1D(SpatialLayer):
    """1-D convolution of (c_in, length) inputs by ``c_out`` filters of width ``kernel``
    (PyTorch's ``Conv1d``, cross-correlation): y[o, x] = f(b[o] + Σ_{c,k} W[o, c, k] ·
    x[c, x·stride + k − padding]), zero padding. ``W`` is (c_out, c_in, kernel), ``b``
    (c_out,); ``l1`` and ``l2`` regularize W as for Dense."""

    kind = "conv"

    def __init__(self, c_in, c_out, kernel, stride=1, padding=0, activation=None, *, l1=0.0,
                 l2=0.0):
        self.c_in = check_positive_int(c_in, "c_in")
        self.c_out = check_positive_int(c_out, "c_out")
        self._window(kernel, stride, padding)
        self.activation = check_activation(activation)
        self.l1 = check_nonnegative_float(l1, "l1")
        self.l2 = check_nonnegative_float(l2, "l2")
        self.W = self.b = self.dW = self.db = None

    def channels_out(self, channels, where, shape):
        if channels != self.c_in:
            raise ValueError(f"{where}: {self!r} takes {self.c_in} channels, but its input "
                             f"has {channels} (shape {tuple(shape)})")
        return self.c_out

    @property
    def weight_shape(self):
        """W's shape: (c_out, c_in, *kernel), as in PyTorch."""
        return (self.c_out, self.c_in, *self.kernel)

    def config(self):
        return dict(c_in=self.c_in, c_out=self.c_out, kernel=_unpair(self.kernel),
                    stride=_unpair(self.stride), padding=_unpair(self.padding),
                    activation=self.activation, l1=self.l1, l2=self.l2)

    def __repr__(self):
        config = self.config()
        extra = "".join(f", {k}={config[k]!r}" for k, default in (
            ("stride", 1), ("padding", 0), ("l1", 0.0), ("l2", 0.0)) if config[k] != default)
        return (f"{type(self).__name__}({self.c_in}, {self.c_out}, {config['kernel']!r}"
                f"{extra}, activation={self.activation!r})")


class Conv2D(Conv1D):
    """2-D convolution of (c_in, height, width) inputs (PyTorch's ``Conv2d``): as Conv1D
    over both spatial dimensions; ``kernel``, ``stride`` and ``padding`` are an int or a
    (height, width) pair. ``W`` is (c_out, c_in, kh, kw)."""

    dims = 2


class MaxPool1D(SpatialLayer):
    """Max-pooling of (channels, length) inputs over windows of ``size`` every ``stride``
    (default ``size``), no padding (PyTorch's ``MaxPool1d``, floor mode); the gradient
    flows to each window's maximum (the first, on ties)."""

    kind = "pool"

    def __init__(self, size, stride=None):
        self._window(size, size if stride is None else stride, 0)

    def channels_out(self, channels, where, shape):
        return channels

    def config(self):
        return dict(size=_unpair(self.kernel), stride=_unpair(self.stride))

    def __repr__(self):
        config = self.config()
        stride = "" if self.stride == self.kernel else f", stride={config['stride']!r}"
        return f"{type(self).__name__}({config['size']!r}{stride})"


class MaxPool2D(MaxPool1D):
    """Max-pooling of (channels, height, width) inputs (PyTorch's ``MaxPool2d``): ``size``
    and ``stride`` an int or a (height, width) pair."""

    dims = 2


class Flatten:
    """The (channels, *spatial) output of a convolution or pooling layer as the flat
    features of the Dense layer after it, in PyTorch's order (channel-major). It costs
    nothing: the model stores every sample's features in that order already."""

    def config(self):
        return {}

    def __repr__(self):
        return "Flatten()"


#: class name -> layer class, for ``load`` (the only classes a model file can name)
LAYERS = {cls.__name__: cls for cls in (Dense, Activation, BatchNorm, Dropout, Conv1D, Conv2D,
                                         MaxPool1D, MaxPool2D, Flatten)}
