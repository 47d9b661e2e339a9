"""CUDA twins of fastnn.kernels._optimizers (same names, argument order and formulas), made
from the same registry (kernels.optimizer_rules): each rule's scalar functions compiled
as device functions.

One thread per element of the flat vector; each thread finds its segment in
``seg.bounds``. An update reads everything it needs from the device: the learning
rate from the schedule array and the step (kernels.cuda._schedules.learning_rate,
evaluated by each thread), and the global-norm clip factor from a float64 scratch
vector that a reduction kernel filled just before (atomic adds), so a step of
``optimizer_update`` makes no host transfer and waits on nothing:

    scratch[0]               ‖clamp(grad + penalty gradient)‖²  (global-norm clipping)
    scratch[1 + 2s, 2 + 2s]  ‖p_s‖², ‖r_s‖² of segment s    (a layerwise rule's trust ratios)

``seg`` is a ``Segments`` of device arrays (host arrays are copied over); in
``optimizer_update`` the ``Update``'s ``schedule`` may be a device array too (the
training loop copies it once per epoch), its ``hp`` and ``clip`` are host scalars,
passed by value. Each thread evaluates its tensor's rule constants and its element in
float64 (the CPU runs them in the vectors' dtype), so float32 results agree with the CPU
to rounding.
"""
import functools
import math

import numpy as np

from .._jit import specialized
from .._layout import Segments
from .._optimizers import ADAGRAD, ADAM, KERNEL_OF, LAMB, RMSPROP, SGD
from .._rules import compile_functions
from .._schedules import INVERSE_TIME, SCHEDULE_SIZE
from ..optimizer_rules import RULES
from ..optimizer_rules.rule import prepared as _prepared, regularized as _regularized
from . import _config as config
from ._activations import fill
from ._backend import cuda
from ._schedules import learning_rate

#: scratch index of the squared global norm; a layerwise rule's per-segment sums follow it
NORM = 0
TRUST_SUMS = 1


def scratch_size(seg):
    """Length of the float64 scratch vector of an update over the segments ``seg``."""
    return TRUST_SUMS + 2 * (seg.bounds.shape[0] - 1)


@cuda.jit(device=True)
def _sign(x):
    """−1, 0 or 1 (NumPy's sign does not compile for the device)."""
    return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)


#: every rule's scalar functions (kernels.optimizer_rules), as device functions
_twins = compile_functions([f for rule in RULES for f in (rule.constants, rule.update,
                                                         rule.direction) if f is not None]
                           + [_prepared, _regularized], cuda.jit(device=True), {"sign": _sign})
prepared, regularized = _twins[_prepared], _twins[_regularized]


@cuda.jit(device=True)
def _segment(k, bounds):
    s = 0
    while k >= bounds[s + 1]:
        s += 1
    return s


@cuda.jit(device=True)
def _grad_scale(grad_scale, norm_clip, max_norm, scratch):
    """grad_scale, times min(1, max_norm / (‖g‖ + 1e-6)) when clipping by the norm."""
    if norm_clip:
        return grad_scale * min(1.0, max_norm / (math.sqrt(scratch[NORM]) + 1e-6))
    return grad_scale


@cuda.jit
def _fixed_schedule(schedule, lr):
    """schedule = (inverse time, lr, 0, 0, 0, 1): the constant rate lr."""
    if cuda.grid(1) == 0:
        for q in range(schedule.shape[0]):
            schedule[q] = 0.0
        schedule[0] = INVERSE_TIME
        schedule[1] = lr
        schedule[5] = 1.0


@cuda.jit
def _squares(params, grads, bounds, l1, l2, clip_value, scratch):
    k = cuda.grid(1)
    if k < params.shape[0]:
        s = _segment(k, bounds)
        x = prepared(grads[k], params[k], l1[s], l2[s], clip_value, 1.0)
        cuda.atomic.add(scratch, NORM, x * x)


# Each rule's kernels are copies of the templates below with its functions as the
# constants CONSTANTS, UPDATE and DIRECTION, and LAYERWISE whether it has a direction.

