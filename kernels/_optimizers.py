"""Optimizers: one fused pass over the flat parameter vector each.

``params``, ``grads`` and every state vector have the same length, cut into
``Segments`` (kernels._layout): one per tensor, with its own L1 and L2 coefficients
and ``decay`` = 1 where decoupled weight decay applies (weights, not biases or
BatchNorm's γ and β). In the same pass that updates, each gradient element becomes

    g = s · clamp(grad + l1 sign(w) + l2 w, −c, c)      (penalty l1 |w|_1 + l2/2 |w|^2)

with c the clip value (∞: none) and s the global-norm clip factor
min(1, max_norm / (‖clamp(grad + penalty)‖₂ + 10⁻⁶)) (PyTorch's clip_grad_norm_; 1 when
there is no max_norm), computed by one reduction before the update. Then, with lr the
rate in force for update number t + 1 (kernels._schedules; t updates already made):

    sgd        v = mu v + g;  p -= lr (g + mu v) if nesterov else lr v   (mu = 0: p -= lr g)
    adagrad    G += g^2;              p -= lr g / (sqrt(G) + eps)
    rmsprop    E = rho E + (1-rho) g^2;  p -= lr g / (sqrt(E) + eps)
    adam       m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
               p = (1 - lr λ) p - lr (m / (1 - b1^(t+1))) / (sqrt(v / (1 - b2^(t+1))) + eps)
               (λ = weight decay, decoupled: AdamW; λ = 0: Adam)
    lamb       m, v as Adam;  r = m̂ / (sqrt(v̂) + eps) + λ p;  per tensor
               p -= lr φ r,  φ = ‖p‖ / ‖r‖ (1 where either norm is 0)   (You et al. 2019)

Hyperparameters and the step count are float64/int scalars; the per-element
arithmetic runs in the vectors' dtype (as PyTorch's fused Adam does), so float32
loops vectorize; norms add blocks of NORM_BLOCK squares in that dtype, in float64 beyond.
"""
import math
from collections import namedtuple

import numpy as np

from ._jit import kernel
from ._plan import Plan, by_plan
from ._schedules import learning_rate
from ._tasks import run, unpack

SGD, ADAGRAD, RMSPROP, ADAM, ADAMW, LAMB = range(6)

#: name -> integer code understood by ``optimizer_update``.
OPTIMIZERS = {"sgd": SGD, "adagrad": ADAGRAD, "rmsprop": RMSPROP, "adam": ADAM, "adamw": ADAMW,
              "lamb": LAMB}

#: state vectors each optimizer keeps (rows of the ``state`` matrix).
STATE_VECTORS = {SGD: 1, ADAGRAD: 1, RMSPROP: 1, ADAM: 2, ADAMW: 2, LAMB: 2}

#: An update rule as the epoch kernel reads it: the optimizer ``code``; ``hp`` its
#: hyperparameters (a, b, c, weight decay): sgd a = momentum, b = nesterov; adagrad
#: a = eps; rmsprop a = rho, b = eps; adam, adamw, lamb a = beta1, b = beta2, c = eps;
#: ``schedule`` (kernels._schedules); ``clip`` = (max_norm, max_value), ∞ for none;
#: ``plan`` (kernels._plan) the kernels it compiles: ``rule`` (the code, Adam's for AdamW),
#: ``clip_norm`` (whether max_norm is finite) and ``parallel`` (large segments split
#: across threads). Built by ``make_update``.
Update = namedtuple("Update", "code hp schedule clip plan")

NO_CLIP = np.inf


def make_update(code, hp, schedule, clip, parallel=False):
    """The ``Update`` of optimizer ``code`` (float64 arrays hp, schedule, clip); with
    ``parallel`` (a network's ``plan.parallel``) large segments are updated across
    Numba's threads."""
    rule = ADAM if code == ADAMW else int(code)
    return Update(np.int64(code), hp, schedule, clip,
                  Plan(rule=rule, clip_norm=bool(math.isfinite(clip[0])),
                       parallel=bool(parallel)))


@kernel(inline="always")
def regularized(g, w, l1, l2):
    """g + l1 sign(w) + l2 w (all of w's dtype; branch-free so loops vectorize)."""
    return g + l2 * w + l1 * np.sign(w)


