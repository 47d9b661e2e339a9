"""Views of a contiguous array's memory as a vector or matrix: the three ways the
network's flat vectors are cut (docs/design.md, "The model is data").

    segment(flat, offset, n)             flat[offset:offset + n]
    row_major(flat, offset, rows, cols)  the (rows, cols) C-ordered matrix at flat[offset:]
    column_major(flat, offset, rows, cols)
                                         the (rows, cols) F-ordered matrix at flat[offset:]
                                         (column j holds sample j)
    any_layout(a)                        a itself, typed as an array of any layout (one
                                         compile of a callee for C- and F-ordered a)

``flat`` is any C-contiguous array, read as the vector of its elements. Called from
Python they are slicing and reshaping, views of NumPy and CUDA device arrays alike
(kernels.cuda cuts its device buffers with them). Inside a kernel each is lowered straight to
a pointer offset and the new shape and strides (Numba's low-level extension API): a
slice and a reshape would compile their bounds clamping and size checks — with the
error message the reshape formats — at every one of the few hundred places the passes
cut a view, a second or two of every cold compile, to guard offsets the layout
(kernels._layout) already makes consistent. There are no bounds checks: callers pass
offsets and sizes from the layout tables only.
"""
from numba.core import types
from numba.core.imputils import impl_ret_borrowed, lower_builtin
from numba.extending import type_callable
from numba.np.arrayobj import make_array, populate_array


def segment(flat, offset, n):
    """flat[offset:offset + n] of the elements of the C-contiguous ``flat``."""
    return flat.reshape(-1)[offset:offset + n]


def row_major(flat, offset, rows, cols):
    """The (rows, cols) C-ordered matrix stored at flat[offset:]."""
    return flat.reshape(-1)[offset:offset + rows * cols].reshape(rows, cols)


def column_major(flat, offset, rows, cols):
    """The (rows, cols) F-ordered matrix stored at flat[offset:]. (A reshape, not ``.T``
    of the C-ordered (cols, rows) one: on a CUDA device array ``.T`` is a copy.)"""
    return flat.reshape(-1)[offset:offset + rows * cols].reshape(rows, cols, order="F")


def any_layout(a):
    """``a`` itself (inside a kernel: typed with layout 'A')."""
    return a


def _view_type(flat, sizes, ndim, layout):
    if (isinstance(flat, types.Array) and flat.layout == "C"
            and all(isinstance(s, types.Integer) for s in sizes)):
        return types.Array(flat.dtype, ndim, layout)
    return None


@type_callable(segment)
def _type_segment(context):
    return lambda flat, offset, n: _view_type(flat, (offset, n), 1, "C")


@type_callable(row_major)
def _type_row_major(context):
    return lambda flat, offset, rows, cols: _view_type(flat, (offset, rows, cols), 2, "C")


@type_callable(column_major)
def _type_column_major(context):
    return lambda flat, offset, rows, cols: _view_type(flat, (offset, rows, cols), 2, "F")


def _lower_view(context, builder, sig, args, geometry):
    """The view of sig.return_type at flat.data + offset; ``geometry(builder, *sizes,
    itemsize)`` gives its (shape, strides) in intp values."""
    flat_type, flat = sig.args[0], args[0]
    sizes = [context.cast(builder, v, t, types.intp) for v, t in zip(args[1:], sig.args[1:])]
    src = make_array(flat_type)(context, builder, flat)
    view = make_array(sig.return_type)(context, builder)
    itemsize = context.get_constant(types.intp, context.get_abi_sizeof(
        context.get_data_type(flat_type.dtype)))
    shape, strides = geometry(builder, *sizes[1:], itemsize)
    populate_array(view, data=builder.gep(src.data, [sizes[0]]), shape=shape, strides=strides,
                   itemsize=itemsize, meminfo=src.meminfo, parent=src.parent)
    return impl_ret_borrowed(context, builder, sig.return_type, view._getvalue())


@lower_builtin(segment, types.Array, types.Integer, types.Integer)
def _lower_segment(context, builder, sig, args):
    return _lower_view(context, builder, sig, args, lambda b, n, item: ([n], [item]))


@lower_builtin(row_major, types.Array, types.Integer, types.Integer, types.Integer)
def _lower_row_major(context, builder, sig, args):
    return _lower_view(context, builder, sig, args,
                       lambda b, rows, cols, item: ([rows, cols], [b.mul(cols, item), item]))


@lower_builtin(column_major, types.Array, types.Integer, types.Integer, types.Integer)
def _lower_column_major(context, builder, sig, args):
    return _lower_view(context, builder, sig, args,
                       lambda b, rows, cols, item: ([rows, cols], [item, b.mul(rows, item)]))


@type_callable(any_layout)
def _type_any_layout(context):
    return lambda a: a.copy(layout="A") if isinstance(a, types.Array) else None


@lower_builtin(any_layout, types.Array)
def _lower_any_layout(context, builder, sig, args):
    return impl_ret_borrowed(context, builder, sig.return_type, args[0])
