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
from numba import prange

from ._jit import internal_overload, kernel
from ._layout import Network
from ._network import (TRAIN_UPDATE, Buffers, correct_predictions, forward_backward_share,
                       gather_batch, output_view, part_size, target_view)
from ._plan import Plan, plan_choices

#: Network's fields before ``seg`` and ``plan`` (the tables a parallel region can take:
#: Numba's parallel regions take tuples of arrays and scalars, not tuples nested in them)
_HEAD = Network._fields.index("seg")
assert Network._fields[_HEAD:] == ("seg", "plan")

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


@kernel(parallel=True)
def _parts(head, seg, plan, params, grads, state, stats, ws, acc, X, T, perm, begin, nb, cap,
           step):
    """Each part's gather, forward, loss (its gradient scaled by its share), backward,
    on a thread of its own; its loss sum and correct count in acc[p], acc[P + p]."""
    P, part, size = part_size(Network(*head, seg, plan), cap)
    for p in prange(P):
        net = Network(*head, seg, plan)
        lo = begin + p * nb // P
        mine = begin + (p + 1) * nb // P - lo
        g = grads if p == 0 else ws[P * size + (p - 1) * grads.shape[0]:
                                     P * size + p * grads.shape[0]]
        buf = Buffers(params, g, state, stats, ws[p * size:(p + 1) * size], acc)
        if mine == 0:
            g[:] = 0
            acc[p] = 0.0
            acc[P + p] = 0.0
        else:
            Xb = output_view(buf.ws, net, part, 0, mine)
            Tb = target_view(buf.ws, net, part, mine)
            gather_batch(X, T, perm, lo, Xb, Tb)
            loss = forward_backward_share(net, buf, Xb, Tb, part, np.int64(TRAIN_UPDATE), step,
                                          mine / nb)
            acc[p] = loss * mine
            Y = output_view(buf.ws, net, part, net.sizes.shape[0] - 1, mine)
            acc[P + p] = correct_predictions(net.plan, Y, Tb)


@kernel(parallel=True)
def _sum_parts(grads, ws, offset, P):
    """grads += the parts' gradients stored at ws[offset:] (parts 1 … P − 1), in part
    order, over blocks of SUM_BLOCK parameters across threads."""
    n = grads.shape[0]
    for q in prange((n + SUM_BLOCK - 1) // SUM_BLOCK):
        for p in range(1, P):
            part = ws[offset + (p - 1) * n:offset + p * n]
            for i in range(q * SUM_BLOCK, min(n, (q + 1) * SUM_BLOCK)):
                grads[i] += part[i]


@kernel
def split_minibatch(net, buf, X, T, perm, begin, nb, cap, step, total, correct):
    """The gradient of the minibatch of samples perm[begin:begin+nb] in ``buf.grads``,
    its parts across threads; returns (total + its loss sum, correct + its correct
    predictions)."""
    P, part, size = part_size(net, cap)
    _parts(net[:_HEAD], net.seg, _part_plan(net.plan), buf.params, buf.grads, buf.state,
           buf.stats, buf.ws, buf.acc, X, T, perm, begin, nb, cap, step)
    _sum_parts(buf.grads, buf.ws, P * size, P)
    for p in range(P):
        total += buf.acc[p]
        correct += np.int64(buf.acc[P + p])
    return total, correct
