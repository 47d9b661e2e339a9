"""Adam (Kingma & Ba 2015) and AdamW (decoupled weight decay λ, Loshchilov & Hutter 2019),
at update number t:

    m ← β1 m + (1 − β1) g;   v ← β2 v + (1 − β2) g²
    w ← (1 − lr λ) w − lr (m / (1 − β1ᵗ)) / (√(v / (1 − β2ᵗ)) + eps)

λ applies to weights only (not biases, not BatchNorm's γ and β); Adam is AdamW with λ = 0.
"""
import math

from .rule import Rule, fraction, non_negative, positive


def constants(hp, step, lr, decay):
    beta1, beta2, eps, weight_decay = hp[0], hp[1], hp[2], hp[3]
    t = step + 1
    return (lr / (1.0 - beta1 ** t), 1.0 / (1.0 - beta2 ** t), beta1, 1.0 - beta1, beta2,
            1.0 - beta2, eps, 1.0 - lr * weight_decay * decay)


def moments(g, m, v, k, b1, b1c, b2, b2c):
    """m[k] ← β1 m[k] + (1 − β1) g;  v[k] ← β2 v[k] + (1 − β2) g²; returns both."""
    mk = b1 * m[k] + b1c * g
    vk = b2 * v[k] + b2c * g * g
    m[k] = mk
    v[k] = vk
    return mk, vk


def update(w, g, m, v, k, c):
    step_size, c2, b1, b1c, b2, b2c, eps, shrink = c
    mk, vk = moments(g, m, v, k, b1, b1c, b2, b2c)
    return shrink * w - step_size * mk / (math.sqrt(vk * c2) + eps)


def _hyperparameters(weight_decay, fixed):
    return (fraction("beta1", 0.9), fraction("beta2", 0.999), positive("eps", 1e-8),
            non_negative("weight_decay", weight_decay, fixed=fixed))


ADAM = Rule("adam", "Adam", 0.001, _hyperparameters(0.0, True), ("m", "v"), constants,
            update, doc="Adam with bias-corrected first and second moments.")

ADAMW = Rule("adamw", "AdamW", 0.001, _hyperparameters(0.01, False), ("m", "v"), constants,
             update,
             doc="Adam with decoupled weight decay (PyTorch ``AdamW``): each update first "
                 "shrinks\nthe weights, w ← (1 − lr·weight_decay)·w, then takes Adam's step. "
                 "The decay applies\nto Dense weights only (not biases, not BatchNorm's γ "
                 "and β).")
