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

Hyperparameters and the step count are float64/int scalars; the per-element
arithmetic runs in the vectors' dtype (as PyTorch's fused Adam does), so float32
loops vectorize 8 lanes wide.
"""
import numpy as np

from ._jit import kernel

SGD, ADAGRAD, RMSPROP, ADAM = range(4)

#: name -> integer code understood by ``optimizer_update``.
OPTIMIZERS = {"sgd": SGD, "adagrad": ADAGRAD, "rmsprop": RMSPROP, "adam": ADAM}

#: state vectors each optimizer keeps (rows of the ``state`` matrix).
STATE_VECTORS = {SGD: 1, ADAGRAD: 1, RMSPROP: 1, ADAM: 2}


@kernel(inline="always")
def regularized(g, w, l1, l2):
    """g + l1 sign(w) + l2 w (all of w's dtype; branch-free so loops vectorize)."""
    return g + l2 * w + l1 * np.sign(w)


@kernel(inline="always")
def decayed_lr(lr, decay, step):
    """lr / (1 + decay t)."""
    return lr / (1.0 + decay * step)


# Each update loops over segments and hands each one, as slices, to a loop that
# starts at index 0: LLVM then knows no index is negative and vectorizes it.

@kernel
def _sgd_segment(p, g, velocity, lr_t, mu, nesterov, a1, a2):
    if mu == 0:
        for k in range(p.shape[0]):
            p[k] = p[k] - lr_t * regularized(g[k], p[k], a1, a2)
    elif nesterov:
        for k in range(p.shape[0]):
            gk = regularized(g[k], p[k], a1, a2)
            v = mu * velocity[k] + gk
            velocity[k] = v
            p[k] = p[k] - lr_t * (gk + mu * v)
    else:
        for k in range(p.shape[0]):
            v = mu * velocity[k] + regularized(g[k], p[k], a1, a2)
            velocity[k] = v
            p[k] = p[k] - lr_t * v


@kernel
def sgd_update(params, grads, velocity, step, lr, momentum, nesterov, decay, bounds, l1, l2):
    """SGD, with momentum (and Nesterov's variant) when momentum > 0."""
    cast = params.dtype.type
    lr_t, mu = cast(decayed_lr(lr, decay, step)), cast(momentum)
    for s in range(bounds.shape[0] - 1):
        lo, hi = bounds[s], bounds[s + 1]
        _sgd_segment(params[lo:hi], grads[lo:hi], velocity[lo:hi], lr_t, mu, nesterov,
                     cast(l1[s]), cast(l2[s]))


@kernel
def _scaled_segment(p, g, cache, lr_t, r, r1, e, a1, a2):
    """cache = r cache + r1 g^2; p -= lr_t g / (sqrt(cache) + e)."""
    for k in range(p.shape[0]):
        gk = regularized(g[k], p[k], a1, a2)
        c = r * cache[k] + r1 * gk * gk
        cache[k] = c
        p[k] = p[k] - lr_t * gk / (np.sqrt(c) + e)


@kernel
def adagrad_update(params, grads, cache, step, lr, eps, decay, bounds, l1, l2):
    """Adagrad: G += g^2; p -= lr_t g / (sqrt(G) + eps)."""
    cast = params.dtype.type
    lr_t, one, e = cast(decayed_lr(lr, decay, step)), cast(1.0), cast(eps)
    for s in range(bounds.shape[0] - 1):
        lo, hi = bounds[s], bounds[s + 1]
        _scaled_segment(params[lo:hi], grads[lo:hi], cache[lo:hi], lr_t, one, one, e,
                        cast(l1[s]), cast(l2[s]))


@kernel
def rmsprop_update(params, grads, cache, step, lr, rho, eps, decay, bounds, l1, l2):
    """RMSprop: E = rho E + (1 - rho) g^2; p -= lr_t g / (sqrt(E) + eps)."""
    cast = params.dtype.type
    lr_t, r, r1, e = cast(decayed_lr(lr, decay, step)), cast(rho), cast(1.0 - rho), cast(eps)
    for s in range(bounds.shape[0] - 1):
        lo, hi = bounds[s], bounds[s + 1]
        _scaled_segment(params[lo:hi], grads[lo:hi], cache[lo:hi], lr_t, r, r1, e,
                        cast(l1[s]), cast(l2[s]))


@kernel
def _adam_segment(p, g, m, v, step_size, c2, b1, b1c, b2, b2c, e, a1, a2):
    for k in range(p.shape[0]):
        gk = regularized(g[k], p[k], a1, a2)
        mk = b1 * m[k] + b1c * gk
        vk = b2 * v[k] + b2c * gk * gk
        m[k] = mk
        v[k] = vk
        p[k] = p[k] - step_size * mk / (np.sqrt(vk * c2) + e)


@kernel
def adam_update(params, grads, m, v, step, lr, beta1, beta2, eps, decay, bounds, l1, l2):
    """Adam with bias correction, at update number step + 1."""
    cast = params.dtype.type
    step_size = cast(decayed_lr(lr, decay, step) / (1.0 - beta1 ** (step + 1)))
    c2 = cast(1.0 / (1.0 - beta2 ** (step + 1)))
    b1, b1c, b2, b2c, e = cast(beta1), cast(1.0 - beta1), cast(beta2), cast(1.0 - beta2), cast(eps)
    for s in range(bounds.shape[0] - 1):
        lo, hi = bounds[s], bounds[s + 1]
        _adam_segment(params[lo:hi], grads[lo:hi], m[lo:hi], v[lo:hi], step_size, c2, b1, b1c,
                      b2, b2c, e, cast(l1[s]), cast(l2[s]))


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
def _penalty_segment(p, g, a1, a2):
    penalty = 0.0
    for k in range(p.shape[0]):
        w = p[k]
        g[k] = regularized(g[k], w, a1, a2)
        penalty += np.float64(a1) * abs(w) + 0.5 * np.float64(a2) * w * w
    return penalty


@kernel
def add_penalty_grad(params, grads, bounds, l1, l2):
    """grads += l1 sign(w) + l2 w per segment; returns the penalty l1|w|_1 + l2/2 |w|^2."""
    cast = params.dtype.type
    penalty = 0.0
    for s in range(bounds.shape[0] - 1):
        if l1[s] != 0.0 or l2[s] != 0.0:
            lo, hi = bounds[s], bounds[s + 1]
            penalty += _penalty_segment(params[lo:hi], grads[lo:hi], cast(l1[s]), cast(l2[s]))
    return penalty
