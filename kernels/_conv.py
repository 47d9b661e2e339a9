"""Convolution and max-pooling of a minibatch stored as the dense layers store theirs:
features × batch, column j one sample, its features channel-major as in PyTorch's
(C, H, W) order (a 1-D signal is H = 1). A convolution is lowered to one matrix product
over the whole minibatch (docs/design.md, "Convolutions"):

    cols  (K × nb·P)   cols[(ci, ky, kx), j·P + (oy, ox)] = X[(ci, oy·sh + ky − ph,
                       ox·sw + kx − pw), j], 0 outside the input           ``im2col``
    lin   (c_out × nb·P) = W (c_out × K) · cols                             the product
    Y[(co, oy, ox), j] = lin[co, j·P + (oy, ox)] + b[co]                    ``unfold_bias``

with K = c_in·kh·kw and P = h_out·w_out. Backward, from D = dL/dY:

    lin[co, j·P + p] = D[(co, p), j],  db[co] = Σ_{j,p} lin[co, j·P + p]    ``fold_bias``
    dW = lin · colsᵀ,  cols = Wᵀ · lin,  dX = col2im(cols)                ``col2im``: the
                                                                          adjoint of im2col

Max-pooling keeps, per output, the offset of its window's maximum (the first, on ties) in
``arg`` (stored in the workspace's float dtype: exact for windows of up to 2²⁴ elements);
its backward adds each gradient to that element.

A geometry ``g`` is the start of a row of ``Network.table``: (c_in, h_in, w_in, c_out, h_out, w_out,
kh, kw, sh, sw, ph, pw) — channels, height and width of the input and the output, the
window, the strides and the zero padding (pooling has no padding and c_out = c_in).
"""
import numpy as np

from ._jit import kernel

#: the columns of a geometry row
C_IN, H_IN, W_IN, C_OUT, H_OUT, W_OUT, KH, KW, SH, SW, PH, PW = range(12)
GEOMETRY_COLUMNS = 12


@kernel(inline="always")
def geometry(g):
    """The 12 numbers of a geometry row, in order."""
    return (g[C_IN], g[H_IN], g[W_IN], g[C_OUT], g[H_OUT], g[W_OUT], g[KH], g[KW], g[SH], g[SW],
            g[PH], g[PW])


@kernel
def im2col(X, g, cols):
    """cols[(ci, ky, kx), j·P + (oy, ox)] = X[(ci, oy·sh + ky − ph, ox·sw + kx − pw), j] for
    X (c_in·h_in·w_in × nb, column-major) and cols (K × nb·P, row-major); 0 in the padding."""
    c_in, h_in, w_in, _, h_out, w_out, kh, kw, sh, sw, ph, pw = geometry(g)
    P, nb = h_out * w_out, X.shape[1]
    zero = cols.dtype.type(0)
    for j in range(nb):
        x = X[:, j]
        for ci in range(c_in):
            for ky in range(kh):
                for kx in range(kw):
                    row = cols[(ci * kh + ky) * kw + kx]
                    lo, hi = _valid(kx - pw, sw, w_in, w_out)
                    for oy in range(h_out):
                        out = j * P + oy * w_out
                        iy = oy * sh + ky - ph
                        if iy < 0 or iy >= h_in:
                            for ox in range(w_out):
                                row[out + ox] = zero
                            continue
                        base = (ci * h_in + iy) * w_in + kx - pw
                        for ox in range(lo):
                            row[out + ox] = zero
                        for ox in range(lo, hi):
                            row[out + ox] = x[base + ox * sw]
                        for ox in range(hi, w_out):
                            row[out + ox] = zero


@kernel(inline="always")
def _valid(shift, stride, w_in, w_out):
    """The range [lo, hi) of output columns ox whose input column ox·stride + shift lies
    inside [0, w_in)."""
    lo = 0
    while lo < w_out and lo * stride + shift < 0:
        lo += 1
    hi = w_out
    while hi > lo and (hi - 1) * stride + shift >= w_in:
        hi -= 1
    return lo, hi