def _update(params, grads, s1, s2, schedule, step, hp, bounds, l1, l2, decay, grad_scale,
            norm_clip, max_norm, clip_value, scratch):
    """One element: p[k] ← update(p[k], g, s1, s2, k, constants of its segment); for a
    layerwise rule, the state updated and ‖p_s‖², ‖r_s‖² summed into the scratch instead
    (``_layerwise_step`` then moves p)."""
    k = cuda.grid(1)
    if k < params.shape[0]:
        s = _segment(k, bounds)
        w = params[k]
        lr = learning_rate(schedule, step)
        g = prepared(grads[k], w, l1[s], l2[s], clip_value,
                     _grad_scale(grad_scale, norm_clip, max_norm, scratch))
        out = UPDATE(w, g, s1, s2, k, CONSTANTS(hp, step, lr, decay[s]))  # noqa: F821
        if LAYERWISE:  # noqa: F821
            cuda.atomic.add(scratch, TRUST_SUMS + 2 * s, w * w)
            cuda.atomic.add(scratch, TRUST_SUMS + 2 * s + 1, out * out)
        else:
            params[k] = out


def _layerwise_step(params, s1, s2, schedule, step, hp, bounds, decay, scratch):
    """p -= lr φ_s r with the trust ratio φ_s = ‖p_s‖/‖r_s‖ (1 where either is 0)."""
    k = cuda.grid(1)
    if k < params.shape[0]:
        s = _segment(k, bounds)
        wn = scratch[TRUST_SUMS + 2 * s]
        rn = scratch[TRUST_SUMS + 2 * s + 1]
        trust = math.sqrt(wn) / math.sqrt(rn) if wn > 0.0 and rn > 0.0 else 1.0
        w = params[k]
        lr = learning_rate(schedule, step)
        r = DIRECTION(w, s1, s2, k, CONSTANTS(hp, step, lr, decay[s]))  # noqa: F821
        params[k] = w - lr * trust * r


@functools.lru_cache(maxsize=None)
def _kernels(code):
    """(update kernel, step kernel or None) of the rule of ``code``."""
    rule = RULES[KERNEL_OF[code]]
    layerwise = rule.direction is not None
    names = dict(CONSTANTS=_twins[rule.constants], UPDATE=_twins[rule.update],
                 DIRECTION=_twins[rule.direction] if layerwise else None, LAYERWISE=layerwise)
    update = cuda.jit(specialized(_update, f"{rule.name}_kernel", **names))
    if not layerwise:
        return update, None
    return update, cuda.jit(specialized(_layerwise_step, f"{rule.name}_step_kernel", **names))


@cuda.jit
def _penalty(params, grads, bounds, l1, l2, acc):
    k = cuda.grid(1)
    if k < params.shape[0]:
        s = _segment(k, bounds)
        w = params[k]
        grads[k] = regularized(grads[k], w, l1[s], l2[s])
        cuda.atomic.add(acc, 0, l1[s] * abs(w) + 0.5 * l2[s] * w * w)


# ----------------------------------------------------------------- host side

def on_device(array):
    """A device array: ``array`` itself, or a copy of a host array."""
    return cuda.to_device(np.ascontiguousarray(array)) if isinstance(array, np.ndarray) \
        else array


def device_segments(seg):
    """``seg`` with its arrays on the device (kept where they already are there; host
    coefficients go over in one copy)."""
    if all(isinstance(a, np.ndarray) for a in seg[1:]):
        coefficients = cuda.to_device(np.array(seg[1:], dtype=np.float64))
        return Segments(on_device(seg.bounds), coefficients[0], coefficients[1],
                        coefficients[2])
    return Segments(*(on_device(a) for a in seg))


def _accumulate_norm(params, grads, seg, clip_value, scratch):
    """scratch[NORM] = ‖clamp(grads + penalty gradient, ±clip_value)‖² (on the device;
    the rest of the scratch is zeroed too)."""
    fill(scratch, 0.0)
    blocks, threads = config.grid_1d(params.shape[0])
    _squares[blocks, threads](params, grads, seg.bounds, seg.l1, seg.l2, float(clip_value),
                              scratch)


def _launch(code, params, grads, s1, s2, schedule, step, hp, seg, grad_scale, max_norm,
            clip_value, scratch):
    """The update kernel(s) of one step of rule ``code`` (hyperparameters ``hp``, host
    floats), everything else read on the device."""
    seg = device_segments(seg)
    if scratch is None:
        scratch = cuda.device_array(scratch_size(seg), dtype=np.float64)
    update, layerwise_step = _kernels(code)
    norm_clip = math.isfinite(max_norm)
    if norm_clip:
        _accumulate_norm(params, grads, seg, clip_value, scratch)
    elif layerwise_step is not None:
        fill(scratch, 0.0)
    hp, step = tuple(float(x) for x in hp), np.int64(step)
    blocks, threads = config.grid_1d(params.shape[0])
    update[blocks, threads](params, grads, s1, s2, schedule, step, hp, seg.bounds, seg.l1,
                            seg.l2, seg.decay, float(grad_scale), norm_clip, float(max_norm),
                            float(clip_value), scratch)
    if layerwise_step is not None:
        layerwise_step[blocks, threads](params, s1, s2, schedule, step, hp, seg.bounds,
                                        seg.decay, scratch)


