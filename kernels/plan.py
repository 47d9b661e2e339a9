"""A plan: which kinds of block, loss and update a model's kernels run, as a type.

Numba compiles every branch of a kernel, taken or not: a pass that chose its
optimizer, loss or remedy by a run-time code would compile all of them for every model
(the cold compile of a plain regressor trained by Adam was half BatchNorm, Dropout,
LAMB, clipping and the losses it never used). A ``Plan`` records the kinds a model
uses; it travels in the tables (``Network.plan``, ``Update.plan``) and Numba types it by
its contents, so kernels are compiled once per plan — and per dtype, as for any
argument — and ``by_plan`` picks a kernel from a small table *while compiling*: the
kernels of kinds a model does not use are never compiled for it.

    apply_rule = by_plan("rule", {SGD: sgd_rule, ADAM: adam_rule})
    apply_rule(upd.plan, params, grads)      # sgd_rule(params, grads) when plan.rule == SGD

A table value that is not a kernel is the constant the call returns (None: nothing to
do). Called from Python, the selector looks the kernel up at run time.
"""
import inspect

from numba import typeof
from numba.core import types
from numba.core.imputils import lower_builtin
from numba.core.typing import signature
from numba.extending import (NativeValue, models, register_model, type_callable, typeof_impl,
                             unbox)


class Plan:
    """An immutable set of named choices (bools and small integer codes)."""

    __slots__ = ("items",)

    def __init__(self, **choices):
        for name, value in choices.items():
            if not isinstance(value, (bool, int)):
                raise TypeError(f"plan choice {name!r} must be a bool or an int, "
                                f"got {type(value).__name__}")
        object.__setattr__(self, "items", tuple(sorted(choices.items())))

    def __getattr__(self, name):
        return _choice(self, name)

    def __setattr__(self, name, value):
        raise AttributeError("a Plan is immutable")

    def __eq__(self, other):
        return isinstance(other, Plan) and self.items == other.items

    def __hash__(self):
        return hash(self.items)

    def __repr__(self):
        return "Plan(" + ", ".join(f"{k}={v!r}" for k, v in self.items) + ")"


def _choice(plan, name):
    if name.startswith("__") or name == "items":   # pickling and copying probe these
        raise AttributeError(name)
    for key, value in plan.items:
        if key == name:
            return value
    raise AttributeError(f"{plan!r} has no choice {name!r}")


class PlanType(types.Type):
    """The Numba type of a Plan: the plan itself (it holds no run-time data)."""

    def __init__(self, items):
        self.items = items
        super().__init__(name=repr(Plan(**dict(items))))

    def __getattr__(self, name):
        return _choice(self, name)


@typeof_impl.register(Plan)
def _typeof_plan(value, context):
    return PlanType(value.items)


register_model(PlanType)(models.OpaqueModel)


@unbox(PlanType)
def _unbox_plan(typ, obj, c):
    return NativeValue(c.context.get_dummy_value())


def _positional(n):
    return inspect.Signature([inspect.Parameter(f"a{i}", inspect.Parameter.POSITIONAL_ONLY)
                              for i in range(n)])


def by_plan(choice, table):
    """A function ``select(plan, *args)`` calling ``table[plan.<choice>](*args)``: chosen
    at compile time inside kernels, at run time from Python. ``choice`` names one choice
    or a tuple of them (the key is then the tuple of their values).

    Inside a kernel the call is typed as the chosen kernel's call and lowered to it
    directly: no function of its own to compile per plan."""
    names = (choice,) if isinstance(choice, str) else tuple(choice)

    def entry_of(plan):
        values = tuple(getattr(plan, name) for name in names)
        key = values if len(names) > 1 else values[0]
        if key not in table:
            raise ValueError(f"no kernel for {dict(zip(names, values))} in this table")
        return table[key]

    def select(plan, *args):
        entry = entry_of(plan)
        return entry(*args) if callable(entry) else entry

    @type_callable(select)
    def _type_select(context):
        def typer(plan, *args):
            if not isinstance(plan, PlanType):
                return None
            typer.pysig = _positional(1 + len(args))   # lowered with flat arguments
            entry = entry_of(plan)
            if not callable(entry):
                return signature(types.none if entry is None else typeof(entry), plan, *args)
            inner = context.resolve_value_type(entry).get_call_type(context, args, {})
            return None if inner is None else signature(inner.return_type, plan, *inner.args)
        return typer

    @lower_builtin(select, PlanType, types.VarArg(types.Any))
    def _lower_select(context, builder, sig, args):
        entry = entry_of(sig.args[0])
        if entry is None:
            return context.get_dummy_value()
        if not callable(entry):
            return context.get_constant(sig.return_type, entry)
        kernel = context.typing_context.resolve_value_type(entry)
        call = context.get_function(kernel, signature(sig.return_type, *sig.args[1:]))
        return call(builder, args[1:])

    select.__doc__ = f"``table[plan.{'/'.join(names)}](*args)`` chosen at compile time."
    return select
