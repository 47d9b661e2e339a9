"""Optimizers: one fused pass over the flat parameter vector each.

``params``, ``grads`` and every state vector have the same length. Regularization
is applied per segment of that vector (a layer's W has its own l1, l2; biases have
0, 0): ``bounds[s]:bounds[s+1]`` is segment s. In the same pass that updates,

    g  = grad + l1 sign(w) + l2 w              (penalty l1 |w|_1 + l2/2 |w|^2)
    lr_t = lr / (1 + decay t)                  t = updates already made

    sgd        v = mu v + g;  p -= lr_t (g + mu v) if nesterov else lr_t v
               (mu = 0: p -= lr_t g, v untouched)
    adagrad    G += g^2;              p -= lr_t g / (sqrt(G) + eps)
    rmsprop    E = rho E + (1-rho) g^2;  p -= lr_t g / (sqrt(E) + eps)
    adam       m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
               p -= lr_t (m / (1 - b1^(t+1))) / (sqrt(v / (1 - b2^(t+1))) + eps)

Hyperparameters and the step count are float64/int scalars; arithmetic is done
in float64 and stored in the vectors' dtype.
"""
import math

import numpy as np

from ._jit import kernel

SGD, ADAGRAD, RMSPROP, ADAM = range(4)

#: name -> integer code understood by ``optimizer_update``.
OPTIMIZERS = {"sgd": SGD, "adagrad": ADAGRAD, "rmsprop": RMSPROP, "adam": ADAM}

#: state vectors each optimizer keeps (rows of the ``state`` matrix).
STATE_VECTORS = {SGD: 1, ADAGRAD: 1, RMSPROP: 1, ADAM: 2}


@kernel
def regularized(g, w, l1, l2):
    """g + l1 sign(w) + l2 w."""
    if l1 != 0.0:
        g += l1 * (1.0 if w > 0.0 else (-1.0 if w < 0.0 else 0.0))
    return g + l2 * w


@kernel
def decayed_lr(lr, decay, step):
    """lr / (1 + decay t)."""
    return lr / (1.0 + decay * step)


@kernel
def sgd_update(params, grads, velocity, step, lr, momentum, nesterov, decay, bounds, l1, l2):
    """SGD, with momentum (and Nesterov's variant) when momentum > 0."""
    lr_t = decayed_lr(lr, decay, step)
    for s in range(bounds.shape[0] - 1):
        for k in range(bounds[s], bounds[s + 1]):
            w = np.float64(params[k])
            g = regularized(np.float64(grads[k]), w, l1[s], l2[s])
            if momentum != 0.0:
                v = momentum * velocity[k] + g
                velocity[k] = v
                g = g + momentum * v if nesterov else v
            params[k] = w - lr_t * g


@kernel
def adagrad_update(params, grads, cache, step, lr, eps, decay, bounds, l1, l2):
    """Adagrad: G += g^2; p -= lr_t g / (sqrt(G) + eps)."""
    lr_t = decayed_lr(lr, decay, step)
    for s in range(bounds.shape[0] - 1):
        for k in range(bounds[s], bounds[s + 1]):
            w = np.float64(params[k])
            g = regularized(np.float64(grads[k]), w, l1[s], l2[s])
            c = cache[k] + g * g
            cache[k] = c
            params[k] = w - lr_t * g / (math.sqrt(c) + eps)


@kernel
def rmsprop_update(params, grads, cache, step, lr, rho, eps, decay, bounds, l1, l2):
    """RMSprop: E = rho E + (1 - rho) g^2; p -= lr_t g / (sqrt(E) + eps)."""
    lr_t = decayed_lr(lr, decay, step)
    for s in range(bounds.shape[0] - 1):
        for k in range(bounds[s], bounds[s + 1]):
            w = np.float64(params[k])
            g = regularized(np.float64(grads[k]), w, l1[s], l2[s])
            c = rho * cache[k] + (1.0 - rho) * g * g
            cache[k] = c
            params[k] = w - lr_t * g / (math.sqrt(c) + eps)


@kernel
def adam_update(params, grads, m, v, step, lr, beta1, beta2, eps, decay, bounds, l1, l2):
    """Adam with bias correction, at update number step + 1."""
    lr_t = decayed_lr(lr, decay, step)
    c1 = 1.0 / (1.0 - beta1 ** (step + 1))
    c2 = 1.0 / (1.0 - beta2 ** (step + 1))
    for s in range(bounds.shape[0] - 1):
        for k in range(bounds[s], bounds[s + 1]):
            w = np.float64(params[k])
            g = regularized(np.float64(grads[k]), w, l1[s], l2[s])
            mk = beta1 * m[k] + (1.0 - beta1) * g
            vk = beta2 * v[k] + (1.0 - beta2) * g * g
            m[k] = mk
            v[k] = vk
            params[k] = w - lr_t * (mk * c1) / (math.sqrt(vk * c2) + eps)


@kernel
def optimizer_update(code, params, grads, state, hp, step, bounds, l1, l2):
    """Dispatch on the optimizer code. ``hp`` = (lr, decay, a, b, c): for sgd a =
    momentum, b = nesterov; adagrad a = eps; rmsprop a = rho, b = eps; adam a = beta1,
    b = beta2, c = eps. ``state`` rows are the optimizer's state vectors."""
    lr, decay = hp[0], hp[1]
    if code == SGD:
        sgd_update(params, grads, state[0], step, lr, hp[2], hp[3] != 0.0, decay, bounds, l1, l2)
    elif code == ADAGRAD:
        adagrad_update(params, grads, state[0], step, lr, hp[2], decay, bounds, l1, l2)
    elif code == RMSPROP:
        rmsprop_update(params, grads, state[0], step, lr, hp[2], hp[3], decay, bounds, l1, l2)
    else:
        adam_update(params, grads, state[0], state[1], step, lr, hp[2], hp[3], hp[4], decay,
                    bounds, l1, l2)


@kernel
def add_penalty_grad(params, grads, bounds, l1, l2):
    """grads += l1 sign(w) + l2 w per segment; returns the penalty l1|w|_1 + l2/2 |w|^2."""
    penalty = 0.0
    for s in range(bounds.shape[0] - 1):
        if l1[s] == 0.0 and l2[s] == 0.0:
            continue
        for k in range(bounds[s], bounds[s + 1]):
            w = np.float64(params[k])
            grads[k] = regularized(np.float64(grads[k]), w, l1[s], l2[s])
            penalty += l1[s] * abs(w) + 0.5 * l2[s] * w * w
    return penalty
