"""Scalar rules written once: each a plain function of scalars (``math`` and NumPy scalar
types only), compiled twice by ``compiled`` — as inlined Numba functions for the CPU
kernels and as device functions for their CUDA twins — so the two cannot drift apart.
A rule that calls another calls the twin compiled for the same target.

Activations (kernels._activations, kernels.cuda._activations): each forward rule a = f(z)
beside its derivative written from the output a (the formulas are in _activations).

Losses (kernels._losses, kernels.cuda._losses): each element's loss term and its
gradient, ``scale`` the factor of the gradient (1/(m n), or 2/(m n) for the squared
error; the cross-entropy's 1/n enters as ``n``), probabilities clipped at ``eps``.

Optimizer rules (kernels.optimizer_rules) are compiled the same way, by
``compile_functions``, by kernels._optimizers and kernels.cuda._optimizers.

The random stream (kernels._random, kernels.cuda._random): SplitMix64 on unsigned 64-bit
integers wrapping modulo 2⁶⁴ (every operand a uint64: a uint64 mixed with a signed
integer would become a float64 in Numba's typing).
"""
import math
import types

import numpy as np

IDENTITY, RELU, SIGMOID, TANH, SOFTPLUS, SOFTMAX, EXP = range(7)


def sigmoid(z):
    """1 / (1 + e^-z), without overflow for either sign of z."""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def tanh(z):
    """tanh z = -u / (u + 2) with u = expm1(-2|z|): no overflow, no cancellation."""
    u = math.expm1(-2.0 * abs(z))
    t = -u / (u + 2.0)
    return t if z >= 0.0 else -t


def softplus(z):
    """log(1 + e^z) = max(z, 0) + log1p(e^-|z|)."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def forward_rule(code, z):
    """a = f(z) for the elementwise activations (float64 scalar)."""
    if code == RELU:
        return max(z, 0.0)
    if code == SIGMOID:
        return sigmoid(z)
    if code == TANH:
        return tanh(z)
    if code == SOFTPLUS:
        return softplus(z)
    if code == EXP:
        return math.exp(z)
    return z


def derivative_rule(code, a):
    """f'(z) written from the output a = f(z) (float64 scalar)."""
    if code == RELU:
        return 1.0 if a > 0.0 else 0.0
    if code == SIGMOID:
        return a * (1.0 - a)
    if code == TANH:
        return 1.0 - a * a
    if code == SOFTPLUS:
        return -math.expm1(-a)
    if code == EXP:
        return a
    return 1.0


ACTIVATION_RULES = (sigmoid, tanh, softplus, forward_rule, derivative_rule)


def squared_error(p, t, scale):
    """(d², scale · d) with d = p - t."""
    d = p - t
    return d * d, scale * d


def binary_crossentropy_term(p, t, eps, scale):
    """(-(t log p + (1 - t) log(1 - p)), scale (p - t) / (p (1 - p))), p clipped to
    [eps, 1 - eps]."""
    p = min(max(p, eps), 1.0 - eps)
    loss = -(t * math.log(p) + (1.0 - t) * math.log(1.0 - p))
    return loss, scale * (p - t) / (p * (1.0 - p))


def categorical_crossentropy_term(p, t, eps, n):
    """(-t log p, -t / (p n)), p clipped below at eps (no logarithm where t = 0)."""
    p = max(p, eps)
    return (-(t * math.log(p)) if t != 0.0 else 0.0), -t / (p * n)


def poisson_mean_term(p, t, eps, scale):
    """From the mean p (clipped below at eps): (p − t log p − (t − t log t), scale (1 − t/p))."""
    p = max(p, eps)
    constant = t * math.log(t) - t if t > 0.0 else 0.0
    return p - t * math.log(p) + constant, scale * (1.0 - t / p)


def poisson_term(z, t, scale):
    """From the log-mean z: (half the Poisson deviance e^z − t z − (t − t log t), the mean
    p = e^z, scale (p − t)); t log t = 0 at t = 0."""
    p = math.exp(z)
    constant = t * math.log(t) - t if t > 0.0 else 0.0
    return p - t * z + constant, p, scale * (p - t)


def sigmoid_crossentropy_term(z, t, scale):
    """From the logit z: (max(z, 0) - t z + log1p(e^-|z|), p = sigmoid(z), scale (p - t))."""
    p = sigmoid(z)
    return max(z, 0.0) - t * z + math.log1p(math.exp(-abs(z))), p, scale * (p - t)


LOSS_RULES = (sigmoid, squared_error, binary_crossentropy_term, categorical_crossentropy_term,
              sigmoid_crossentropy_term, poisson_mean_term, poisson_term)

GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def mix64(z):
    """SplitMix64's finalizer: a bijection of the 64-bit integers that mixes every bit."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def stream(key, step, site):
    """The stream of one (key, step, site): a 64-bit start for ``bits``."""
    return mix64(np.uint64(key) + GAMMA * (mix64(np.uint64(step)) ^ np.uint64(site)))


def bits(start, e):
    """64 random bits for element ``e`` of the stream ``start``."""
    return mix64(np.uint64(start) + GAMMA * (np.uint64(e) + np.uint64(1)))


def drop_threshold(rate):
    """⌊rate · 2⁶⁴⌋: an element is kept when its bits are at least this (0 ≤ rate < 1)."""
    return np.uint64(rate * 18446744073709551616.0)


RANDOM_RULES = (mix64, stream, bits, drop_threshold)


def compile_functions(functions, decorate, bindings=None):
    """{function: compiled copy} of ``functions`` and, transitively, of every plain Python
    function they call by a global name, compiled by ``decorate`` (a decorator: Numba's
    njit, cuda.jit(device=True)). Each copy has its module's globals with those names
    bound to their compiled copies — so a rule's calls reach the same target's twins —
    and with ``bindings`` (name -> object: a target's own primitive) on top."""
    namespaces, twins, pending = {}, {}, list(functions)
    while pending:
        fn = pending.pop()
        if fn in twins:
            continue
        namespace = namespaces.setdefault(id(fn.__globals__), dict(fn.__globals__))
        copy = types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__,
                                  fn.__closure__)
        copy.__qualname__, copy.__doc__ = fn.__qualname__, fn.__doc__
        copy.__module__ = fn.__module__
        twins[fn] = decorate(copy)
        pending += [fn.__globals__[name] for name in fn.__code__.co_names
                    if isinstance(fn.__globals__.get(name), types.FunctionType)]
    for namespace in namespaces.values():
        for name, value in namespace.items():
            if isinstance(value, types.FunctionType) and value in twins:
                namespace[name] = twins[value]
        namespace.update({k: v for k, v in (bindings or {}).items() if k in namespace})
    return twins


def compiled(rules, decorate, bindings=None):
    """The ``rules`` compiled by ``compile_functions``, as a namespace by name."""
    twins = compile_functions(rules, decorate, bindings)
    return types.SimpleNamespace(**{rule.__name__: twins[rule] for rule in rules})
