"""A network as data: the integer and float tables every kernel reads, grouped in two
named tuples (docs/design.md, "Tables grouped").

A network is L blocks. Block l (0-based) maps A_l (n_l × batch) to A_{l+1}:

    Ã_l  = dropout(A_l, drop[l])             inverted dropout of the block's input
    Z    = W_l · Ã_l                          dense: W_l (n_{l+1} × n_l), row-major
         = conv(W_l, Ã_l)                     convolution: W_l (c_out × c_in·kh·kw)
         = maxpool(Ã_l)                       pooling: no W_l, b_l (kernels._conv)
    Y    = Z + b_l                            plain block
         = γ_l ⊙ (Z − μ)/σ + β_l              BatchNorm block (b_l unused, kept at 0)
    A_{l+1} = f_l(Y)

``Network`` holds, per block: a row of ``table`` (its columns are named below: the
geometry of a convolution or pooling, KIND — DENSE, CONV, POOL —, ACT, NORM (1 for a
BatchNorm block), W's shape, W_OFF/B_OFF (W_l and b_l in ``params``; -1 for pooling),
G_OFF (γ_l in ``params``, β_l right after it), R_OFF (running mean in ``stats``, running
variance after it), and the block's scratch in the workspace), ``momentum``/``eps`` (BatchNorm's), ``drop`` (dropout rate of the block's input);
per activation l = 0..L: ``sizes`` (n_l); the loss code, ``fused`` (last activation and
loss computed as one kernel from the logits), the dropout ``key``; ``plan``, the kinds the
kernels compile for (kernels._plan: ``norm`` and ``dropout``, whether any block has
them, ``loss`` and ``fused``, ``parallel``: products split across Numba's threads, for
a network whose widest layer has PARALLEL_WEIGHTS weights, or, through ``planned_for``,
whose largest product at a batch size has PARALLEL_PRODUCT multiply-adds; ``split``:
training minibatches split by samples across the threads, kernels._split, through
``planned_for``); ``parts``, the blocks of a parallel product and the parts of a split
minibatch at most (the pool's thread count at launch, kernels._matmul.PARTS: data, not
compiled in); ``acc_size`` (2 × the widest BatchNorm layer, and 2 × ``parts`` at
least); and ``seg``, the
``Segments`` of ``params``: one per tensor (W, b, γ, β), with its L1 and L2
coefficients and ``decay`` = 1 where decoupled weight decay applies (weights only).

The workspace ``ws`` of minibatches of at most ``cap`` samples is one flat vector:

    [ X n_0 | T n_L | c 1 | A_1 .. A_L | D_1 .. D_L | per block: Ẑ of BatchNorm, a
      convolution's cols (K·P) and lin (c_out·P), pooling's argmax (n_{l+1}) ] × cap
    [ μ_l, 1/σ_l of BatchNorm blocks (n_{l+1} each) ]

c holds a weighted minibatch's per-sample loss factors (kernels._losses) at
(n_0 + n_L)·cap; A_l and D_l start at ``a_unit[l]`` and ``d_unit[l]`` times ``cap``, Ẑ, cols (and argmax)
and lin at ``table[l, H_UNIT]``, ``table[l, COL_UNIT]`` and ``table[l, LIN_UNIT]`` times
``cap`` (matrices stored column-major: column j is sample j); the per-feature buffers at
``ws_units · cap + table[l, F_OFF]``. D_l holds the loss gradient at A_l. ``acc`` is a float64
scratch of ``acc_size`` for the reductions of BatchNorm and a split minibatch's sums.
"""
from collections import namedtuple

import numpy as np

from ._jit import kernel
from ._conv import GEOMETRY_COLUMNS, H_OUT, W_OUT
from ._matmul import PARTS
from ._plan import Plan

Segments = namedtuple("Segments", "bounds l1 l2 decay")
Network = namedtuple("Network", "sizes table momentum eps drop key loss fused a_unit d_unit "
                                "ws_units ws_fixed parts acc_size seg plan")

#: block kinds: the map from a block's input to its output before bias, BatchNorm and f
DENSE, CONV, POOL = range(3)
#: the columns of ``Network.table``, a row per block, after its 12 geometry numbers
#: (kernels._conv; 0 for a dense block): its kind, activation code, 1 for BatchNorm, W's
#: rows and columns (b has W's rows), where W, b, γ (β after it) lie in ``params`` and the
#: running statistics in ``stats``, and its scratch in the workspace: Ẑ of BatchNorm,
#: a convolution's cols (or pooling's argmax) and lin in units of ``cap``, BatchNorm's
#: per-feature buffers after them (-1: none). One table, not an array per column: each
#: field of ``Network`` is an argument every kernel taking ``net`` passes on (measured:
#: six more arrays there cost bike's cold compile 0.3 s)
(KIND, ACT, NORM, W_ROWS, W_COLS, W_OFF, B_OFF, G_OFF, R_OFF, H_UNIT, COL_UNIT, LIN_UNIT,
 F_OFF) = range(GEOMETRY_COLUMNS, GEOMETRY_COLUMNS + 13)
TABLE_COLUMNS = GEOMETRY_COLUMNS + 13

