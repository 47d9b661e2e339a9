"""CUDA twins of fastnn.kernels._optimizers (same names, argument order and formulas).

One thread per element of the flat vector; each thread finds its segment in
``seg.bounds``. An update reads everything it needs from the device: the learning
rate from the schedule array and the step (kernels.cuda._schedules.learning_rate,
evaluated by each thread), and the global-norm clip factor from a float64 scratch
vector that a reduction kernel filled just before (atomic adds), so a step of
``optimizer_update`` makes no host transfer and waits on nothing:

    scratch[0]               ‖clamp(grad + penalty gradient)‖²  (global-norm clipping)
    scratch[1 + 2s, 2 + 2s]  ‖p_s‖², ‖r_s‖² of segment s          (LAMB's trust ratios)

``seg`` is a ``Segments`` of device arrays (host arrays are copied over); in
``optimizer_update`` the ``Update``'s ``schedule`` may be a device array too (the
training loop copies it once per epoch), its ``hp`` and ``clip`` are host scalars.
Per-element arithmetic runs in float64 (the CPU runs it in the vectors' dtype), so
float32 results agree with the CPU to rounding.
"""
import math

import numpy as np

from .._layout import Segments
from .._optimizers import ADAGRAD, ADAM, LAMB, RMSPROP, SGD
from .._schedules import INVERSE_TIME, SCHEDULE_SIZE
from . import _config as config
from ._activations import fill
from ._backend import cuda
from ._schedules import learning_rate

#: scratch index of the squared global norm; LAMB's per-segment sums follow it
NORM = 0
LAMB_SUMS = 1


def scratch_size(seg):
    """Length of the float64 scratch vector of an update over the segments ``seg``."""
    return LAMB_SUMS + 2 * (seg.bounds.shape[0] - 1)


@cuda.jit(device=True)
def _segment(k, bounds):
    s = 0
    while k >= bounds[s + 1]:
        s += 1
    return s


@cuda.jit(device=True)
def _regularized(g, w, l1, l2):
    """g + l1 sign(w) + l2 w."""
    sign = 1.0 if w > 0.0 else (-1.0 if w < 0.0 else 0.0)
    return g + l2 * w + l1 * sign


@cuda.jit(device=True)
def _clamped(g, w, l1, l2, clip_value):
    return min(max(_regularized(g, w, l1, l2), -clip_value), clip_value)


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
        x = _clamped(grads[k], params[k], l1[s], l2[s], clip_value)
        cuda.atomic.add(scratch, NORM, x * x)


@cuda.jit
def _update(code, params, grads, s1, s2, schedule, step, a, b, c, wd, c1, c2,
            bounds, l1, l2, decay, grad_scale, norm_clip, max_norm, clip_value, scratch):
    """One element of an update. sgd: a = momentum, b = nesterov; adagrad, rmsprop:
    cache = a cache + b g², c = eps; adam, adamw, lamb: a, b = β1, β2, c = eps,
    c1 = 1/(1 − β1^(t+1)), c2 = 1/(1 − β2^(t+1)), wd = weight decay. LAMB only updates
    m and v here and sums ‖p‖² and ‖r‖² per segment (``_lamb_step`` moves p)."""
    k = cuda.grid(1)
    if k < params.shape[0]:
        s = _segment(k, bounds)
        w = params[k]
        lr = learning_rate(schedule, step)
        g = _grad_scale(grad_scale, norm_clip, max_norm, scratch) * _clamped(
            grads[k], w, l1[s], l2[s], clip_value)
        if code == SGD:
            if a == 0.0:
                params[k] = w - lr * g
            else:
                v = a * s1[k] + g
                s1[k] = v
                params[k] = w - lr * (g + a * v if b != 0.0 else v)
        elif code == ADAGRAD or code == RMSPROP:
            v = a * s1[k] + b * g * g
            s1[k] = v
            params[k] = w - lr * g / (math.sqrt(v) + c)
        else:
            m = a * s1[k] + (1.0 - a) * g
            v = b * s2[k] + (1.0 - b) * g * g
            s1[k] = m
            s2[k] = v
            if code == LAMB:
                r = m * c1 / (math.sqrt(v * c2) + c) + wd * decay[s] * w
                cuda.atomic.add(scratch, LAMB_SUMS + 2 * s, w * w)
                cuda.atomic.add(scratch, LAMB_SUMS + 2 * s + 1, r * r)
            else:
                params[k] = (1.0 - lr * wd * decay[s]) * w - (lr * c1) * m / (
                    math.sqrt(v * c2) + c)


@cuda.jit
def _lamb_step(params, m, v, schedule, step, eps, wd, c1, c2, bounds, decay, scratch):
    """p -= lr φ_s r with the trust ratio φ_s = ‖p_s‖/‖r_s‖ (1 where either is 0)."""
    k = cuda.grid(1)
    if k < params.shape[0]:
        s = _segment(k, bounds)
        wn = scratch[LAMB_SUMS + 2 * s]
        rn = scratch[LAMB_SUMS + 2 * s + 1]
        trust = math.sqrt(wn) / math.sqrt(rn) if wn > 0.0 and rn > 0.0 else 1.0
        w = params[k]
        r = m[k] * c1 / (math.sqrt(v[k] * c2) + eps) + wd * decay[s] * w
        params[k] = w - learning_rate(schedule, step) * trust * r