@kernel(inline="always")
def prepared(g, w, l1, l2, clip_value, scale):
    """scale · clamp(g + l1 sign(w) + l2 w, −clip_value, clip_value)."""
    return scale * min(max(regularized(g, w, l1, l2), -clip_value), clip_value)


#: elements summed in the vectors' dtype before the float64 total: float32 sums of 256
#: squares (positive terms) stay within 256·2⁻²⁴ ≈ 1.5e-5 relative even unvectorized,
#: and the pass runs at twice the speed of float64 accumulation (235k values: 12.7 µs
#: against 20.2, AMD Zen 4)
NORM_BLOCK = 256


@kernel
def _squares(p, g, a1, a2, c):
    """Σ clamp(g + l1 sign(p) + l2 p, ±c)² (float64 total of blocked partial sums)."""
    total = 0.0
    for lo in range(0, p.shape[0], NORM_BLOCK):
        pb, gb = p[lo:lo + NORM_BLOCK], g[lo:lo + NORM_BLOCK]
        part = g.dtype.type(0)
        for k in range(pb.shape[0]):
            x = min(max(regularized(gb[k], pb[k], a1, a2), -c), c)
            part += x * x
        total += part
    return total


@kernel
def _plain_squares(g, c):
    """Σ clamp(g, ±c)² (float64 total of blocked partial sums)."""
    total = 0.0
    for lo in range(0, g.shape[0], NORM_BLOCK):
        gb = g[lo:lo + NORM_BLOCK]
        part = g.dtype.type(0)
        for k in range(gb.shape[0]):
            x = min(max(gb[k], -c), c)
            part += x * x
        total += part
    return total


@kernel
def grad_norm(params, grads, seg, clip_value):
    """‖clamp(grads + penalty gradient, ±clip_value)‖₂ over the whole vector (float64)."""
    cast = params.dtype.type
    c = cast(clip_value)
    total = 0.0
    for s in range(seg.bounds.shape[0] - 1):
        lo, hi = seg.bounds[s], seg.bounds[s + 1]
        if seg.l1[s] == 0.0 and seg.l2[s] == 0.0:   # no penalty: read the gradient only
            total += _plain_squares(grads[lo:hi], c)
        else:
            total += _squares(params[lo:hi], grads[lo:hi], cast(seg.l1[s]), cast(seg.l2[s]), c)
    return math.sqrt(total)


@kernel
def clip_factor(params, grads, seg, max_norm, clip_value):
    """min(1, max_norm / (‖g‖ + 1e-6)) for the prepared gradient g; 1 when max_norm is ∞."""
    if not math.isfinite(max_norm):
        return 1.0
    return min(1.0, max_norm / (grad_norm(params, grads, seg, clip_value) + 1e-6))


# Each update loops over segments and hands each one, as slices, to a loop that
# starts at index 0: LLVM then knows no index is negative and vectorizes it. A segment
# loop takes (p, g, s0, s1, args): two state vectors (s1 = s0 for the one-state rules)
# and its scalars as a tuple, so that one runner splits any rule's segment into blocks.

@kernel
def _sgd_segment(p, g, velocity, _, args):
    lr, mu, nesterov, a1, a2, c, s = args
    if mu == 0:
        for k in range(p.shape[0]):
            p[k] = p[k] - lr * prepared(g[k], p[k], a1, a2, c, s)
    elif nesterov:
        for k in range(p.shape[0]):
            gk = prepared(g[k], p[k], a1, a2, c, s)
            v = mu * velocity[k] + gk
            velocity[k] = v
            p[k] = p[k] - lr * (gk + mu * v)
    else:
        for k in range(p.shape[0]):
            v = mu * velocity[k] + prepared(g[k], p[k], a1, a2, c, s)
            velocity[k] = v
            p[k] = p[k] - lr * v


@kernel
def _scaled_segment(p, g, cache, _, args):
    """cache = r cache + r1 g^2; p -= lr g / (sqrt(cache) + e)."""
    lr, r, r1, e, a1, a2, c, s = args
    for k in range(p.shape[0]):
        gk = prepared(g[k], p[k], a1, a2, c, s)
        v = r * cache[k] + r1 * gk * gk
        cache[k] = v
        p[k] = p[k] - lr * gk / (np.sqrt(v) + e)


