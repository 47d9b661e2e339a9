"""A network's tables and buffers on the device: ``to_device`` and ``copy_to_host``.

The device passes (kernels.cuda._network, _training) take the CPU's ``Network`` and
``Buffers`` with device arrays in them. ``to_device(net, buf)`` makes both from a host
pair (a model's ``layout.net`` and ``layout.buffers(...)``):

    net     the same tables, with ``net.seg`` (the optimizer's segments) on the device;
            the rest stays on the host, where the launches read sizes and offsets
    buf     params, state and stats copied over; grads and the workspace ws allocated;
            acc (float64) longer than on the CPU:

                acc[:net.acc_size]     BatchNorm's per-feature sums, as on the CPU
                acc[SUMS], [SUMS + 1]  the loss sum and (as int64 bits) the correct count
                                       that train_batches and infer_batches accumulate
                acc[SCRATCH:]          the update's scratch (clip norm, trust ratios)

    with SUMS = net.acc_size and SCRATCH = SUMS + 2 (``sums_view``, ``scratch_view``).

``copy_to_host(buf, host_buf)`` copies params, grads, state and stats back;
``update_to_device(upd)`` gives an optimizer's ``Update`` its schedule on the device (a
host schedule would be copied over at every ``optimizer_update``).
"""
import numpy as np

from .._network import Buffers
from ._backend import cuda
from ._optimizers import device_segments, on_device, scratch_size


def _sums_offset(net):
    return int(net.acc_size)


def acc_size(net):
    """Length of the device's ``buf.acc`` for the network ``net``."""
    return _sums_offset(net) + 2 + scratch_size(net.seg)


def sums_view(acc, net):
    """(loss sum, correct count) of the device's acc: a float64 view and an int64 view,
    each of one element."""
    k = _sums_offset(net)
    return acc[k:k + 1], acc[k + 1:k + 2].view(np.int64)


def scratch_view(acc, net):
    """The optimizer update's float64 scratch inside the device's acc: the last
    argument of ``optimizer_update`` (which otherwise allocates one per call)."""
    k = _sums_offset(net) + 2
    return acc[k:k + scratch_size(net.seg)]


def to_device(net, buf):
    """(net, buf) for the device passes from a host ``Network`` and ``Buffers``: the
    segments, parameters, optimizer state and running statistics copied over, the
    gradients, workspace and acc allocated (uninitialized) on the device."""
    if not isinstance(net.seg.bounds, np.ndarray):
        raise TypeError("net is already on the device (to_device takes the host's net)")
    dtype = buf.params.dtype
    device_net = net._replace(seg=device_segments(net.seg))
    return device_net, Buffers(
        cuda.to_device(buf.params), cuda.device_array(buf.params.shape[0], dtype=dtype),
        cuda.to_device(buf.state),
        cuda.to_device(buf.stats),
        cuda.device_array(buf.ws.shape[0], dtype=dtype),
        cuda.device_array(acc_size(net), dtype=np.float64))


def update_to_device(upd):
    """The ``Update`` ``upd`` with its schedule on the device."""
    return upd._replace(schedule=on_device(upd.schedule))


def copy_to_host(buf, host_buf):
    """Copy the device's params, grads, optimizer state and running statistics into the
    host ``Buffers`` ``host_buf`` (the one ``to_device`` was given)."""
    buf.params.copy_to_host(host_buf.params)
    buf.grads.copy_to_host(host_buf.grads)
    if host_buf.state.size:
        buf.state.copy_to_host(host_buf.state)
    if host_buf.stats.size:
        buf.stats.copy_to_host(host_buf.stats)

