"""The forward pass, the backward pass and the update as kernels compiled once and
called by address.

The compiled loops of the model layer (kernels._training, kernels._split,
kernels._allreduce) depend on a model's plan (kernels._plan). Most of their code, and of
their compile time, is in three passes that depend on a few of its choices only: the
passes through the layers on BatchNorm, Dropout and parallel products (the *pass
plan*), the update on the optimizer's plan (rule, clipping, parallel). So these are
compiled apart, as entry kernels of their own (``forward_pass``, ``backward_pass``,
``update_pass(plan)``), each cached on disk per plan and dtype, and the loops call them by
address, the update's plan left out of the loop's own types: a model that differs from a
cached one in its loss compiles a loop of a few hundred lines; one that differs in its
optimizer, clipping or schedule compiles its update only.

``passes_for(net, buf, upd)`` (Python) gives the ``Passes`` of a network, its buffers and
update: each pass's address and a key of the argument types it was compiled for.
``call_forward``, ``call_backward`` and ``call_update`` (in kernels) compare that key with
the types at the call — known when the loop compiles — and raise on a mismatch instead of
calling code compiled for other arguments. The passes through the layers read the
minibatch's inputs from the workspace (A_0, where ``gather_batch`` puts them) and leave
the outputs and gradients where kernels._network's ``forward`` and ``backward`` do.
"""
import functools
import zlib
from collections import namedtuple

import numpy as np
from numba import typeof

from ._jit import internal_overload, kernel, specialized
from ._layout import Network
from ._network import (backward, factor_view, forward, output_gradient, output_view,
                       target_view)
from ._optimizers import Update, optimizer_update
from ._plan import Plan, plan_choices
from ._tasks import call_address

#: the plan choices the passes compile for; the loops' other choices do not reach them
PASS_CHOICES = ("norm", "dropout", "conv", "pool", "parallel")

#: a network's passes: address and argument-type key of each
Passes = namedtuple("Passes", "forward forward_key backward backward_key update update_key")


def pass_plan(plan):
    """The plan of the passes of a network of plan ``plan``."""
    return Plan(**{name: bool(plan.choices.get(name, False)) for name in PASS_CHOICES})


def _pass_network(net):  # pragma: no cover - replaced by the overload
    raise NotImplementedError


@internal_overload(_pass_network)
def _pass_network_impl(net):
    """``net`` with its pass plan (a constant of its own type, chosen while compiling)."""
    choices = plan_choices(net.types[-1])
    if choices is None:
        return None
    plan = pass_plan(Plan(**choices))
    cls, values = type(plan), tuple(plan)
    return lambda net: Network(*net[:-1], cls(*values))


def _types_key(arg_types):
    """A 63-bit key of a tuple of Numba types (the same in every process of one numba)."""
    return np.int64(zlib.crc32(repr(tuple(str(t) for t in arg_types)).encode()) |
                    (len(arg_types) << 32))


def _key_of(args):  # pragma: no cover - replaced by the overload
    raise NotImplementedError


@internal_overload(_key_of)
def _key_of_impl(args):
    key = _types_key(args.types)
    return lambda args: key


@kernel(entry=True)
def forward_pass(net, buf, cap, nb, mode, step, logits):
    """``forward`` of the nb inputs in the workspace's A_0 (kernels._network.forward)."""
    forward(net, buf, output_view(buf.ws, net, cap, 0, nb), cap, mode, step, logits)


@kernel(entry=True)
def backward_pass(net, buf, cap, nb, step):
    """``backward`` of the nb samples of the last forward (kernels._network.backward)."""
    backward(net, buf, output_view(buf.ws, net, cap, 0, nb), cap, step)


@kernel
def call_forward(passes, net, buf, cap, nb, mode, step, logits):
    """forward_pass by address, for ``net``'s pass plan."""
    args = (_pass_network(net), buf, cap, nb, mode, step, logits)
    if passes.forward_key != _key_of(args):
        raise TypeError("fastnn: the forward pass was compiled for other argument types")
    call_address(passes.forward, args)


@kernel
def call_backward(passes, net, buf, cap, nb, step):
    """backward_pass by address, for ``net``'s pass plan."""
    args = (_pass_network(net), buf, cap, nb, step)
    if passes.backward_key != _key_of(args):
        raise TypeError("fastnn: the backward pass was compiled for other argument types")
    call_address(passes.backward, args)


