"""Optimizers: one fused pass over the flat parameter vector each, made from the rules of
the registry (kernels.optimizer_rules: each rule's formula is in its module).

``params``, ``grads`` and every state vector have the same length, cut into
``Segments`` (kernels._layout): one per tensor, with its own L1 and L2 coefficients
and ``decay`` = 1 where decoupled weight decay applies (weights, not biases or
BatchNorm's γ and β). In the same pass that updates, each gradient element becomes

    g = s · clamp(grad + l1 sign(w) + l2 w, −c, c)      (penalty l1 |w|_1 + l2/2 |w|^2)

with c the clip value (∞: none) and s the global-norm clip factor
min(1, max_norm / (‖clamp(grad + penalty)‖₂ + 10⁻⁶)) (PyTorch's clip_grad_norm_; 1 when
there is no max_norm), computed by one reduction before the update. Then each tensor's
rule constants are computed from the hyperparameters, the rate lr in force for update
number t + 1 (kernels._schedules; t updates already made) and the tensor's ``decay``, and
the rule's ``update`` runs on every element: an elementwise rule returns the new weight;
a layerwise rule (LAMB) returns a direction r, and the tensor moves by w ← w − lr φ r
with its trust ratio φ = ‖w‖/‖r‖ (1 where either norm is 0).

Hyperparameters and the step count are float64/int scalars; the per-element
arithmetic runs in the vectors' dtype (as PyTorch's fused Adam does), so float32
loops vectorize; norms add blocks of NORM_BLOCK squares in that dtype, in float64 beyond.
"""
import math
from collections import namedtuple

import numpy as np

from ._jit import internal_overload, kernel, specialized
from ._plan import Plan, by_plan
from ._rules import compile_functions
from ._schedules import learning_rate
from ._tasks import run, unpack
from .optimizer_rules import RULES
from .optimizer_rules.rule import prepared as _prepared, regularized as _regularized

#: name -> integer code understood by ``optimizer_update`` (the rule's place in the registry)
OPTIMIZERS = {rule.name: code for code, rule in enumerate(RULES)}
SGD, ADAGRAD, RMSPROP, ADAM, ADAMW, LAMB = (OPTIMIZERS[name] for name in (
    "sgd", "adagrad", "rmsprop", "adam", "adamw", "lamb"))

#: state vectors each optimizer keeps (rows of the ``state`` matrix).
STATE_VECTORS = {code: len(rule.state) for code, rule in enumerate(RULES)}

#: An update rule as the epoch kernel reads it: the optimizer ``code``; ``hp`` its
#: hyperparameters, in the order of its rule's ``hyperparameters``; ``schedule``
#: (kernels._schedules); ``clip`` = (max_norm, max_value), ∞ for none; ``plan``
#: (kernels._plan) the kernels it compiles: ``rule`` (the code of the first rule with the
#: same functions: AdamW runs Adam's), ``clip_norm`` (whether max_norm is finite) and
#: ``parallel`` (large segments split across threads). Built by ``make_update``.
Update = namedtuple("Update", "code hp schedule clip plan")

NO_CLIP = np.inf


def _functions(rule):
    return rule.constants, rule.update, rule.direction


#: code -> the code whose compiled pass it runs (the first rule with the same functions)
KERNEL_OF = {code: next(first for first, other in enumerate(RULES)
                        if _functions(other) == _functions(rule))
             for code, rule in enumerate(RULES)}


def make_update(code, hp, schedule, clip, parallel=False):
    """The ``Update`` of optimizer ``code`` (float64 arrays hp — one value per
    hyperparameter of its rule —, schedule, clip); with ``parallel`` (a network's
    ``plan.parallel``) large segments are updated across Numba's threads (layerwise rules
    run on one thread)."""
    code = int(code)
    if not 0 <= code < len(RULES):
        raise ValueError(f"unknown optimizer code {code}")
    rule = RULES[code]
    if len(hp) != len(rule.hyperparameters):
        raise ValueError(f"{rule.name} takes {len(rule.hyperparameters)} hyperparameters "
                         f"({', '.join(h.name for h in rule.hyperparameters)}), got {len(hp)}")
    return Update(np.int64(code), hp, schedule, clip,
                  Plan(rule=KERNEL_OF[code], clip_norm=bool(math.isfinite(clip[0])),
                       parallel=bool(parallel) and rule.direction is None))