def _fixed_rate(lr):
    """A device schedule array giving the constant rate ``lr`` (no host transfer)."""
    schedule = cuda.device_array(SCHEDULE_SIZE, dtype=np.float64)
    _fixed_schedule[1, 1](schedule, float(lr))
    return schedule


def sgd_update(params, grads, velocity, lr, momentum, nesterov, seg, grad_scale, clip_value):
    """SGD, with momentum (and Nesterov's variant) when momentum > 0."""
    _launch(SGD, params, grads, velocity, velocity, _fixed_rate(lr), 0,
            (momentum, 1.0 if nesterov else 0.0), seg, grad_scale, math.inf, clip_value, None)


def adagrad_update(params, grads, cache, lr, eps, seg, grad_scale, clip_value):
    """Adagrad: G += g^2; p -= lr g / (sqrt(G) + eps)."""
    _launch(ADAGRAD, params, grads, cache, cache, _fixed_rate(lr), 0, (eps,), seg, grad_scale,
            math.inf, clip_value, None)


def rmsprop_update(params, grads, cache, lr, rho, eps, seg, grad_scale, clip_value):
    """RMSprop: E = rho E + (1 - rho) g^2; p -= lr g / (sqrt(E) + eps)."""
    _launch(RMSPROP, params, grads, cache, cache, _fixed_rate(lr), 0, (rho, eps), seg,
            grad_scale, math.inf, clip_value, None)


def adam_update(params, grads, m, v, step, lr, beta1, beta2, eps, weight_decay, seg,
                grad_scale, clip_value):
    """Adam with bias correction at update number step + 1; with weight_decay > 0 the
    decoupled decay of AdamW on segments with decay = 1."""
    _launch(ADAM, params, grads, m, v, _fixed_rate(lr), step, (beta1, beta2, eps, weight_decay),
            seg, grad_scale, math.inf, clip_value, None)


def lamb_update(params, grads, m, v, step, lr, beta1, beta2, eps, weight_decay, seg,
                grad_scale, clip_value):
    """LAMB at update number step + 1, with the per-segment trust ratio ‖p‖/‖r‖."""
    _launch(LAMB, params, grads, m, v, _fixed_rate(lr), step, (beta1, beta2, eps, weight_decay),
            seg, grad_scale, math.inf, clip_value, None)


def grad_norm(params, grads, seg, clip_value):
    """‖clamp(grads + penalty gradient, ±clip_value)‖₂ over the whole vector."""
    seg = device_segments(seg)
    scratch = cuda.device_array(scratch_size(seg), dtype=np.float64)
    _accumulate_norm(params, grads, seg, clip_value, scratch)
    return math.sqrt(scratch.copy_to_host()[NORM])


def clip_factor(params, grads, seg, max_norm, clip_value):
    """min(1, max_norm / (‖g‖ + 1e-6)) for the prepared gradient g; 1 when max_norm is ∞."""
    if not math.isfinite(max_norm):
        return 1.0
    return min(1.0, max_norm / (grad_norm(params, grads, seg, clip_value) + 1e-6))


def optimizer_update(upd, seg, params, grads, state, step, scratch=None):
    """One update (number step + 1) by the rule ``upd`` (an ``Update``): rate from its
    schedule and clip factor, both evaluated on the device, then the rule's kernels.
    ``state`` (device) rows are the optimizer's state vectors; ``scratch`` a float64
    device vector of ``scratch_size(seg)`` (allocated when not given)."""
    _launch(int(upd.code), params, grads, state[0], state[state.shape[0] - 1],
            on_device(upd.schedule), step, upd.hp, seg, 1.0, float(upd.clip[0]),
            float(upd.clip[1]), scratch)


def add_penalty_grad(params, grads, seg):
    """grads += l1 sign(w) + l2 w per segment; returns the penalty l1|w|_1 + l2/2 |w|^2."""
    seg = device_segments(seg)
    acc = cuda.device_array(1, dtype=np.float64)
    fill(acc, 0.0)
    blocks, threads = config.grid_1d(params.shape[0])
    _penalty[blocks, threads](params, grads, seg.bounds, seg.l1, seg.l2, acc)
    return float(acc.copy_to_host()[0])
