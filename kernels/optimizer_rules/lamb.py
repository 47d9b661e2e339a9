"""LAMB (You et al. 2019): the Adam direction plus weight decay λ (weights only),

    r = m̂ / (√v̂ + eps) + λ w,   w ← w − lr φ r   per tensor,  φ = ‖w‖ / ‖r‖

(φ = 1 where either norm is 0), with m̂, v̂ Adam's bias-corrected moments.
"""
import math

from .adam import moments
from .rule import Rule, fraction, non_negative, positive


def constants(hp, step, lr, decay):
    beta1, beta2, eps, weight_decay = hp[0], hp[1], hp[2], hp[3]
    t = step + 1
    return (1.0 / (1.0 - beta1 ** t), 1.0 / (1.0 - beta2 ** t), beta1, 1.0 - beta1, beta2,
            1.0 - beta2, eps, weight_decay * decay)


def direction(w, m, v, k, c):
    c1, c2, _, _, _, _, eps, wd = c
    return m[k] * c1 / (math.sqrt(v[k] * c2) + eps) + wd * w


def update(w, g, m, v, k, c):
    c1, c2, b1, b1c, b2, b2c, eps, wd = c
    moments(g, m, v, k, b1, b1c, b2, b2c)
    return direction(w, m, v, k, c)


LAMB = Rule("lamb", "Lamb", 0.001,
            (fraction("beta1", 0.9), fraction("beta2", 0.999), positive("eps", 1e-6),
             non_negative("weight_decay", 0.01)),
            ("m", "v"), constants, update, direction,
            doc="LAMB (You et al. 2019): the Adam direction plus weight decay (Dense weights "
                "only),\nr = m̂/(√v̂ + eps) + weight_decay·w, applied per parameter tensor "
                "with the trust ratio\n‖w‖/‖r‖ (1 where either norm is 0): "
                "w ← w − lr·‖w‖/‖r‖·r.")
