"""Reverse-mode differentiation on scalars, as a neural-networks course derives it.

Each operation records its parents with the local derivatives dg/dparent; ``backward``
visits the graph once in reverse topological order, accumulating
    df/dx_i = sum over children x_j of df/dx_j · dg_j/dx_i
so one pass gives the derivative of the output with respect to every input. It is
the slow, obviously-correct oracle the tests hold the compiled backprop against.
"""
import math


class Var:
    """A scalar in a computation graph; ``grad`` is d(output)/d(self) after ``backward``."""

    __slots__ = ("value", "grad", "_parents")

    def __init__(self, value, parents=()):
        self.value = float(value)
        self.grad = 0.0
        self._parents = parents  # ((parent, d self / d parent), ...)

    # forward rule and local derivative side by side
    def __add__(self, other):
        other = _var(other)
        return Var(self.value + other.value, ((self, 1.0), (other, 1.0)))

    def __mul__(self, other):
        other = _var(other)
        return Var(self.value * other.value, ((self, other.value), (other, self.value)))

    def __neg__(self):
        return self * -1.0

    def __sub__(self, other):
        return self + (-_var(other))

    def __truediv__(self, other):
        return self * _var(other) ** -1.0

    def __pow__(self, p):
        return Var(self.value ** p, ((self, p * self.value ** (p - 1.0)),))

    __radd__ = __add__
    __rmul__ = __mul__

    def __rsub__(self, other):
        return _var(other) - self

    def __rtruediv__(self, other):
        return _var(other) / self

    def backward(self):
        """Fill ``grad`` of every node this one depends on (d self / d node)."""
        order, seen = [], set()

        def visit(node):
            if id(node) not in seen:
                seen.add(id(node))
                for parent, _ in node._parents:
                    visit(parent)
                order.append(node)

        visit(self)
        for node in order:
            node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):
            for parent, local in node._parents:
                parent.grad += node.grad * local

    def __repr__(self):
        return f"Var({self.value:g}, grad={self.grad:g})"


def _var(x):
    return x if isinstance(x, Var) else Var(x)


def exp(x):
    e = math.exp(x.value)
    return Var(e, ((x, e),))


def log(x):
    return Var(math.log(x.value), ((x, 1.0 / x.value),))


def sin(x):
    return Var(math.sin(x.value), ((x, math.cos(x.value)),))


def sqrt(x):
    r = math.sqrt(x.value)
    return Var(r, ((x, 0.5 / r),))


def tanh(x):
    t = math.tanh(x.value)
    return Var(t, ((x, 1.0 - t * t),))


def relu(x):
    return Var(max(x.value, 0.0), ((x, 1.0 if x.value > 0 else 0.0),))