#: one block as ``make_network`` takes it: its ``kind``, input and output widths (features
#: per sample), ``geom`` (the 12 numbers of kernels._conv for CONV and POOL, None for
#: DENSE), activation code, BatchNorm (``norm``, ``momentum``, ``eps``), the dropout rate
#: of its input and the L1/L2 coefficients of its weights
BlockSpec = namedtuple("BlockSpec", "kind n_in n_out geom act norm momentum eps drop l1 l2")


def _i64(values):
    return np.array(values, dtype=np.int64)


def _f64(values):
    return np.array(values, dtype=np.float64)


def _shapes(spec):
    """(rows and columns of W, workspace units of the block's cols and lin, multiply-adds
    per sample of its product) of a block."""
    if spec.kind == DENSE:
        return spec.n_out, spec.n_in, 0, 0, spec.n_out * spec.n_in
    c_in, _, _, c_out, h_out, w_out, kh, kw = spec.geom[:8]
    if spec.kind == POOL:
        return 0, 0, spec.n_out, 0, 0
    K, P = c_in * kh * kw, h_out * w_out
    return c_out, K, K * P, c_out * P, c_out * K * P


def make_network(blocks, loss, fused, key):
    """The ``Network`` of the ``BlockSpec``s ``blocks``, and the lengths of ``params`` and
    ``stats``."""
    L = len(blocks)
    table = np.full((L, TABLE_COLUMNS), -1, dtype=np.int64)
    bounds, seg_l1, seg_l2, decay, work = [0], [], [], [], []
    n_params = n_stats = 0

    def tensor(length, a1=0.0, a2=0.0, decays=0.0):
        nonlocal n_params
        start = n_params
        n_params += length
        bounds.append(n_params)
        seg_l1.append(a1)
        seg_l2.append(a2)
        decay.append(decays)
        return start

    sizes = [blocks[0].n_in] + [spec.n_out for spec in blocks]
    for l, spec in enumerate(blocks):
        row = table[l]
        row[:GEOMETRY_COLUMNS] = 0 if spec.geom is None else spec.geom
        rows, cols, _, _, macs = _shapes(spec)
        row[KIND], row[ACT], row[NORM], row[W_ROWS], row[W_COLS] = (
            spec.kind, spec.act, int(spec.norm), rows, cols)
        work.append(macs)
        if rows:
            row[W_OFF] = tensor(rows * cols, spec.l1, spec.l2, 1.0)
            row[B_OFF] = tensor(rows)
        if spec.norm:
            row[G_OFF] = tensor(spec.n_out)
            tensor(spec.n_out)
            row[R_OFF] = n_stats
            n_stats += 2 * spec.n_out
    units = sizes[0] + sizes[L] + 1
    a_unit, d_unit = [0], [-1]
    for l in range(1, L + 1):
        a_unit.append(units)
        units += sizes[l]
    for l in range(1, L + 1):
        d_unit.append(units)
        units += sizes[l]
    fixed = 0
    for l, spec in enumerate(blocks):
        row = table[l]
        if spec.norm:
            row[H_UNIT], row[F_OFF] = units, fixed
            units += spec.n_out
            fixed += 2 * spec.n_out
        _, _, col, lin, _ = _shapes(spec)
        if col:
            row[COL_UNIT] = units
            units += col
        if lin:
            row[LIN_UNIT] = units
            units += lin
    widest_norm = max([spec.n_out for spec in blocks if spec.norm] or [0])
    kinds = {spec.kind for spec in blocks}
    net = Network(
        sizes=_i64(sizes), table=table, momentum=_f64([spec.momentum for spec in blocks]),
        eps=_f64([spec.eps for spec in blocks]), drop=_f64([spec.drop for spec in blocks]),
        key=np.uint64(key), loss=np.int64(loss), fused=bool(fused),
        a_unit=_i64(a_unit), d_unit=_i64(d_unit),
        ws_units=np.int64(units), ws_fixed=np.int64(fixed), parts=np.int64(PARTS),
        acc_size=np.int64(max(2 * widest_norm, 2 * PARTS)),
        seg=Segments(_i64(bounds), _f64(seg_l1), _f64(seg_l2), _f64(decay)),
        plan=Plan(norm=any(spec.norm for spec in blocks),
                  dropout=any(spec.drop > 0.0 for spec in blocks), conv=CONV in kinds,
                  pool=POOL in kinds, loss=int(loss), fused=bool(fused),
                  parallel=_parallel(table[:, W_ROWS], table[:, W_COLS], work, 0),
                  split=False))
    return net, n_params, n_stats