#: every rule's scalar functions, inlined into the passes below
_twins = compile_functions([f for rule in RULES for f in _functions(rule) if f is not None]
                           + [_prepared, _regularized], kernel(inline="always"))
prepared, regularized = _twins[_prepared], _twins[_regularized]


def cast_each(values, cast):  # pragma: no cover - replaced by the overload
    """The tuple of ``cast(v)`` for each v of ``values``."""
    raise NotImplementedError


@internal_overload(cast_each)
def _cast_each(values, cast):
    if len(values.types) == 0:
        return lambda values, cast: ()
    return lambda values, cast: (cast(values[0]),) + cast_each(values[1:], cast)


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


# A pass loops over segments and hands each one, as slices, to a loop that starts at
# index 0: LLVM then knows no index is negative and vectorizes it. A segment loop takes
# (p, g, s0, s1, args): the rule's two state vectors (the same one twice for one-state
# rules) and the scalars (constants, l1, l2, clip value, clip factor, lr), so that one
# runner splits any elementwise rule's segment into blocks. Each rule's loop is a copy of
# a template with its functions as the constants UPDATE and DIRECTION.

def _elementwise_segment(p, g, s0, s1, args):
    """p[k] ← update(p[k], g_k, s0, s1, k, constants) with g_k the prepared gradient."""
    c, a1, a2, clip_value, scale, _ = args
    for k in range(p.shape[0]):
        p[k] = UPDATE(p[k], prepared(g[k], p[k], a1, a2, clip_value, scale),  # noqa: F821
                      s0, s1, k, c)


def _layerwise_segment(p, g, s0, s1, args):
    """r_k = update(...) for every element (the state updated), then p ← p − lr φ r with
    φ = ‖p‖/‖r‖ (1 where either norm is 0; norms in float64) and r from ``direction``."""
    c, a1, a2, clip_value, scale, lr = args
    wn = rn = 0.0
    for k in range(p.shape[0]):
        r = np.float64(UPDATE(p[k], prepared(g[k], p[k], a1, a2, clip_value,  # noqa: F821
                                             scale), s0, s1, k, c))
        w = np.float64(p[k])
        wn += w * w
        rn += r * r
    trust = math.sqrt(wn) / math.sqrt(rn) if wn > 0.0 and rn > 0.0 else 1.0
    step_size = p.dtype.type(lr * trust)
    for k in range(p.shape[0]):
        p[k] = p[k] - step_size * DIRECTION(p[k], s0, s1, k, c)  # noqa: F821


def _segment_loop(code):
    rule = RULES[code]
    template = _elementwise_segment if rule.direction is None else _layerwise_segment
    names = dict(UPDATE=_twins[rule.update])
    if rule.direction is not None:
        names["DIRECTION"] = _twins[rule.direction]
    return kernel(specialized(template, f"{rule.name}_segment", **names))


_KERNELS = sorted(set(KERNEL_OF.values()))
#: one segment's update and a tensor's constants, by the plan's rule
_segment_rule = by_plan("rule", {code: _segment_loop(code) for code in _KERNELS})
_rule_constants = by_plan("rule", {code: _twins[RULES[code].constants] for code in _KERNELS})

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
def rule_pass(plan, hp, seg, params, grads, s0, s1, step, lr, grad_scale, clip_value):
    """The plan's rule over every segment: update number step + 1 at rate lr, the gradient
    prepared with the segment's L1/L2, ``clip_value`` and ``grad_scale``; the rule's
    constants cast to the vectors' dtype."""
    cast = params.dtype.type
    c, s = cast(clip_value), cast(grad_scale)
    for k in range(seg.bounds.shape[0] - 1):
        lo, hi = seg.bounds[k], seg.bounds[k + 1]
        constants = cast_each(_rule_constants(plan, hp, step, lr, seg.decay[k]), cast)
        segment_pass(plan, plan, params[lo:hi], grads[lo:hi], s0[lo:hi], s1[lo:hi],
                     (constants, cast(seg.l1[k]), cast(seg.l2[k]), c, s, lr))


