"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"): the sign of
an interpolation of the momentum and the gradient, with decoupled weight decay λ (weights
only):

    c = β1 m + (1 − β1) g;   w ← (1 − lr λ) w − lr sign(c);   m ← β2 m + (1 − β2) g

Every element moves by ±lr, so Lion wants a rate 3–10× below AdamW's and a weight decay
as many times larger.
"""
from .rule import Rule, fraction, non_negative, sign


def constants(hp, step, lr, decay):
    beta1, beta2, weight_decay = hp[0], hp[1], hp[2]
    return lr, beta1, 1.0 - beta1, beta2, 1.0 - beta2, 1.0 - lr * weight_decay * decay


def update(w, g, m, _, k, c):
    lr, b1, b1c, b2, b2c, shrink = c
    mk = m[k]
    m[k] = b2 * mk + b2c * g
    return shrink * w - lr * sign(b1 * mk + b1c * g)


LION = Rule("lion", "Lion", 1e-4,
            (fraction("beta1", 0.9), fraction("beta2", 0.99), non_negative("weight_decay", 0.0)),
            ("m",), constants, update,
            doc="Lion (Chen et al. 2023): w ← (1 − lr·weight_decay)·w − lr·sign(β1·m + "
                "(1 − β1)·g), then\nm ← β2·m + (1 − β2)·g. Each element moves by ±lr: use a "
                "rate 3–10× below AdamW's.\nThe decay applies to Dense weights only.")
