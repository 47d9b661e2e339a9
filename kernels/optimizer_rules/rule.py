"""What an optimizer rule is: one record of plain scalar functions, compiled for the CPU
passes (kernels._optimizers) and the CUDA kernels (kernels.cuda._optimizers) alike.

A ``Rule`` holds:

    name, title       "adamw", "AdamW" (``fit(optimizer="adamw")``, the Python class)
    lr                the default learning rate
    hyperparameters   ``Hyperparameter`` records, in the order of ``Update.hp``; a *fixed*
                      one keeps its default and is no argument of the class
    state             names of the state vectors (the rows of the optimizer's state)
    constants(hp, step, lr, decay)
                      the per-tensor scalars of update number step + 1 at rate ``lr``, as
                      a tuple; ``decay`` is 1 on tensors decoupled weight decay applies to
                      (weights), 0 elsewhere
    update(w, g, s0, s1, k, c)
                      element k: updates the state (s0[k], s1[k]: one-state rules get the
                      same vector twice) from the prepared gradient g, and returns the new
                      weight — or, for a *layerwise* rule, its direction r
    direction(w, s0, s1, k, c)
                      layerwise rules only: r again, from the updated state; the pass then
                      moves each tensor by w ← w − lr·φ·r with the trust ratio
                      φ = ‖w‖/‖r‖ (1 where either norm is 0)
    check(values)     optional: raises ValueError for hyperparameters that do not go together
    doc               the class's docstring: the formula

The scalar functions use ``math`` and the ``sign`` below only (each target binds its own
``sign``; NumPy's ufuncs do not compile for CUDA). The CPU evaluates them with every constant
cast to the vectors' dtype (so float32 loops vectorize), CUDA in float64.
"""
import math
from collections import namedtuple

import numpy as np

#: sign(x): −1, 0 or 1 in x's type (NumPy's on the CPU; kernels.cuda binds its own)
sign = np.sign

Rule = namedtuple("Rule", "name title lr hyperparameters state constants update direction "
                          "check doc", defaults=(None, None, ""))

#: a hyperparameter: its name, default, the interval [low, high] it lies in (each end open
#: or closed), whether it is a flag (a bool) and whether it is fixed at its default
Hyperparameter = namedtuple("Hyperparameter", "name default low high low_open high_open flag "
                                              "fixed", defaults=(False, False))


def fraction(name, default):
    """A hyperparameter in [0, 1): momentum, a moving average's weight."""
    return Hyperparameter(name, default, 0.0, 1.0, False, True)


def positive(name, default):
    """A hyperparameter in (0, ∞): eps."""
    return Hyperparameter(name, default, 0.0, math.inf, True, True)


def non_negative(name, default, fixed=False):
    """A hyperparameter in [0, ∞): a weight decay."""
    return Hyperparameter(name, default, 0.0, math.inf, False, True, fixed=fixed)


def flag(name, default):
    """A bool hyperparameter (1.0 or 0.0 in ``Update.hp``)."""
    return Hyperparameter(name, default, 0.0, 1.0, False, False, flag=True)


def regularized(g, w, l1, l2):
    """g + l1 sign(w) + l2 w: the gradient with the L1/L2 penalty's."""
    return g + l2 * w + l1 * sign(w)


def prepared(g, w, l1, l2, clip_value, scale):
    """scale · clamp(g + l1 sign(w) + l2 w, −clip_value, clip_value): the gradient every
    rule's update receives."""
    return scale * min(max(regularized(g, w, l1, l2), -clip_value), clip_value)
