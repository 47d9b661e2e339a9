"""A minibatch split by samples across Numba's threads: the plan of a small network
trained on large minibatches (``Plan.split``; kernels._layout.planned_for).

A small network's products are too small to split (each thread's block of a 64 × 64
layer is a few µs of BLAS behind a fork and a join, five times a step). Split the
samples instead: part p of P takes samples ⌊p·nb/P⌋ … ⌊(p+1)·nb/P⌋ − 1 of the minibatch
and runs the whole serial step on them, gather to backward, on one thread — one
parallel region per step — with its loss gradient at the output scaled by its share
b_p/nb (backpropagation is linear, so its dW, db are its samples' share of the
minibatch's). Then

    grads = Σ_p grads_p        (in the order p = 0, 1, …, P − 1, element by element)

and the optimizer updates from ``grads`` as in any plan. P = split_parts(net.parts, cap),
from the pool's thread count at launch (kernels._matmul.PARTS), not the threads in use:
the result does not depend on set_num_threads, nor on the threads fit runs a chunk on
(fastnn.threads.ThreadChooser). With one part (a pool of one thread) the step is the
whole minibatch's, bit for bit, through the same compiled kernels. BatchNorm (batch statistics) and Dropout
(masks over the whole minibatch) are not split.

The workspace of a split plan (``workspace_size``) holds P part workspaces of
⌈cap/P⌉ samples each, then the gradients of parts 1 … P − 1 (part 0's are ``grads``);
``acc`` holds each part's loss sum and correct count.
"""
import numpy as np

from ._jit import internal_overload, kernel
from ._layout import Network
from ._network import (TRAIN_UPDATE, Buffers, correct_predictions, gather_batch,
                       minibatch_weight, output_view, part_size, target_view, zero)
from ._passes import weighted_share
from ._plan import Plan, plan_choices
from ._tasks import run, unpack

#: parameters per block of the parallel sum of the parts' gradients
SUM_BLOCK = 1 << 14


def _part_plan(plan):  # pragma: no cover - replaced by the overload
    raise NotImplementedError


@internal_overload(_part_plan)
def _part_plan_impl(plan):
    """The plan each part runs: the same kinds, on one thread (no split, serial products)."""
    choices = plan_choices(plan)
    if choices is None:
        return None
    part = Plan(**{**choices, "split": False, "parallel": False})
    cls, values = type(part), tuple(part)
    return lambda plan: cls(*values)


@kernel
def _part(p, args):
    """Part p's gather, forward, loss (its gradient scaled by its share), backward, its
    gradient in ``grads`` (part 0) or the workspace; its loss sum and correct count in
    acc[p], acc[P + p]."""
    passes, net, buf, X, T, perm, begin, nb, P, part, size, step, sw, weight = unpack(args)
    lo = begin + p * nb // P
    mine = begin + (p + 1) * nb // P - lo
    n = buf.grads.shape[0]
    g = buf.grads if p == 0 else buf.ws[P * size + (p - 1) * n:P * size + p * n]
    own = Buffers(buf.params, g, buf.state, buf.stats, buf.ws[p * size:(p + 1) * size],
                  buf.acc)
    if mine == 0:
        zero(g)
        buf.acc[p] = 0.0
        buf.acc[P + p] = 0.0
        return
    Tb = target_view(own.ws, net, part, mine)
    gather_batch(X, T, perm, lo, output_view(own.ws, net, part, 0, mine), Tb)
    loss = weighted_share(passes, net, own, part, mine, np.int64(TRAIN_UPDATE), step,
                          mine / nb, sw, perm, lo, nb, weight)
    buf.acc[p] = loss * mine
    Y = output_view(own.ws, net, part, net.sizes.shape[0] - 1, mine)
    buf.acc[P + p] = correct_predictions(net.plan, Y, Tb)


@kernel
def _sum_block(q, args):
    """grads += the parts' gradients stored at ws[offset:] (parts 1 … P − 1), in part
    order, over parameters q·SUM_BLOCK … (q + 1)·SUM_BLOCK − 1."""
    grads, ws, offset, P = unpack(args)
    n = grads.shape[0]
    for p in range(1, P):
        part = ws[offset + (p - 1) * n:offset + p * n]
        for i in range(q * SUM_BLOCK, min(n, (q + 1) * SUM_BLOCK)):
            grads[i] += part[i]


@kernel
def split_minibatch(passes, net, buf, X, T, perm, begin, nb, cap, step, total, correct, sw):
    """The gradient of the minibatch of samples perm[begin:begin+nb] in ``buf.grads``,
    its parts across threads; returns (total + its loss sum, correct + its correct
    predictions). ``sw``: the samples' weights (n,) or None."""
    P, part, size = part_size(net, cap)
    part_net = Network(*net[:-1], _part_plan(net.plan))
    weight = minibatch_weight(sw, perm, begin, nb)
    run(_part, P, (passes, part_net, buf, X, T, perm, begin, nb, P, part, size, step, sw,
                   weight))
    run(_sum_block, (buf.grads.shape[0] + SUM_BLOCK - 1) // SUM_BLOCK,
        (buf.grads, buf.ws, P * size, P))
    for p in range(P):
        total += buf.acc[p]
        correct += np.int64(buf.acc[P + p])
    return total, correct