#: the serial plan of each rule's standalone update below
_SERIAL = {code: Plan(rule=KERNEL_OF[code], parallel=False) for code in range(len(RULES))}
_SGD_SERIAL, _ADAGRAD_SERIAL, _RMSPROP_SERIAL, _ADAM_SERIAL, _LAMB_SERIAL = (
    _SERIAL[code] for code in (SGD, ADAGRAD, RMSPROP, ADAM, LAMB))


@kernel
def sgd_update(params, grads, velocity, lr, momentum, nesterov, seg, grad_scale, clip_value):
    """SGD, with momentum (and Nesterov's variant) when momentum > 0."""
    rule_pass(_SGD_SERIAL, (np.float64(momentum), 1.0 if nesterov else 0.0), seg, params,
              grads, velocity, velocity, 0, lr, grad_scale, clip_value)


@kernel
def adagrad_update(params, grads, cache, lr, eps, seg, grad_scale, clip_value):
    """Adagrad: G += g^2; p -= lr g / (sqrt(G) + eps)."""
    rule_pass(_ADAGRAD_SERIAL, (np.float64(eps),), seg, params, grads, cache, cache, 0, lr,
              grad_scale, clip_value)


@kernel
def rmsprop_update(params, grads, cache, lr, rho, eps, seg, grad_scale, clip_value):
    """RMSprop: E = rho E + (1 - rho) g^2; p -= lr g / (sqrt(E) + eps)."""
    rule_pass(_RMSPROP_SERIAL, (np.float64(rho), np.float64(eps)), seg, params, grads, cache,
              cache, 0, lr, grad_scale, clip_value)


@kernel
def adam_update(params, grads, m, v, step, lr, beta1, beta2, eps, weight_decay, seg,
                grad_scale, clip_value):
    """Adam with bias correction at update number step + 1; with weight_decay > 0 the
    decoupled decay of AdamW, p ← (1 − lr λ) p first, on segments with decay = 1."""
    rule_pass(_ADAM_SERIAL, (np.float64(beta1), np.float64(beta2), np.float64(eps),
                             np.float64(weight_decay)),
              seg, params, grads, m, v, step, lr, grad_scale, clip_value)


@kernel
def lamb_update(params, grads, m, v, step, lr, beta1, beta2, eps, weight_decay, seg,
                grad_scale, clip_value):
    """LAMB at update number step + 1: the Adam direction plus decay (on segments with
    decay = 1), scaled per segment (tensor) by the trust ratio ‖p‖/‖r‖."""
    rule_pass(_LAMB_SERIAL, (np.float64(beta1), np.float64(beta2), np.float64(eps),
                             np.float64(weight_decay)),
              seg, params, grads, m, v, step, lr, grad_scale, clip_value)


#: the global-norm clip factor; 1 for plans without max_norm
norm_clip_factor = by_plan("clip_norm", {True: clip_factor, False: 1.0})


@kernel
def optimizer_update(upd, seg, params, grads, state, step):
    """One update (number step + 1) by the rule ``upd`` (an ``Update``): the rate from
    its schedule, the clip factor, then the rule's pass. ``state`` rows are the
    optimizer's state vectors."""
    lr = learning_rate(upd.schedule, step)
    clip_value = upd.clip[1]
    scale = norm_clip_factor(upd.plan, params, grads, seg, upd.clip[0], clip_value)
    rule_pass(upd.plan, upd.hp, seg, params, grads, state[0], state[state.shape[0] - 1], step,
              lr, scale, clip_value)


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
