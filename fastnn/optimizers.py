"""Optimizers as one family over the flat parameter vector (formulas in
the rules of kernels/_optimizers.py). An optimizer keeps its state vectors and step count
between ``fit`` calls on the same model, so training can be resumed. Its ``lr`` is a
number or a schedule (fastnn.schedules), evaluated from the step count inside the
compiled epoch; ``lr_scale`` (1 unless ReduceLROnPlateau lowered it) multiplies it."""
import numpy as np

from fastnn.buffers import aligned_zeros
from fastnn.kernels import contract as kernels
from fastnn.kernels.contract import without_penalty
from fastnn.validation import check_in_range
from fastnn.schedules import InverseTimeDecay, get_schedule


def _check_rate(value, argument, *, upper=None, allow_zero=False):
    """A finite value > 0 (>= 0 with allow_zero), below ``upper`` when given."""
    return check_in_range(value, argument, 0.0, np.inf if upper is None else upper,
                          low_open=not allow_zero, high_open=True)


def check_clip(clip_norm, clip_value):
    """(max_norm, max_value) for the kernels: each a number > 0, or None for none (∞)."""
    values = []
    for value, name in ((clip_norm, "clip_norm"), (clip_value, "clip_value")):
        values.append(kernels.NO_CLIP if value is None else _check_rate(value, name))
    return np.array(values, dtype=np.float64)


class Optimizer:
    """Base class: ``code`` selects the kernel, ``hyperparameters`` packs its scalars."""

    code = None

    def __init__(self, lr, decay):
        self.schedule = get_schedule(lr, decay)
        self.lr_scale = 1.0
        self.state = None
        self.steps = 0
        self._owner = None

    @property
    def lr(self):
        """The base learning rate (a schedule's starting rate)."""
        return self.schedule.lr

    @property
    def decay(self):
        return self.schedule.decay if isinstance(self.schedule, InverseTimeDecay) else 0.0

    def hyperparameters(self):
        """(a, b, c, weight decay) as ``Update.hp`` reads them."""
        raise NotImplementedError

    def update_rule(self, clip=None, parallel=False):
        """The ``Update`` the kernels apply: code, hyperparameters, schedule and clipping
        (``clip`` from ``check_clip``; none by default); ``parallel``: for a network with
        a parallel plan (``net.plan.parallel``), large segments across threads."""
        if clip is None:
            clip = check_clip(None, None)
        return kernels.make_update(self.code, self.hyperparameters(),
                                   self.schedule.table(self.lr_scale), clip, parallel)

    def refresh(self, rule):
        """``rule`` (from ``update_rule``) with the schedule's scale brought up to date in
        place (a callback may have changed ``lr_scale`` between epochs)."""
        rule.schedule[-1] = self.lr_scale
        return rule

    def current_lr(self):
        """The rate in force for the next update (schedule and lr_scale applied)."""
        return self.schedule(self.steps) * self.lr_scale

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
        """Forget the state, the step count and any lr_scale."""
        self.state, self.steps, self._owner, self.lr_scale = None, 0, None, 1.0

    def step(self, model, clip_norm=None, clip_value=None):
        """Apply one update from ``model.grads`` as they are (e.g. after
        ``model.loss_and_grad``, whose gradient already holds the penalty), clipped by
        ``clip_norm`` and ``clip_value`` as ``fit`` clips."""
        clip = check_clip(clip_norm, clip_value)
        state = self.bind(model)
        kernels.optimizer_update(self.update_rule(clip, model.net.plan.parallel),
                                 without_penalty(model.net.seg),
                                 model.params, model.grads, state, self.steps)
        self.steps += 1

    def _config(self):
        config = {"lr": self.schedule if not isinstance(self.schedule, InverseTimeDecay)
                  else self.lr}
        config.update(self._hyper_config())
        if self.decay:
            config["decay"] = self.decay
        return config

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

    def _hyper_config(self):
        return dict(momentum=self.momentum, nesterov=self.nesterov)

    def hyperparameters(self):
        return np.array([self.momentum, float(self.nesterov), 0.0, 0.0])


class Adagrad(Optimizer):
    """Adagrad: per-parameter rates from the sum of squared gradients."""

    code = kernels.ADAGRAD

    def __init__(self, lr=0.01, eps=1e-7, decay=0.0):
        super().__init__(lr, decay)
        self.eps = _check_rate(eps, "eps")

    def _hyper_config(self):
        return dict(eps=self.eps)

    def hyperparameters(self):
        return np.array([self.eps, 0.0, 0.0, 0.0])


class RMSprop(Optimizer):
    """RMSprop: rates from a moving average of squared gradients."""

    code = kernels.RMSPROP

    def __init__(self, lr=0.001, rho=0.9, eps=1e-7, decay=0.0):
        super().__init__(lr, decay)
        self.rho = _check_rate(rho, "rho", upper=1.0, allow_zero=True)
        self.eps = _check_rate(eps, "eps")

    def _hyper_config(self):
        return dict(rho=self.rho, eps=self.eps)

    def hyperparameters(self):
        return np.array([self.rho, self.eps, 0.0, 0.0])


class Adam(Optimizer):
    """Adam with bias-corrected first and second moments."""

    code = kernels.ADAM

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, decay=0.0):
        super().__init__(lr, decay)
        self.beta1 = _check_rate(beta1, "beta1", upper=1.0, allow_zero=True)
        self.beta2 = _check_rate(beta2, "beta2", upper=1.0, allow_zero=True)
        self.eps = _check_rate(eps, "eps")
        self.weight_decay = 0.0

    def _hyper_config(self):
        config = dict(beta1=self.beta1, beta2=self.beta2, eps=self.eps)
        if self.code != kernels.ADAM:
            config["weight_decay"] = self.weight_decay
        return config

    def hyperparameters(self):
        return np.array([self.beta1, self.beta2, self.eps, self.weight_decay])


class AdamW(Adam):
    """Adam with decoupled weight decay (PyTorch ``AdamW``): each update first shrinks
    the weights, w ← (1 − lr·weight_decay)·w, then takes Adam's step. The decay applies
    to Dense weights only (not biases, not BatchNorm's γ and β)."""

    code = kernels.ADAMW

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01,
                 decay=0.0):
        super().__init__(lr, beta1, beta2, eps, decay)
        self.weight_decay = _check_rate(weight_decay, "weight_decay", allow_zero=True)


class Lamb(Adam):
    """LAMB (You et al. 2019): the Adam direction plus weight decay (Dense weights only),
    r = m̂/(√v̂ + eps) + weight_decay·w, applied per parameter tensor with the trust ratio
    ‖w‖/‖r‖ (1 where either norm is 0): w ← w − lr·‖w‖/‖r‖·r."""

    code = kernels.LAMB

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.01,
                 decay=0.0):
        super().__init__(lr, beta1, beta2, eps, decay)
        self.weight_decay = _check_rate(weight_decay, "weight_decay", allow_zero=True)


#: name -> class, for ``fit(optimizer="adam")`` and the CLI.
OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW,
              "lamb": Lamb}


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