#: the widest layer's weight count from which a network's products and updates run on
#: Numba's threads (Plan.parallel; below, one thread has too little work to split)
PARALLEL_WEIGHTS = 1 << 15
#: m·k·n of a step's largest product (the widest layer's weights times the batch) from
#: which a smaller network's products run on Numba's threads too (inference, and the
#: training passes of a network that cannot split). Measured (2 cores, 56-64-64-1 trained
#: by Adam, µs per step serial / parallel products): batch 64 (0.26 M) 57 / 67, 100
#: (0.41 M) 90 / 83, 128 (0.52 M) 105 / 100, 200 (0.82 M) 163 / 128
PARALLEL_PRODUCT = 1 << 19
#: m·k·n of a step's largest product from which a smaller network (widest layer below
#: PARALLEL_WEIGHTS weights) without BatchNorm or Dropout trains with its minibatches split
#: by samples across the threads (Plan.split, kernels._split). Measured (AMD Zen 3, 2
#: cores, 56-64-64-1 by Adam, best µs per step of 20 epochs, serial / parallel products /
#: split): batch 32 (0.13 M) 33 / 35 / 37, 48 (0.20 M) 44 / 46 / 43, 64 (0.26 M)
#: 54 / 55 / 43, 100 (0.41 M) 85 / 77 / 61, 200 (0.82 M) 152 / 114 / 89. mnist's
#: 784-256-128-10 (2^17.6 weights) at 128: 1.19 / 1.07 / 1.21 ms: products stay.
#: The split must also hold up on one thread, where fit runs it when the other threads are
#: busy elsewhere (fastnn.threads.ThreadChooser): measured (AMD Zen 5, median µs per step,
#: serial / split on 2 threads / split on 1): batch 64 35.5 / 37.3 / 45.8 (1.29x serial on
#: one thread), 100 52 / 47 / 63 (1.22x), 128 65 / 53 / 75 (1.15x), 200 98 / 70 / 109
#: (1.11x): from 2^19 (bike's batch 128) it pays on two threads and costs at most 15 % on one
SPLIT_PRODUCT = 1 << 19
#: widest × rows of an inference call (predict, evaluate, validation) from which a smaller
#: network runs it on the parallel plan, whose passes are compiled apart from the serial
#: ones training uses (seconds, once). Measured (AMD Zen 5, 56-64-64-1, chunks of 512 rows,
#: serial / parallel ms): 2048 rows 0.38 / 0.26, 8192 1.50 / 1.04, 32768 6.2 / 4.3: from
#: 2^26 (16384 rows of bike) a call saves a millisecond or more
PARALLEL_INFERENCE_WORK = 1 << 26
#: samples per part of a split minibatch at least
MIN_PART = 16


@kernel(inline="always")
def split_parts(parts, cap):
    """Parts of a split plan's minibatch of at most ``cap`` samples: ``parts`` (the
    network's: the pool's thread count at launch, kernels._matmul.PARTS), each of MIN_PART
    samples at least."""
    return max(1, min(parts, cap // MIN_PART))


def _widest(w_rows, w_cols):
    return max(int(r) * int(c) for r, c in zip(w_rows, w_cols))


def _parallel(w_rows, w_cols, work, batch_size):
    return bool(_widest(w_rows, w_cols) >= PARALLEL_WEIGHTS or
                max(work) * batch_size >= PARALLEL_PRODUCT)


def block_work(net):
    """Multiply-adds per sample of each block's product: W's size, times the output
    positions of a convolution (0 for pooling)."""
    t = net.table
    positions = np.where(t[:, KIND] == DENSE, 1, t[:, H_OUT] * t[:, W_OUT])
    return t[:, W_ROWS] * t[:, W_COLS] * positions


def largest_work(net):
    """Multiply-adds per sample of the network's largest product (for a dense network,
    its widest layer's weights)."""
    return int(max(block_work(net)))


def planned_for(net, batch_size, training=False, rows=None):
    """``net`` with the plan for minibatches of ``batch_size`` samples: parallel products
    when its widest layer has PARALLEL_WEIGHTS weights (as ``make_network`` plans it) or
    its largest product PARALLEL_PRODUCT multiply-adds (``work``: a convolution's product
    is over all its output positions). For ``training`` steps
    (kernels._training.train_batches), a smaller network without BatchNorm or Dropout
    whose largest product has SPLIT_PRODUCT multiply-adds splits its minibatches by
    samples instead (Plan.split), from two parts of MIN_PART samples. For inference on
    ``rows`` rows, a smaller network runs on the parallel plan only from
    PARALLEL_INFERENCE_WORK multiply-adds per layer (work × rows)."""
    w_rows, w_cols = net.table[:, W_ROWS], net.table[:, W_COLS]
    small = _widest(w_rows, w_cols) < PARALLEL_WEIGHTS
    work = largest_work(net)
    parallel = _parallel(w_rows, w_cols, block_work(net), batch_size)
    if rows is not None and small:
        parallel = parallel and work * rows >= PARALLEL_INFERENCE_WORK
    split = bool(training and small and work * batch_size >= SPLIT_PRODUCT
                 and not net.plan.norm and not net.plan.dropout
                 and batch_size >= 2 * MIN_PART)
    if split:
        parallel = False
    if parallel == net.plan.parallel and split == net.plan.split:
        return net
    return net._replace(plan=Plan(**{**net.plan.choices, "parallel": parallel, "split": split}))


def without_penalty(seg):
    """The same segments with L1 = L2 = 0 (for a gradient that already holds the penalty)."""
    zeros = np.zeros_like(seg.l1)
    return Segments(seg.bounds, zeros, zeros.copy(), seg.decay)
