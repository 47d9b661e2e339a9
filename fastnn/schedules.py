"""Learning-rate schedules: any optimizer's ``lr`` is a number or one of these, indexed
by the update count t (updates already made) and evaluated inside the compiled epoch
(formulas in kernels/_schedules.py). ``schedule(t)`` gives the rate of update t + 1.
"""
import numbers

import numpy as np

from fastnn.kernels import contract as kernels
from fastnn.validation import check_in_range, check_positive_int


def check_lr(value, argument="lr"):
    """A finite learning rate > 0."""
    return check_in_range(value, argument, 0.0, np.inf, low_open=True, high_open=True)


def _check_gamma(gamma):
    return check_in_range(gamma, "gamma", 0.0, 1.0, low_open=True)


class Schedule:
    """Base class: ``code`` and ``constants()`` are what the kernel reads."""

    code = None

    def __init__(self, lr):
        self.lr = check_lr(lr)

    def constants(self):
        """(a, b, c) of the kernel's formula."""
        raise NotImplementedError

    def table(self, scale=1.0):
        """The float64 vector (code, lr, a, b, c, scale) of kernels/_schedules.py."""
        return np.array([self.code, self.lr, *self.constants(), scale], dtype=np.float64)

    def __call__(self, t):
        """The rate of update t + 1 (t updates already made)."""
        if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 0:
            raise ValueError(f"t must be an integer >= 0, got {t!r}")
        return float(kernels.learning_rate(self.table(), int(t)))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._config().items())
        return f"{type(self).__name__}({args})"


class InverseTimeDecay(Schedule):
    """lr / (1 + decay · t): what an optimizer's ``decay`` argument means (0: constant)."""

    code = kernels.INVERSE_TIME

    def __init__(self, lr, decay=0.0):
        super().__init__(lr)
        self.decay = check_in_range(decay, "decay", 0.0, np.inf, high_open=True)

    def constants(self):
        return (self.decay, 0.0, 0.0)

    def _config(self):
        return dict(lr=self.lr, decay=self.decay)


class StepDecay(Schedule):
    """lr · gamma^⌊t / step_size⌋: the rate falls by ``gamma`` every ``step_size`` updates."""

    code = kernels.STEP

    def __init__(self, lr, step_size, gamma=0.1):
        super().__init__(lr)
        self.step_size = check_positive_int(step_size, "step_size")
        self.gamma = _check_gamma(gamma)

    def constants(self):
        return (float(self.step_size), self.gamma, 0.0)

    def _config(self):
        return dict(lr=self.lr, step_size=self.step_size, gamma=self.gamma)


class ExponentialDecay(Schedule):
    """lr · gamma^t: the rate falls by ``gamma`` at every update."""

    code = kernels.EXPONENTIAL

    def __init__(self, lr, gamma):
        super().__init__(lr)
        self.gamma = _check_gamma(gamma)

    def constants(self):
        return (self.gamma, 0.0, 0.0)

    def _config(self):
        return dict(lr=self.lr, gamma=self.gamma)


class CosineDecay(Schedule):
    """Linear warmup from 0 to lr over ``warmup_steps`` updates, then a cosine from lr to
    ``min_lr`` at ``total_steps``, then ``min_lr``:

        lr · t / warmup                                         t < warmup
        min_lr + (lr − min_lr)(1 + cos(π (t − warmup)/(total − warmup)))/2   t < total
        min_lr                                                  t ≥ total
    """

    code = kernels.COSINE

    def __init__(self, lr, total_steps, warmup_steps=0, min_lr=0.0):
        super().__init__(lr)
        self.total_steps = check_positive_int(total_steps, "total_steps")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, numbers.Integral):
            raise TypeError(f"warmup_steps must be an integer, got {type(warmup_steps).__name__}")
        if not 0 <= warmup_steps <= self.total_steps:
            raise ValueError(f"warmup_steps must lie in [0, total_steps={self.total_steps}], "
                             f"got {warmup_steps}")
        self.warmup_steps = int(warmup_steps)
        self.min_lr = check_in_range(min_lr, "min_lr", 0.0, self.lr)

    def constants(self):
        return (float(self.total_steps), float(self.warmup_steps), self.min_lr)

    def _config(self):
        return dict(lr=self.lr, total_steps=self.total_steps, warmup_steps=self.warmup_steps,
                    min_lr=self.min_lr)


SCHEDULES = (InverseTimeDecay, StepDecay, ExponentialDecay, CosineDecay)


def get_schedule(lr, decay=0.0):
    """The Schedule of an optimizer's ``lr`` (a number, with its ``decay``, or a Schedule)."""
    if isinstance(lr, Schedule):
        if check_in_range(decay, "decay", 0.0, np.inf, high_open=True) != 0.0:
            raise ValueError("decay applies to a constant lr; with a schedule as lr, leave "
                             "decay at 0 (use the schedule's own decay)")
        return lr
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        names = ", ".join(c.__name__ for c in SCHEDULES)
        raise TypeError(f"lr must be a number or a schedule ({names}), got "
                        f"{type(lr).__name__}")
    return InverseTimeDecay(lr, decay)
