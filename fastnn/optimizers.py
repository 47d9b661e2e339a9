"""Optimizers as one family over the flat parameter vector (formulas in
fastnn.kernels.optimizers). An optimizer keeps its state vectors and step count
between ``fit`` calls on the same model, so training can be resumed."""
import math
import numbers

import numpy as np

from fastnn.buffers import aligned_zeros
from fastnn.kernels import optimizers as kernels


def _check_rate(value, argument, *, upper=None, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argument} must be a real number, got {type(value).__name__}")
    value = float(value)
    low_ok = value >= 0.0 if allow_zero else value > 0.0
    if not (math.isfinite(value) and low_ok and (upper is None or value < upper)):
        bound = f"in [0, {upper})" if allow_zero and upper else (
            f"in (0, {upper})" if upper else (">= 0" if allow_zero else "> 0"))
        raise ValueError(f"{argument} must be finite and {bound}, got {value}")
    return value


class Optimizer:
    """Base class: ``code`` selects the kernel, ``hyperparameters`` packs its scalars."""

    code = None
    name = None

    def __init__(self, lr, decay):
        self.lr = _check_rate(lr, "lr")
        self.decay = _check_rate(decay, "decay", allow_zero=True)
        self.state = None
        self.steps = 0
        self._owner = None

    def hyperparameters(self):
        """(lr, decay, a, b, c) as the ``optimizer_update`` kernel reads them."""
        raise NotImplementedError

    def bind(self, model):
        """Allocate the state vectors for ``model`` (kept if already bound to it)."""
        n, dtype = model.params.size, model.params.dtype
        if self._owner is not model or self.state is None or self.state.shape[1] != n:
            rows = kernels.STATE_VECTORS[self.code]
            self.state = aligned_zeros((rows, n), dtype)
            self.steps = 0
            self._owner = model
        return self.state

    def reset(self):
        """Forget the state and the step count."""
        self.state, self.steps, self._owner = None, 0, None

    def step(self, model):
        """Apply one update from ``model.grads`` as they are (e.g. after
        ``model.loss_and_grad``, whose gradient already holds the penalty)."""
        state = self.bind(model)
        no_reg = np.zeros(1)
        kernels.optimizer_update(self.code, model.params, model.grads, state,
                                 self.hyperparameters(), self.steps,
                                 np.array([0, model.params.size], dtype=np.int64), no_reg, no_reg)
        self.steps += 1

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""

    code = kernels.SGD

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, decay=0.0):
        super().__init__(lr, decay)
        self.momentum = _check_rate(momentum, "momentum", upper=1.0, allow_zero=True)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be a bool, got {type(nesterov).__name__}")
        if nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)

    def _config(self):
        return dict(lr=self.lr, momentum=self.momentum, nesterov=self.nesterov, decay=self.decay)

    def hyperparameters(self):
        return np.array([self.lr, self.decay, self.momentum, float(self.nesterov), 0.0])


class Adagrad(Optimizer):
    """Adagrad: per-parameter rates from the sum of squared gradients."""

    code = kernels.ADAGRAD

    def __init__(self, lr=0.01, eps=1e-7, decay=0.0):
        super().__init__(lr, decay)
        self.eps = _check_rate(eps, "eps")

    def _config(self):
        return dict(lr=self.lr, eps=self.eps, decay=self.decay)

    def hyperparameters(self):
        return np.array([self.lr, self.decay, self.eps, 0.0, 0.0])


class RMSprop(Optimizer):
    """RMSprop: rates from a moving average of squared gradients."""

    code = kernels.RMSPROP

    def __init__(self, lr=0.001, rho=0.9, eps=1e-7, decay=0.0):
        super().__init__(lr, decay)
        self.rho = _check_rate(rho, "rho", upper=1.0, allow_zero=True)
        self.eps = _check_rate(eps, "eps")

    def _config(self):
        return dict(lr=self.lr, rho=self.rho, eps=self.eps, decay=self.decay)

    def hyperparameters(self):
        return np.array([self.lr, self.decay, self.rho, self.eps, 0.0])


class Adam(Optimizer):
    """Adam with bias-corrected first and second moments."""

    code = kernels.ADAM

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, decay=0.0):
        super().__init__(lr, decay)
        self.beta1 = _check_rate(beta1, "beta1", upper=1.0, allow_zero=True)
        self.beta2 = _check_rate(beta2, "beta2", upper=1.0, allow_zero=True)
        self.eps = _check_rate(eps, "eps")

    def _config(self):
        return dict(lr=self.lr, beta1=self.beta1, beta2=self.beta2, eps=self.eps,
                    decay=self.decay)

    def hyperparameters(self):
        return np.array([self.lr, self.decay, self.beta1, self.beta2, self.eps])


#: name -> class, for ``fit(optimizer="adam")`` and the CLI.
OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam}


def get_optimizer(optimizer):
    """An Optimizer from an instance or a name (with default hyperparameters)."""
    if optimizer is None:
        return Adam()
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        if optimizer.lower() not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; choose from {sorted(OPTIMIZERS)}")
        return OPTIMIZERS[optimizer.lower()]()
    raise TypeError(f"optimizer must be an Optimizer or a name, got {type(optimizer).__name__}")
