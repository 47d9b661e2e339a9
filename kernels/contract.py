"""The contract between fastnn's Python layer (``fastnn/``) and its kernels: everything the
layer uses of ``kernels/`` beyond the public names of ``fastnn.kernels``, in one place.
``fastnn/`` imports the kernels through this module and ``fastnn.kernels.__all__``
only, so a private kernel module may change freely as long as these names keep their
meaning (tests/test_architecture.py checks the imports).

Network tables
    BlockSpec(kind, n_in, n_out, geom, act, norm, momentum, eps, drop, l1, l2)
        one block of a model's layers; DENSE, CONV, POOL its kinds
    make_network(blocks, loss, fused, key)
        the ``Network`` (integer and float tables, plan) of a model's blocks
    largest_work(net)         multiply-adds per sample of the network's largest product
    planned_for(net, batch_size, training=False, rows=None)
        ``net`` with the plan (serial, parallel products, split minibatches) for a batch
    without_penalty(seg)      the segments with L1 = L2 = 0
    is_fused(net)             whether the output activation and loss are fused
    Buffers, workspace_size   a model's flat workspaces and their size for a batch
    weight_view, bias_view, gamma_view, beta_view, running_mean_view, running_var_view
                              views of the parameter and statistics vectors
    ACTIVATIONS, LOSSES       name -> code
    PARALLEL_WEIGHTS, PARALLEL_PRODUCT, SPLIT_PRODUCT
                              where the plans change (``fastnn info`` prints them)

Updates
    make_update(code, hp, schedule, clip, parallel=False)    an ``Update`` record
    OPTIMIZER_RULES           the registry (kernels.optimizer_rules): a rule per code
    KERNEL_OF                 code -> the code whose compiled pass it runs (AdamW: Adam)
    SGD, ADAGRAD, RMSPROP, ADAM, ADAMW, LAMB, STATE_VECTORS, NO_CLIP
                              optimizer codes, state vectors per code, "no clipping"
    optimizer_update(upd, seg, params, grads, state, step)   one update, any rule
    add_penalty_grad(params, grads, seg)                      g += L1/L2 terms
    STEP, EXPONENTIAL, INVERSE_TIME, COSINE, learning_rate(schedule, t)
                              schedule codes and the rate of update t + 1

Entry points (compiled loops; each writes into the buffers it is given)
    train_batches(X, T, perm, start, stop, batch_size, net, upd, buf, step, total,
                  correct)    steps over the minibatches [start, stop) of ``perm``
    infer_batches(X, T, out, net, buf, cap)                  inference (and loss sums)
    batch_loss_and_grad(X, T, net, buf, step)                one batch's loss and gradient
    Reducer, train_shard_batches(...)                        the same steps across MPI
                              processes, gradients summed by MPI_Allreduce
    forward_pass              a compiled pass of every model (the compile notice
                              recognises fastnn's kernels by it)

Input scan
    scan_blocks(n), total_nonfinite(flat), count_nonfinite(flat, counts)

Machine
    OPENBLAS_CORE_WIDTH, DOT_FORM_LIMIT, OUTER_FORM_LIMIT
                              OpenBLAS core types' vector width; where matmul switches
                              from its loops to BLAS
    matmul_blas(A, B, out, ...)                              a product through BLAS alone
                              (the benchmarks' GEMM floor)

GPU (imported on first use: numba.cuda)
    cuda()                    the CUDA twins the GPU path drives: require_cuda,
                              to_device, train_batches, infer_batches, empty_rows
"""
import types

from ._activations import ACTIVATIONS
from ._allreduce import Reducer, train_shard_batches
from ._crossover import DOT_FORM_LIMIT, OPENBLAS_CORE_WIDTH, OUTER_FORM_LIMIT
from ._layout import (CONV, DENSE, PARALLEL_PRODUCT, PARALLEL_WEIGHTS, POOL, SPLIT_PRODUCT,
                      BlockSpec, largest_work, make_network, planned_for, without_penalty)
from ._losses import LOSSES
from ._matmul import matmul_blas
from ._network import (Buffers, beta_view, bias_view, gamma_view, is_fused, running_mean_view,
                       running_var_view, weight_view, workspace_size)
from ._optimizers import (ADAGRAD, ADAM, ADAMW, KERNEL_OF, LAMB, NO_CLIP, RMSPROP, SGD, STATE_VECTORS,
                          add_penalty_grad, make_update, optimizer_update)
from ._passes import forward_pass
from ._scan import count_nonfinite, scan_blocks, total_nonfinite
from ._schedules import COSINE, EXPONENTIAL, INVERSE_TIME, STEP, learning_rate
from ._training import batch_loss_and_grad, infer_batches, train_batches
from .optimizer_rules import RULES as OPTIMIZER_RULES


def cuda():
    """The CUDA side of the contract, as a namespace (numba.cuda is imported now)."""
    from .cuda import infer_batches as cuda_infer, to_device, train_batches as cuda_train
    from .cuda._backend import require_cuda
    from .cuda._training import empty_rows

    return types.SimpleNamespace(require_cuda=require_cuda, to_device=to_device,
                                 train_batches=cuda_train, infer_batches=cuda_infer,
                                 empty_rows=empty_rows)


__all__ = [
    "BlockSpec", "DENSE", "CONV", "POOL", "make_network", "planned_for", "largest_work", "without_penalty", "is_fused", "Buffers", "workspace_size",
    "weight_view", "bias_view", "gamma_view", "beta_view", "running_mean_view",
    "running_var_view", "ACTIVATIONS", "LOSSES", "PARALLEL_WEIGHTS", "PARALLEL_PRODUCT",
    "SPLIT_PRODUCT",
    "make_update", "OPTIMIZER_RULES", "KERNEL_OF", "SGD", "ADAGRAD", "RMSPROP", "ADAM", "ADAMW", "LAMB", "STATE_VECTORS",
    "NO_CLIP", "optimizer_update", "add_penalty_grad", "STEP", "EXPONENTIAL", "INVERSE_TIME",
    "COSINE", "learning_rate",
    "train_batches", "infer_batches", "batch_loss_and_grad", "Reducer", "train_shard_batches",
    "forward_pass",
    "scan_blocks", "total_nonfinite", "count_nonfinite",
    "OPENBLAS_CORE_WIDTH", "DOT_FORM_LIMIT", "OUTER_FORM_LIMIT", "matmul_blas",
    "cuda",
]