@cuda.jit
def _penalty(params, grads, bounds, l1, l2, acc):
    k = cuda.grid(1)
    if k < params.shape[0]:
        s = _segment(k, bounds)
        w = params[k]
        grads[k] = _regularized(grads[k], w, l1[s], l2[s])
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


def _launch(code, params, grads, s1, s2, schedule, step, a, b, c, wd, seg, grad_scale,
            max_norm, clip_value, scratch):
    """The update kernel(s) of one optimizer step, everything read on the device."""
    seg = device_segments(seg)
    if scratch is None:
        scratch = cuda.device_array(scratch_size(seg), dtype=np.float64)
    norm_clip = math.isfinite(max_norm)
    if norm_clip:
        _accumulate_norm(params, grads, seg, clip_value, scratch)
    elif code == LAMB:
        fill(scratch, 0.0)
    adam_like = code not in (SGD, ADAGRAD, RMSPROP)
    c1 = 1.0 / (1.0 - a ** (step + 1)) if adam_like else 1.0
    c2 = 1.0 / (1.0 - b ** (step + 1)) if adam_like else 1.0
    blocks, threads = config.grid_1d(params.shape[0])
    _update[blocks, threads](code, params, grads, s1, s2, schedule, np.int64(step), float(a),
                             float(b), float(c), float(wd), c1, c2, seg.bounds, seg.l1,
                             seg.l2, seg.decay, float(grad_scale), norm_clip, float(max_norm),
                             float(clip_value), scratch)
    if code == LAMB:
        _lamb_step[blocks, threads](params, s1, s2, schedule, np.int64(step), float(c),
                                    float(wd), c1, c2, seg.bounds, seg.decay, scratch)


def _fixed_rate(lr):
    """A device schedule array giving the constant rate ``lr`` (no host transfer)."""
    schedule = cuda.device_array(SCHEDULE_SIZE, dtype=np.float64)
    _fixed_schedule[1, 1](schedule, float(lr))
    return schedule


def sgd_update(params, grads, velocity, lr, momentum, nesterov, seg, grad_scale, clip_value):
    """SGD, with momentum (and Nesterov's variant) when momentum > 0."""
    _launch(SGD, params, grads, velocity, velocity, _fixed_rate(lr), 0, momentum,
            1.0 if nesterov else 0.0, 0.0, 0.0, seg, grad_scale, math.inf, clip_value, None)


def adagrad_update(params, grads, cache, lr, eps, seg, grad_scale, clip_value):
    """Adagrad: G += g^2; p -= lr g / (sqrt(G) + eps)."""
    _launch(ADAGRAD, params, grads, cache, cache, _fixed_rate(lr), 0, 1.0, 1.0, eps, 0.0, seg,
            grad_scale, math.inf, clip_value, None)


def rmsprop_update(params, grads, cache, lr, rho, eps, seg, grad_scale, clip_value):
    """RMSprop: E = rho E + (1 - rho) g^2; p -= lr g / (sqrt(E) + eps)."""
    _launch(RMSPROP, params, grads, cache, cache, _fixed_rate(lr), 0, rho, 1.0 - rho, eps, 0.0,
            seg, grad_scale, math.inf, clip_value, None)


def adam_update(params, grads, m, v, step, lr, beta1, beta2, eps, weight_decay, seg,
                grad_scale, clip_value):
    """Adam with bias correction at update number step + 1; with weight_decay > 0 the
    decoupled decay of AdamW on segments with decay = 1."""
    _launch(ADAM, params, grads, m, v, _fixed_rate(lr), step,
            beta1, beta2, eps, weight_decay, seg, grad_scale, math.inf, clip_value, None)


def lamb_update(params, grads, m, v, step, lr, beta1, beta2, eps, weight_decay, seg,
                grad_scale, clip_value):
    """LAMB at update number step + 1, with the per-segment trust ratio ‖p‖/‖r‖."""
    _launch(LAMB, params, grads, m, v, _fixed_rate(lr), step, beta1, beta2, eps, weight_decay,
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
    schedule and clip factor, both evaluated on the device, then the optimizer's pass.
    ``state`` (device) rows are the optimizer's state vectors; ``scratch`` a float64
    device vector of ``scratch_size(seg)`` (allocated when not given)."""
    code, hp = int(upd.code), [float(x) for x in upd.hp]
    s2 = state[1] if state.shape[0] > 1 else state[0]
    if code == ADAGRAD:
        a, b, c = 1.0, 1.0, hp[0]
    elif code == RMSPROP:
        a, b, c = hp[0], 1.0 - hp[0], hp[1]
    else:
        a, b, c = hp[0], hp[1], hp[2]
    _launch(code, params, grads, state[0], s2, on_device(upd.schedule), step, a, b, c, hp[3],
            seg, 1.0, float(upd.clip[0]), float(upd.clip[1]), scratch)


def add_penalty_grad(params, grads, seg):
    """grads += l1 sign(w) + l2 w per segment; returns the penalty l1|w|_1 + l2/2 |w|^2."""
    seg = device_segments(seg)
    acc = cuda.device_array(1, dtype=np.float64)
    fill(acc, 0.0)
    blocks, threads = config.grid_1d(params.shape[0])
    _penalty[blocks, threads](params, grads, seg.bounds, seg.l1, seg.l2, acc)
    return float(acc.copy_to_host()[0])
