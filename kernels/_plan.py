"""A plan: which kinds of block, loss and update a model's kernels run, as a type.

Numba compiles every branch of a kernel, taken or not: a pass that chose its
optimizer, loss or remedy by a run-time code would compile all of them for every model
(the cold compile of a plain regressor trained by Adam was half BatchNorm, Dropout,
LAMB, clipping and the losses it never used). A ``Plan`` records the kinds a model
uses; it travels in the tables (``Network.plan``, ``Update.plan``) and each set of
choices is a type of its own, so kernels are compiled once per plan — and per dtype, as for any
argument — and ``by_plan`` picks a kernel from a small table *while compiling*: the
kernels of kinds a model does not use are never compiled for it.

    apply_rule = by_plan("rule", {SGD: sgd_rule, ADAM: adam_rule})
    apply_rule(upd.plan, params, grads)      # sgd_rule(params, grads) when plan.rule == SGD

A table value that is not a kernel is the constant the call returns (None: nothing to
do). Called from Python, the selector looks the kernel up at run time.
"""
import functools
import inspect
from collections import namedtuple

from numba import typeof
from numba.core import types
from numba.core.imputils import lower_builtin
from numba.core.typing import signature
from numba.extending import type_callable


class Plan(tuple):
    """An immutable set of named choices (bools and small integer codes).

    ``Plan(norm=True, loss=2)`` is an instance of the plan class of exactly these
    choices: a namedtuple subclass named by them (``Plan__loss_i2__norm_b1``), made once
    per process. Numba types a namedtuple by its class and recognises its class by name
    in the fast argument check of every call (a few µs; an object Numba cannot
    fingerprint would cost each call ~100 µs of Python typing), so each plan is a type
    of its own. The values ride along as data the kernels never read."""

    __slots__ = ()

    def __new__(cls, **choices):
        items = tuple(sorted(choices.items()))
        for name, value in items:
            if not name.isidentifier() or name.startswith("_") or "__" in name:
                raise ValueError(f"plan choice {name!r}: a name without leading or double "
                                 f"underscores")
            if not isinstance(value, (bool, int)):
                raise TypeError(f"plan choice {name!r} must be a bool or an int, "
                                f"got {type(value).__name__}")
        return _plan_class(items)(*(value for _, value in items))

    def __repr__(self):
        return "Plan(" + ", ".join(f"{k}={v!r}" for k, v in self.choices.items()) + ")"


def _class_name(items):
    return "Plan__" + "__".join(f"{k}_{'b' if isinstance(v, bool) else 'i'}{int(v)}"
                                for k, v in items)


#: where plan classes say they live: the public package, whose ``__getattr__`` recreates
#: them by name, so that pickles of them (Numba's cache indices) survive module renames
_PUBLIC_MODULE = __name__.rpartition(".")[0]


@functools.lru_cache(maxsize=None)
def _plan_class(items):
    name = _class_name(items)
    fields = namedtuple(name, [k for k, _ in items])
    return type(name, (fields, Plan), {"__slots__": (), "__module__": _PUBLIC_MODULE,
                                       "__qualname__": name, "choices": dict(items),
                                       "__new__": fields.__new__, "__repr__": Plan.__repr__})


def plan_class(name):
    """The plan class named ``name`` (unpickling the signatures in Numba's cache index:
    ``fastnn.kernels.__getattr__``)."""
    if not name.startswith("Plan__"):
        raise AttributeError(name)
    items = []
    for part in name[len("Plan__"):].split("__"):
        key, code = part.rsplit("_", 1)
        value = int(code[1:])
        items.append((key, bool(value) if code[0] == "b" else value))
    return _plan_class(tuple(items))


def plan_choices(ty):
    """The choices of a plan's Numba type (None for any other type)."""
    if isinstance(ty, types.BaseNamedTuple) and issubclass(ty.instance_class, Plan):
        return ty.instance_class.choices
    return None


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

    def entry_of(choices):
        values = tuple(choices[name] for name in names)
        key = values if len(names) > 1 else values[0]
        if key not in table:
            raise ValueError(f"no kernel for {dict(zip(names, values))} in this table")
        return table[key]

    def select(plan, *args):
        entry = entry_of(plan.choices)
        return entry(*args) if callable(entry) else entry

    @type_callable(select)
    def _type_select(context):
        def typer(plan, *args):
            choices = plan_choices(plan)
            if choices is None:
                return None
            typer.pysig = _positional(1 + len(args))   # lowered with flat arguments
            entry = entry_of(choices)
            if not callable(entry):
                return signature(types.none if entry is None else typeof(entry), plan, *args)
            inner = context.resolve_value_type(entry).get_call_type(context, args, {})
            return None if inner is None else signature(inner.return_type, plan, *inner.args)
        return typer

    @lower_builtin(select, types.BaseNamedTuple, types.VarArg(types.Any))
    def _lower_select(context, builder, sig, args):
        entry = entry_of(plan_choices(sig.args[0]))
        if entry is None:
            return context.get_dummy_value()
        if not callable(entry):
            return context.get_constant(sig.return_type, entry)
        kernel = context.typing_context.resolve_value_type(entry)
        call = context.get_function(kernel, signature(sig.return_type, *sig.args[1:]))
        return call(builder, args[1:])

    select.__doc__ = f"``table[plan.{'/'.join(names)}](*args)`` chosen at compile time."
    return select
