"""Parallel loops without a parallel region of their own: one region, compiled once.

Numba compiles every ``prange`` loop into a parallel region of its own — a gufunc typed,
lowered and optimised apart, a few tenths of a second each — and every compiled function
holding one pays that again whenever it compiles: each plan of a model, each new loss or
optimizer. fastnn's parallel loops are all of one shape: tasks 0 … n − 1, each working
on its own part of the arrays. So there is a single region, ``run_tasks`` (an entry kernel,
cached on disk once per machine), that runs ``task(i, args)`` for i in 0 … n − 1 across
the threads, and a parallel loop is a plain kernel for one task, called through it:

    @kernel
    def _scale_task(q, args):                 # task q of n
        x, factor = unpack(args)
        ...

    run(_scale_task, n, (x, factor))          # inside any kernel

``run`` puts the arguments in a tuple on the caller's stack and passes the task's
address and a pointer to it (``call_address`` calls a compiled kernel by address; the
separately compiled passes of kernels._passes are called the same way); the task kernel is compiled for that tuple's type, link-only,
inside its caller, like any other kernel call. Numba's ``prange`` splits 0 … n − 1 into
one contiguous range per thread as before: a task's result does not depend on the thread
that ran it, so neither does any bit of the loops' results.
"""
from numba import prange
from numba.core import cgutils, types
from numba.core.typed_passes import _reload_parfors
from numba.core.typing import signature
from numba.extending import intrinsic

from ._jit import kernel


@intrinsic
def _on_stack(typingctx, value):
    """A pointer to a copy of ``value`` (a tuple) in the calling function's stack frame."""
    def codegen(context, builder, sig, args):
        model = context.data_model_manager[value]   # in memory: its data representation
        return cgutils.alloca_once_value(builder, model.as_data(builder, args[0]))
    return types.CPointer(value)(value), codegen


@intrinsic
def unpack(typingctx, pointer):
    """The tuple a task's ``args`` points to."""
    if not isinstance(pointer, types.CPointer):
        return None

    def codegen(context, builder, sig, args):
        model = context.data_model_manager[pointer.dtype]
        return model.from_data(builder, builder.load(args[0]))
    return pointer.dtype(pointer), codegen


@intrinsic
def _address_of(typingctx, task, pointer):
    """The address of kernel ``task`` compiled for (int64, ``pointer``), its code linked
    into the caller."""
    if not isinstance(task, types.Dispatcher):
        return None
    arg_types = (types.int64, pointer)
    dispatcher = task.dispatcher
    dispatcher.compile(arg_types)
    result = dispatcher.overloads[arg_types]

    def codegen(context, builder, sig, args):
        library = context.active_code_library
        library.add_linking_library(result.library)
        # run_tasks starts Numba's threads where it is compiled, but a caller that links a
        # run_tasks loaded from the cache (whose library forgets that) and is cached in
        # turn would run in a later process before any thread exists: have every caller
        # start them when it is loaded
        library._reload_init.add(_reload_parfors)
        fn = context.declare_function(builder.module, result.fndesc)
        return builder.ptrtoint(fn, cgutils.intp_t)
    return signature(types.int64, task, pointer), codegen


@intrinsic
def call_address(typingctx, address, args):
    """Call the compiled kernel at ``address`` (Numba's calling convention, no return
    value) with the elements of the tuple ``args``; an exception it raises propagates.
    The caller answers for the kernel being compiled for these argument types."""
    if not isinstance(args, types.BaseTuple):
        return None
    arg_types = tuple(args.types)

    def codegen(context, builder, sig, llargs):
        values = [builder.extract_value(llargs[1], i) for i in range(len(arg_types))]
        fnty = context.call_conv.get_function_type(types.none, arg_types)
        fn = builder.inttoptr(llargs[0], fnty.as_pointer())
        status, _ = context.call_conv.call_function(builder, fn, types.none, arg_types, values)
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return context.get_dummy_value()
    return types.none(address, args), codegen


@intrinsic
def _as_voidptr(typingctx, pointer):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], cgutils.voidptr_t)
    return types.voidptr(pointer), codegen


@kernel(entry=True, parallel=True)
def run_tasks(address, n, args):
    """task(i, args) for i in 0 … n − 1 across Numba's threads (``address``: a task
    kernel's, from ``run``)."""
    for i in prange(n):
        call_address(address, (i, args))   # a task takes (int64, a pointer to its tuple)


@kernel(inline="always")
def run(task, n, args):
    """task(i, pointer to ``args``) for i in 0 … n − 1 across Numba's threads."""
    pointer = _on_stack(args)
    run_tasks(_address_of(task, pointer), n, _as_voidptr(pointer))
