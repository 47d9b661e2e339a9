"""Stochastic gradient descent, optionally with (Nesterov) momentum μ:

    μ = 0      w ← w − lr g
    μ > 0      v ← μ v + g;   w ← w − lr (g + μ v)  (Nesterov)  or  w ← w − lr v
"""
from .rule import Rule, flag, fraction


def constants(hp, step, lr, decay):
    return lr, hp[0], hp[1]


def update(w, g, velocity, _, k, c):
    lr, mu, nesterov = c
    if mu == 0:
        return w - lr * g
    v = mu * velocity[k] + g
    velocity[k] = v
    if nesterov != 0:
        return w - lr * (g + mu * v)
    return w - lr * v


def _check(values):
    if values["nesterov"] and values["momentum"] == 0.0:
        raise ValueError("nesterov=True needs momentum > 0")


SGD = Rule("sgd", "SGD", 0.01, (fraction("momentum", 0.0), flag("nesterov", False)),
           ("velocity",), constants, update, check=_check,
           doc="Stochastic gradient descent, optionally with (Nesterov) momentum.")
