"""Adagrad and RMSprop: per-parameter rates from an accumulated square of the gradient,

    G ← ρ G + ρ' g²;   w ← w − lr g / (√G + eps)

with ρ = ρ' = 1 (Adagrad: the sum of squares) or ρ' = 1 − ρ (RMSprop: a moving average).
"""
import math

from .rule import Rule, fraction, positive


def adagrad_constants(hp, step, lr, decay):
    return lr, 1.0, 1.0, hp[0]


def rmsprop_constants(hp, step, lr, decay):
    return lr, hp[0], 1.0 - hp[0], hp[1]


def update(w, g, cache, _, k, c):
    lr, rho, rho1, eps = c
    v = rho * cache[k] + rho1 * g * g
    cache[k] = v
    return w - lr * g / (math.sqrt(v) + eps)


ADAGRAD = Rule("adagrad", "Adagrad", 0.01, (positive("eps", 1e-7),), ("cache",),
               adagrad_constants, update,
               doc="Adagrad: per-parameter rates from the sum of squared gradients.")

RMSPROP = Rule("rmsprop", "RMSprop", 0.001, (fraction("rho", 0.9), positive("eps", 1e-7)),
               ("cache",), rmsprop_constants, update,
               doc="RMSprop: rates from a moving average of squared gradients.")
