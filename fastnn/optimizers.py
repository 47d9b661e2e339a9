"""Optimizers as one family over the flat parameter vector: a class per rule of the
kernels' registry (``fastnn.kernels.optimizer_rules``, where each rule's formula is), made
from its entry — its hyperparameters are the constructor's arguments, checked against
their ranges. An optimizer keeps its state vectors and step count between ``fit`` calls
on the same model, so training can be resumed. Its ``lr`` is a number or a schedule
(fastnn.schedules), evaluated from the step count inside the compiled epoch; ``lr_scale``
(1 unless ReduceLROnPlateau lowered it) multiplies it."""
import inspect

import numpy as np

from fastnn.buffers import aligned_zeros
from fastnn.kernels import contract as kernels
from fastnn.kernels.contract import OPTIMIZER_RULES, without_penalty
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


def _checked(spec, value):
    """``value`` of hyperparameter ``spec`` (a registry ``Hyperparameter``), checked."""
    if spec.flag:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{spec.name} must be a bool, got {type(value).__name__}")
        return bool(value)
    return check_in_range(value, spec.name, spec.low, spec.high, low_open=spec.low_open,
                          high_open=spec.high_open)


class Optimizer:
    """Base class: ``code`` is the rule's place in the registry, ``rule`` its entry; the
    hyperparameters are attributes of their own names."""

    code = None
    rule = None

    def __init__(self, *args, **kwargs):
        bound = self.__signature__.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        for spec in self.rule.hyperparameters:
            setattr(self, spec.name,
                    spec.default if spec.fixed else _checked(spec, values[spec.name]))
        if self.rule.check is not None:
            self.rule.check(self._hyper_config())
        self.schedule = get_schedule(values.pop("lr"), values.pop("decay"))
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

    def _hyper_config(self):
        """The hyperparameters the constructor takes, by name."""
        return {spec.name: getattr(self, spec.name) for spec in self.rule.hyperparameters
                if not spec.fixed}

    def hyperparameters(self):
        """The float64 ``Update.hp`` of the rule: every hyperparameter in its order."""
        return np.array([float(getattr(self, spec.name)) for spec in self.rule.hyperparameters])

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


def _optimizer_class(code, rule):
    """The Optimizer subclass of registry entry ``rule``: its constructor takes lr (the
    rule's default), the hyperparameters that are not fixed (their defaults) and decay."""
    parameters = [inspect.Parameter("lr", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    default=rule.lr)]
    parameters += [inspect.Parameter(spec.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                     default=spec.default)
                   for spec in rule.hyperparameters if not spec.fixed]
    parameters.append(inspect.Parameter("decay", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                        default=0.0))
    return type(rule.title, (Optimizer,), {
        "__doc__": rule.doc, "__module__": __name__, "__qualname__": rule.title,
        "code": code, "rule": rule, "__signature__": inspect.Signature(parameters)})


#: name -> class, for ``fit(optimizer="adam")`` and the CLI: one per registry entry
OPTIMIZERS = {rule.name: _optimizer_class(code, rule) for code, rule in enumerate(OPTIMIZER_RULES)}
globals().update({cls.__name__: cls for cls in OPTIMIZERS.values()})


def get_optimizer(optimizer):
    """An Optimizer from an instance or a name (with default hyperparameters)."""
    if optimizer is None:
        return OPTIMIZERS["adam"]()
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        if optimizer.lower() not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; choose from {sorted(OPTIMIZERS)}")
        return OPTIMIZERS[optimizer.lower()]()
    raise TypeError(f"optimizer must be an Optimizer or a name, got {type(optimizer).__name__}")
