"""Training and inference on a CUDA device (``Sequential(..., device="cuda")``).

For the whole of a ``fit``, ``predict`` or ``evaluate`` call, parameters, gradients,
optimizer state, BatchNorm's running statistics and the workspace live on the device;
data are copied there once per call and the shuffled order once per epoch (the
learning-rate schedule too, when a callback changed it); the only copies back are the
summed loss and correct count (two scalars per compiled chunk, about 0.2 s of training,
and per validation) and, when asked and at the end, the parameters, running statistics
and optimizer state. The fit loop is the CPU's (fastnn.fit_loop): Ctrl-C within a
chunk, the progress line, callbacks, early stopping. No
kernel waits on a host transfer: the learning rate and the clip factor of each update
are computed on the device.
"""
from fastnn.kernels import contract


def _on_device(model, cap, state=None):
    """The model's (net, buf) on the device, with a workspace for ``cap`` samples."""
    return contract.cuda().to_device(model.net, model._buffers(cap, state))


class CudaEngine:
    """A fit on the GPU (fastnn.engines has the methods' contract): the parameters,
    gradients, optimizer state, running statistics and workspace live on the device for
    the whole fit; each chunk is one call of the CUDA twin of train_batches over a range
    of the epoch's order, which is uploaded once per epoch."""

    def __init__(self, model, config, eval_chunk):
        self.kernels = contract.cuda()
        self.cuda = self.kernels.require_cuda()
        self.model, self.config = model, config
        X, val = config.X, config.val
        self.eval_cap = None if val is None else min(eval_chunk, val[0].shape[0])
        cap = config.batch_size if val is None else max(config.batch_size, self.eval_cap)
        self.net, self.buf = _on_device(model, cap, config.optimizer.bind(model))
        self.X, self.T = self.cuda.to_device(X), self.cuda.to_device(config.T)
        self.weights = self._on_device(config.sample_weight)
        if val is not None:
            self.val = (self.cuda.to_device(val[0]), self.cuda.to_device(val[1]),
                        self._on_device(val[2]))
            self.no_out = self.kernels.empty_rows(model.n_outputs, model.dtype)
        self.perm = self.rule = None
        self.total, self.correct = 0.0, 0

    def _on_device(self, array):
        return None if array is None else self.cuda.to_device(array)

    def agree(self, steps, stopped):
        return steps, stopped

    def chunk_steps(self, steps):
        return steps

    def new_epoch(self, perm):
        self.perm = self.cuda.to_device(perm)
        # the rule is built per epoch: a callback may have changed optimizer.lr_scale
        self.rule = self.config.optimizer.update_rule(self.config.clip)
        self.total, self.correct = 0.0, 0

    def train(self, start, stop):
        optimizer = self.config.optimizer
        self.total, self.correct, optimizer.steps = self.kernels.train_batches(
            self.X, self.T, self.perm, start, stop, self.config.batch_size, self.net,
            self.rule, self.buf, optimizer.steps, self.total, self.correct, self.weights)

    def measured(self, steps, seconds):
        """Nothing to choose."""

    def epoch_sums(self):
        return self.total, self.correct

    def validate(self):
        X, T, weights = self.val
        return self.kernels.infer_batches(X, T, self.no_out, self.net, self.buf,
                                          self.eval_cap, weights)

    def copy_state(self, params, stats):
        self.buf.params.copy_to_host(params)
        if stats.size:
            self.buf.stats.copy_to_host(stats)

    def sync(self):
        self.copy_state(self.model.params, self.model.stats)
        if self.config.optimizer.state.size:
            self.buf.state.copy_to_host(self.config.optimizer.state)

    def close(self):
        self.sync()


def infer(model, X, T, out, cap, sample_weight=None):
    """fastnn.engines.infer on the device: ``out`` (n, n_outputs) filled with the outputs
    unless it has no rows, and (loss sum — Σ w L with ``sample_weight`` —, correct) over
    the targets ``T`` unless they have no rows; inference mode, ``cap`` samples at a
    time."""
    kernels = contract.cuda()
    cuda = kernels.require_cuda()
    net, buf = _on_device(model, cap)
    none = kernels.empty_rows(model.n_outputs, model.dtype)
    out_d = cuda.device_array(out.shape, dtype=model.dtype) if out.shape[0] else none
    sums = kernels.infer_batches(cuda.to_device(X), cuda.to_device(T) if T.shape[0] else none,
                                 out_d, net, buf, cap,
                                 None if sample_weight is None else cuda.to_device(sample_weight))
    if out.shape[0]:
        out_d.copy_to_host(out)
    return sums


def check_device(device, blocks=()):
    """``device`` ("cpu" or "cuda"), or a clear error now: an unknown name, a layer of
    ``blocks`` (fastnn.blocks) the GPU path does not run yet, or CUDA unavailable."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    spatial = next((b.layer for b in blocks if b.kind != "dense"), None)
    if device == "cuda" and spatial is not None:
        raise ValueError(f"device='cuda': {spatial!r} layers run on the CPU only for now; "
                         "use device='cpu'")
    if device == "cuda":
        contract.cuda().require_cuda()
    return device