@kernel(inline="always")
def _moments(gk, m, v, k, b1, b1c, b2, b2c):
    """m[k] = b1 m[k] + (1 - b1) g; v[k] = b2 v[k] + (1 - b2) g^2; returns both."""
    mk = b1 * m[k] + b1c * gk
    vk = b2 * v[k] + b2c * gk * gk
    m[k] = mk
    v[k] = vk
    return mk, vk


@kernel
def _adam_segment(p, g, m, v, args):
    step_size, c2, b1, b1c, b2, b2c, e, shrink, a1, a2, c, s = args
    for k in range(p.shape[0]):
        mk, vk = _moments(prepared(g[k], p[k], a1, a2, c, s), m, v, k, b1, b1c, b2, b2c)
        p[k] = shrink * p[k] - step_size * mk / (np.sqrt(vk * c2) + e)


#: one segment's elementwise update, by the plan's rule
_segment_rule = by_plan("rule", {SGD: _sgd_segment, ADAGRAD: _scaled_segment,
                                 RMSPROP: _scaled_segment, ADAM: _adam_segment})

#: elements per block of an update split across threads: fixed, so that the blocks do
#: not depend on the thread count (elementwise rules give the same result in any case)
UPDATE_BLOCK = 1 << 14


@kernel
def _segment_whole(plan, p, g, s0, s1, args):
    _segment_rule(plan, p, g, s0, s1, args)