@kernel
def minibatch_share(passes, net, buf, cap, nb, mode, step, share, c):
    """Forward, loss and backward of the nb samples in the workspace (A_0 and T, where
    ``gather_batch`` puts them): returns their mean loss, and puts ``share`` (nb over
    the size of the minibatch they belong to) times their gradient in ``grads`` — their
    part of the minibatch's gradient (the loss gradient at the output scaled before
    backpropagation); ``c``: their loss factors (kernels._losses) or None."""
    call_forward(passes, net, buf, cap, nb, mode, step, net.fused)
    loss = output_gradient(net, buf, target_view(buf.ws, net, cap, nb), cap, share, c)
    call_backward(passes, net, buf, cap, nb, step)
    return loss


@kernel
def weighted_share(passes, net, buf, cap, nb, mode, step, share, sw, perm, begin, size,
                   weight):
    """minibatch_share of the nb samples perm[begin:begin+nb] of a minibatch of ``size``
    samples, weighted by the sample weights ``sw`` whose sum over the minibatch is
    ``weight``: their loss factors c_j = sw_j · size / weight (kernels._losses) written
    into the workspace first. Without weights (sw None), minibatch_share itself."""
    if sw is None:
        return minibatch_share(passes, net, buf, cap, nb, mode, step, share, None)
    c = factor_view(buf.ws, net, cap, nb)
    scale = size / weight if weight > 0.0 else 0.0    # all weights 0: no gradient
    for j in range(nb):
        c[j] = sw[perm[begin + j]] * scale
    return minibatch_share(passes, net, buf, cap, nb, mode, step, share, c)


def _update_pass(head, seg, params, grads, state, step):
    """optimizer_update of the Update (*head, PLAN): each copy made by update_pass has a
    PLAN of its own, a constant when it compiles."""
    optimizer_update(Update(*head, PLAN), seg, params, grads, state, step)  # noqa: F821


@functools.lru_cache(maxsize=None)
def update_pass(plan):
    """The entry kernel ``_update_pass`` for updates of plan ``plan``: a copy of the
    function with PLAN in its globals and a name of its own (its own cache files)."""
    return kernel(specialized(_update_pass, f"update_pass__{type(plan).__name__}", PLAN=plan),
                  entry=True)


@kernel
def call_update(passes, head, seg, params, grads, state, step):
    """The update pass by address: ``optimizer_update`` of Update(*head, its plan)."""
    args = (head, seg, params, grads, state, step)
    if passes.update_key != _key_of(args):
        raise TypeError("fastnn: the update pass was compiled for other argument types")
    call_address(passes.update, args)


def _address(dispatcher, arg_types):
    """The address of ``dispatcher``'s code for ``arg_types`` (loaded from the cache or
    compiled now) and the key of those types."""
    dispatcher.compile(arg_types)
    result = dispatcher.overloads[arg_types]
    return (result.library.get_pointer_to_function(result.fndesc.llvm_func_name),
            _types_key(arg_types))


_known = {}


def passes_for(net, buf, upd=None, backward=None):
    """The ``Passes`` of network ``net`` (its pass plan) with buffers ``buf``: the forward
    pass; the backward pass too when ``backward`` (by default, when there is an ``upd``);
    and with ``upd`` the update pass of its plan. A pass not asked for is neither compiled
    nor loaded (its address 0: it must not be called)."""
    backward = upd is not None if backward is None else bool(backward)
    key = (type(net.plan), buf.params.dtype, buf.state.ndim, backward,
           None if upd is None else type(upd.plan))
    passes = _known.get(key)
    if passes is None:
        pass_net = net._replace(plan=pass_plan(net.plan))
        i64 = typeof(np.int64(0))
        common = (typeof(pass_net), typeof(buf), i64, i64)
        addresses = list(_address(forward_pass, common + (i64, i64, typeof(True))))
        addresses += _address(backward_pass, common + (i64,)) if backward else (0, -1)
        if upd is None:
            addresses += (0, -1)
        else:
            addresses += _address(update_pass(upd.plan), (
                typeof(upd[:-1]), typeof(net.seg), typeof(buf.params), typeof(buf.grads),
                typeof(buf.state), i64))
        passes = _known[key] = Passes(*addresses)
    return passes