@kernel
def col2im(cols, g, dX):
    """dX = im2colᵀ(cols): dX = 0, then each cols[(ci, ky, kx), j·P + (oy, ox)] inside the
    input added to dX[(ci, oy·sh + ky − ph, ox·sw + kx − pw), j]. Per sample, in a fixed
    order: the same bits on any thread count."""
    c_in, h_in, w_in, _, h_out, w_out, kh, kw, sh, sw, ph, pw = geometry(g)
    P, nb = h_out * w_out, dX.shape[1]
    zero = dX.dtype.type(0)
    for j in range(nb):
        dx = dX[:, j]
        for i in range(dx.shape[0]):
            dx[i] = zero
        for ci in range(c_in):
            for ky in range(kh):
                for kx in range(kw):
                    row = cols[(ci * kh + ky) * kw + kx]
                    lo, hi = _valid(kx - pw, sw, w_in, w_out)
                    for oy in range(h_out):
                        iy = oy * sh + ky - ph
                        if iy < 0 or iy >= h_in:
                            continue
                        out = j * P + oy * w_out
                        base = (ci * h_in + iy) * w_in + kx - pw
                        for ox in range(lo, hi):
                            dx[base + ox * sw] += row[out + ox]


@kernel
def unfold_bias(lin, b, Y):
    """Y[(co, p), j] = lin[co, j·P + p] + b[co]: the product's (c_out × nb·P) output as the
    minibatch's columns (Y column-major, c_out·P × nb), with the bias of each channel."""
    c_out, nb = lin.shape[0], Y.shape[1]
    P = Y.shape[0] // c_out
    for j in range(nb):
        for co in range(c_out):
            bias = b[co]
            for p in range(P):
                Y[co * P + p, j] = lin[co, j * P + p] + bias


@kernel
def fold_bias(D, lin, db):
    """lin[co, j·P + p] = D[(co, p), j] (D column-major, c_out·P × nb; lin c_out × nb·P) and
    db[co] = Σ_{j,p} D[(co, p), j], summed in that order."""
    c_out, nb = lin.shape[0], D.shape[1]
    P = D.shape[0] // c_out
    for co in range(c_out):
        s = np.float64(0.0)
        for j in range(nb):
            for p in range(P):
                v = D[co * P + p, j]
                lin[co, j * P + p] = v
                s += v
        db[co] = s


@kernel
def maxpool_forward(X, g, Y, arg):
    """Y[(c, oy, ox), j] = max of X over the window at (oy·sh, ox·sw) of channel c, and
    arg[(c, oy, ox), j] its offset ky·kw + kx in the window (the first maximum on ties).
    X column-major (c·h_in·w_in × nb); Y and arg (c·h_out·w_out × nb)."""
    c, h_in, w_in, _, h_out, w_out, kh, kw, sh, sw, _, _ = geometry(g)
    for j in range(X.shape[1]):
        x = X[:, j]
        for ci in range(c):
            for oy in range(h_out):
                for ox in range(w_out):
                    start = (ci * h_in + oy * sh) * w_in + ox * sw
                    best, where = x[start], 0
                    for ky in range(kh):
                        for kx in range(kw):
                            v = x[start + ky * w_in + kx]
                            if v > best:
                                best, where = v, ky * kw + kx
                    o = (ci * h_out + oy) * w_out + ox
                    Y[o, j] = best
                    arg[o, j] = where


@kernel
def maxpool_backward(D, arg, g, dX):
    """dX = 0, then each D[(c, oy, ox), j] added to the element of its window that was the
    maximum (``arg``, from maxpool_forward)."""
    c, h_in, w_in, _, h_out, w_out, _, kw, sh, sw, _, _ = geometry(g)
    zero = dX.dtype.type(0)
    for j in range(D.shape[1]):
        dx = dX[:, j]
        for i in range(dx.shape[0]):
            dx[i] = zero
        for ci in range(c):
            for oy in range(h_out):
                for ox in range(w_out):
                    o = (ci * h_out + oy) * w_out + ox
                    where = int(arg[o, j])
                    ky, kx = where // kw, where % kw
                    dx[(ci * h_in + oy * sh + ky) * w_in + ox * sw + kx] += D[o, j]