@kernel
def _segment_blocks(plan, p, g, s0, s1, args):
    """The rule's segment loop over blocks of UPDATE_BLOCK elements, the blocks across
    threads (a segment of one or two blocks runs on the calling thread)."""
    n = p.shape[0]
    if n <= 2 * UPDATE_BLOCK:
        _segment_rule(plan, p, g, s0, s1, args)
        return
    run(_segment_block, (n + UPDATE_BLOCK - 1) // UPDATE_BLOCK, (plan, p, g, s0, s1, args))


@kernel
def _segment_block(q, task_args):
    plan, p, g, s0, s1, args = unpack(task_args)
    lo = q * UPDATE_BLOCK
    hi = min(p.shape[0], lo + UPDATE_BLOCK)
    _segment_rule(plan, p[lo:hi], g[lo:hi], s0[lo:hi], s1[lo:hi], args)


#: a segment's update by plan: on one thread, or in blocks across threads
segment_pass = by_plan("parallel", {False: _segment_whole, True: _segment_blocks})


@kernel
def _sgd_pass(plan, params, grads, velocity, lr, momentum, nesterov, seg, grad_scale,
              clip_value):
    cast = params.dtype.type
    lr_t, mu, c, s = cast(lr), cast(momentum), cast(clip_value), cast(grad_scale)
    for k in range(seg.bounds.shape[0] - 1):
        lo, hi = seg.bounds[k], seg.bounds[k + 1]
        segment_pass(plan, plan, params[lo:hi], grads[lo:hi], velocity[lo:hi], velocity[lo:hi],
                     (lr_t, mu, nesterov, cast(seg.l1[k]), cast(seg.l2[k]), c, s))


@kernel
def _scaled_pass(plan, params, grads, cache, lr, rho, rho1, eps, seg, grad_scale, clip_value):
    cast = params.dtype.type
    lr_t, r, r1, e = cast(lr), cast(rho), cast(rho1), cast(eps)
    c, s = cast(clip_value), cast(grad_scale)
    for k in range(seg.bounds.shape[0] - 1):
        lo, hi = seg.bounds[k], seg.bounds[k + 1]
        segment_pass(plan, plan, params[lo:hi], grads[lo:hi], cache[lo:hi], cache[lo:hi],
                     (lr_t, r, r1, e, cast(seg.l1[k]), cast(seg.l2[k]), c, s))


@kernel
def _adam_pass(plan, params, grads, m, v, step, lr, beta1, beta2, eps, weight_decay, seg,
               grad_scale, clip_value):
    cast = params.dtype.type
    step_size = cast(lr / (1.0 - beta1 ** (step + 1)))
    c2 = cast(1.0 / (1.0 - beta2 ** (step + 1)))
    b1, b1c, b2, b2c, e = cast(beta1), cast(1.0 - beta1), cast(beta2), cast(1.0 - beta2), cast(eps)
    c, s = cast(clip_value), cast(grad_scale)
    for k in range(seg.bounds.shape[0] - 1):
        lo, hi = seg.bounds[k], seg.bounds[k + 1]
        shrink = cast(1.0 - lr * weight_decay * seg.decay[k])
        segment_pass(plan, plan, params[lo:hi], grads[lo:hi], m[lo:hi], v[lo:hi],
                     (step_size, c2, b1, b1c, b2, b2c, e, shrink, cast(seg.l1[k]),
                      cast(seg.l2[k]), c, s))


#: the serial plans of the standalone updates below
_SGD_SERIAL, _ADAGRAD_SERIAL, _RMSPROP_SERIAL, _ADAM_SERIAL = (
    Plan(rule=rule, parallel=False) for rule in (SGD, ADAGRAD, RMSPROP, ADAM))


@kernel
def sgd_update(params, grads, velocity, lr, momentum, nesterov, seg, grad_scale, clip_value):
    """SGD, with momentum (and Nesterov's variant) when momentum > 0."""
    _sgd_pass(_SGD_SERIAL, params, grads, velocity, lr, momentum, nesterov, seg, grad_scale,
              clip_value)


@kernel
def adagrad_update(params, grads, cache, lr, eps, seg, grad_scale, clip_value):
    """Adagrad: G += g^2; p -= lr g / (sqrt(G) + eps)."""
    _scaled_pass(_ADAGRAD_SERIAL, params, grads, cache, lr, 1.0, 1.0, eps, seg, grad_scale,
                 clip_value)


@kernel
def rmsprop_update(params, grads, cache, lr, rho, eps, seg, grad_scale, clip_value):
    """RMSprop: E = rho E + (1 - rho) g^2; p -= lr g / (sqrt(E) + eps)."""
    _scaled_pass(_RMSPROP_SERIAL, params, grads, cache, lr, rho, 1.0 - rho, eps, seg,
                 grad_scale, clip_value)


@kernel
def adam_update(params, grads, m, v, step, lr, beta1, beta2, eps, weight_decay, seg,
                grad_scale, clip_value):
    """Adam with bias correction at update number step + 1; with weight_decay > 0 the
    decoupled decay of AdamW, p ← (1 − lr λ) p first, on segments with decay = 1."""
    _adam_pass(_ADAM_SERIAL, params, grads, m, v, step, lr, beta1, beta2, eps, weight_decay,
               seg, grad_scale, clip_value)


@kernel(inline="always")
def _lamb_direction(mk, vk, w, c1, c2, e, wd):
    """r = m̂ / (sqrt(v̂) + eps) + λ w."""
    return mk * c1 / (np.sqrt(vk * c2) + e) + wd * w


@kernel
def _lamb_moments(p, g, m, v, c1, c2, b1, b1c, b2, b2c, e, wd, a1, a2, c, s):
    """Update m and v; returns (‖p‖², ‖r‖²) in float64."""
    wn = rn = 0.0
    for k in range(p.shape[0]):
        mk, vk = _moments(prepared(g[k], p[k], a1, a2, c, s), m, v, k, b1, b1c, b2, b2c)
        r = np.float64(_lamb_direction(mk, vk, p[k], c1, c2, e, wd))
        w = np.float64(p[k])
        wn += w * w
        rn += r * r
    return wn, rn


@kernel
def _lamb_step(p, m, v, step_size, c1, c2, e, wd):
    for k in range(p.shape[0]):
        p[k] = p[k] - step_size * _lamb_direction(m[k], v[k], p[k], c1, c2, e, wd)


@kernel
def lamb_update(params, grads, m, v, step, lr, beta1, beta2, eps, weight_decay, seg,
                grad_scale, clip_value):
    """LAMB at update number step + 1: the Adam direction plus decay (on segments with
    decay = 1), scaled per segment (tensor) by the trust ratio ‖p‖/‖r‖."""
    cast = params.dtype.type
    c1, c2 = cast(1.0 / (1.0 - beta1 ** (step + 1))), cast(1.0 / (1.0 - beta2 ** (step + 1)))
    b1, b1c, b2, b2c, e = cast(beta1), cast(1.0 - beta1), cast(beta2), cast(1.0 - beta2), cast(eps)
    c, s = cast(clip_value), cast(grad_scale)
    for k in range(seg.bounds.shape[0] - 1):
        lo, hi = seg.bounds[k], seg.bounds[k + 1]
        p, mk, vk = params[lo:hi], m[lo:hi], v[lo:hi]
        wd = cast(weight_decay * seg.decay[k])
        wn, rn = _lamb_moments(p, grads[lo:hi], mk, vk, c1, c2, b1, b1c, b2, b2c, e, wd,
                               cast(seg.l1[k]), cast(seg.l2[k]), c, s)
        trust = math.sqrt(wn) / math.sqrt(rn) if wn > 0.0 and rn > 0.0 else 1.0
        _lamb_step(p, mk, vk, cast(lr * trust), c1, c2, e, wd)


# The rules with one signature (plan, hp, seg, params, grads, state, step, lr, scale,
# clip_value); the plan's ``parallel`` splits large segments across threads (LAMB, whose
# trust ratio is a per-tensor reduction, runs on one thread).

@kernel
def _sgd_rule(plan, hp, seg, params, grads, state, step, lr, scale, clip_value):
    _sgd_pass(plan, params, grads, state[0], lr, hp[0], hp[1] != 0.0, seg, scale, clip_value)


@kernel
def _adagrad_rule(plan, hp, seg, params, grads, state, step, lr, scale, clip_value):
    _scaled_pass(plan, params, grads, state[0], lr, 1.0, 1.0, hp[0], seg, scale, clip_value)


@kernel
def _rmsprop_rule(plan, hp, seg, params, grads, state, step, lr, scale, clip_value):
    _scaled_pass(plan, params, grads, state[0], lr, hp[0], 1.0 - hp[0], hp[1], seg, scale,
                 clip_value)


@kernel
def _adam_rule(plan, hp, seg, params, grads, state, step, lr, scale, clip_value):
    """Adam, and AdamW (Adam's weight decay hp[3] is 0)."""
    _adam_pass(plan, params, grads, state[0], state[1], step, lr, hp[0], hp[1], hp[2], hp[3],
               seg, scale, clip_value)


@kernel
def _lamb_rule(plan, hp, seg, params, grads, state, step, lr, scale, clip_value):
    lamb_update(params, grads, state[0], state[1], step, lr, hp[0], hp[1], hp[2], hp[3], seg,
                scale, clip_value)


#: the optimizer's pass, by the update's plan (compiled for its optimizer only)
apply_rule = by_plan("rule", {SGD: _sgd_rule, ADAGRAD: _adagrad_rule, RMSPROP: _rmsprop_rule,
                              ADAM: _adam_rule, LAMB: _lamb_rule})
#: the global-norm clip factor; 1 for plans without max_norm
norm_clip_factor = by_plan("clip_norm", {True: clip_factor, False: 1.0})


@kernel
def optimizer_update(upd, seg, params, grads, state, step):
    """One update (number step + 1) by the rule ``upd`` (an ``Update``): the rate from
    its schedule, the clip factor, then the optimizer's pass. ``state`` rows are the
    optimizer's state vectors."""
    lr = learning_rate(upd.schedule, step)
    clip_value = upd.clip[1]
    scale = norm_clip_factor(upd.plan, params, grads, seg, upd.clip[0], clip_value)
    apply_rule(upd.plan, upd.plan, upd.hp, seg, params, grads, state, step, lr, scale,
               clip_value)


@kernel
def _penalty_segment(p, g, a1, a2):
    penalty = 0.0
    for k in range(p.shape[0]):
        w = p[k]
        g[k] = regularized(g[k], w, a1, a2)
        penalty += np.float64(a1) * abs(w) + 0.5 * np.float64(a2) * w * w
    return penalty


@kernel(entry=True)
def add_penalty_grad(params, grads, seg):
    """grads += l1 sign(w) + l2 w per segment; returns the penalty l1|w|_1 + l2/2 |w|^2."""
    cast = params.dtype.type
    penalty = 0.0
    for s in range(seg.bounds.shape[0] - 1):
        if seg.l1[s] != 0.0 or seg.l2[s] != 0.0:
            lo, hi = seg.bounds[s], seg.bounds[s + 1]
            penalty += _penalty_segment(params[lo:hi], grads[lo:hi], cast(seg.l1[s]),
                                        cast(seg.l2[s]))
    return penalty
