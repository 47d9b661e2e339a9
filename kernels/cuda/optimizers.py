"""CUDA twins of fastnn.kernels.optimizers: one thread per parameter of the flat
vector; each thread finds its regularization segment in ``bounds``. Hyperparameters
and the step count are host scalars, so an update costs one launch and no transfer."""
import math

import numpy as np

from ..optimizers import ADAGRAD, ADAM, RMSPROP, SGD
from . import config
from .backend import cuda


@cuda.jit(device=True)
def _regularized_grad(k, w, g, bounds, l1, l2):
    s = 0
    while k >= bounds[s + 1]:
        s += 1
    sign = 1.0 if w > 0.0 else (-1.0 if w < 0.0 else 0.0)
    return g + l1[s] * sign + l2[s] * w


@cuda.jit
def _update(code, params, grads, s1, s2, lr_t, a, b, c, c1, c2, bounds, l1, l2):
    k = cuda.grid(1)
    if k < params.shape[0]:
        w = params[k]
        g = _regularized_grad(k, w, grads[k], bounds, l1, l2)
        if code == SGD:        # a = momentum, b = nesterov
            if a != 0.0:
                v = a * s1[k] + g
                s1[k] = v
                g = g + a * v if b != 0.0 else v
            params[k] = w - lr_t * g
        elif code == ADAGRAD:  # a = eps
            cache = s1[k] + g * g
            s1[k] = cache
            params[k] = w - lr_t * g / (math.sqrt(cache) + a)
        elif code == RMSPROP:  # a = rho, b = eps
            cache = a * s1[k] + (1.0 - a) * g * g
            s1[k] = cache
            params[k] = w - lr_t * g / (math.sqrt(cache) + b)
        else:                  # adam: a = beta1, b = beta2, c = eps
            m = a * s1[k] + (1.0 - a) * g
            v = b * s2[k] + (1.0 - b) * g * g
            s1[k] = m
            s2[k] = v
            params[k] = w - lr_t * (m * c1) / (math.sqrt(v * c2) + c)


@cuda.jit
def _penalty(params, grads, bounds, l1, l2, acc):
    k = cuda.grid(1)
    if k < params.shape[0]:
        s = 0
        while k >= bounds[s + 1]:
            s += 1
        w = params[k]
        grads[k] = _regularized_grad(k, w, grads[k], bounds, l1, l2)
        cuda.atomic.add(acc, 0, l1[s] * abs(w) + 0.5 * l2[s] * w * w)


def _launch(code, params, grads, s1, s2, step, lr, decay, a, b, c, bounds, l1, l2):
    lr_t = lr / (1.0 + decay * step)
    c1 = 1.0 / (1.0 - a ** (step + 1)) if code == ADAM else 1.0
    c2 = 1.0 / (1.0 - b ** (step + 1)) if code == ADAM else 1.0
    blocks, threads = config.grid_1d(params.shape[0])
    _update[blocks, threads](code, params, grads, s1, s2, lr_t, a, b, c, c1, c2, bounds, l1, l2)


def sgd_update(params, grads, velocity, step, lr, momentum, nesterov, decay, bounds, l1, l2):
    _launch(SGD, params, grads, velocity, velocity, step, lr, decay, momentum,
            1.0 if nesterov else 0.0, 0.0, bounds, l1, l2)


def adagrad_update(params, grads, cache, step, lr, eps, decay, bounds, l1, l2):
    _launch(ADAGRAD, params, grads, cache, cache, step, lr, decay, eps, 0.0, 0.0, bounds, l1, l2)


def rmsprop_update(params, grads, cache, step, lr, rho, eps, decay, bounds, l1, l2):
    _launch(RMSPROP, params, grads, cache, cache, step, lr, decay, rho, eps, 0.0, bounds, l1, l2)


def adam_update(params, grads, m, v, step, lr, beta1, beta2, eps, decay, bounds, l1, l2):
    _launch(ADAM, params, grads, m, v, step, lr, decay, beta1, beta2, eps, bounds, l1, l2)


def optimizer_update(code, params, grads, state, hp, step, bounds, l1, l2):
    """``hp`` (host array) = (lr, decay, a, b, c) as on the CPU; ``state`` rows on device."""
    lr, decay, a, b, c = (float(x) for x in hp[:5])
    s2 = state[1] if state.shape[0] > 1 else state[0]
    _launch(code, params, grads, state[0], s2, step, lr, decay, a, b, c, bounds, l1, l2)


def add_penalty_grad(params, grads, bounds, l1, l2):
    """grads += l1 sign(w) + l2 w per segment; returns l1|w|_1 + l2/2 |w|^2."""
    acc = cuda.to_device(np.zeros(1))
    blocks, threads = config.grid_1d(params.shape[0])
    _penalty[blocks, threads](params, grads, bounds, l1, l2, acc)
    return float(acc.copy_to_host()[0])
