"""The engines that the fit loop (fastnn.fit_loop) drives: each runs a fit's compiled steps
on its hardware and answers the loop through the same few methods.

    agree(steps, stopped)   (steps of the next chunk, whether to stop), as every process
                            of the fit will take them
    chunk_steps(steps)      the steps the engine will run next of the ``steps`` the loop
                            proposes (the CPU may try another thread count on fewer)
    new_epoch(perm)         the epoch's sample order (``perm``, filled by the loop)
    train(start, stop)      the steps over samples [start, stop) of the order
    measured(steps, seconds)
                            how long the last chunk took
    epoch_sums()            the epoch's (loss sum, correct count), reset for the next
    validate()              (loss sum, correct count) on the validation data
    copy_state(params, stats), sync(), close()
                            the parameters and running statistics into given arrays;
                            the host's model and optimizer state brought up to date; the
                            end of the fit (the host up to date)

``CpuEngine`` runs on this machine's cores; the processes it trains with are its
``team``: ``OneProcess`` here, fastnn.distributed.Processes across MPI processes (the
gradient summed by an allreduce). fastnn.device.CudaEngine runs on a GPU.
"""
from fastnn.compile_notice import announcing
from fastnn.kernels import contract
from fastnn.threads import ThreadChooser, numba_threads, one_pool

#: samples per compiled call of inference (predict, evaluate, validation on the GPU)
EVAL_CHUNK = 512


def infer(model, X, T, out, sample_weight=None):
    """Inference over the rows of X on the model's device, ``EVAL_CHUNK`` at a time:
    ``out`` (n, n_outputs) gets the outputs unless it has no rows; returns (loss sum,
    correct) over the targets ``T`` ((0, n_outputs) for none) — with ``sample_weight``,
    the loss sum Σ w_j L_j. BatchNorm's running statistics, no dropout."""
    cap = min(X.shape[0], EVAL_CHUNK)
    if model.device == "cuda":
        from fastnn.device import infer as on_the_device

        return on_the_device(model, X, T, out, cap, sample_weight)
    net = contract.planned_for(model.net, cap, rows=X.shape[0])
    with one_pool(net, cap), announcing():
        return contract.infer_batches(X, T, out, net, model._buffers(cap), cap, sample_weight)


class OneProcess:
    """The processes that train together in a plain ``fit``: this one. CpuEngine runs its
    chunks through these steps; fastnn.distributed.Processes makes each of them a
    collective across MPI processes."""

    #: whether its minibatches may be split by samples across threads (Plan.split)
    splits = True

    def workspace_samples(self, batch_size):
        """Samples of a minibatch this process computes at most."""
        return batch_size

    def begin(self, model, optimizer, rng):
        """Before the first epoch (the optimizer's state bound)."""

    def agree(self, steps, stopped):
        """(steps of the next chunk, whether to stop) as every process will take them."""
        return steps, stopped

    def same_order(self, perm, shuffle):
        """After the loop ordered ``perm``: every process's ``perm`` the same."""

    def train(self, args, sample_weight):
        """One compiled chunk: fastnn.kernels.contract.train_batches(*args, sample_weight)
        — (total, correct, step)."""
        return contract.train_batches(*args, sample_weight)

    def totals(self, total, correct):
        """An epoch's loss sum and correct count over every process."""
        return total, correct

    def validate(self, model, val):
        """The validation sums (loss, correct) over ``val`` = (X, T, weights or None)."""
        return model._evaluate_sums(*val)


class CpuEngine:
    """A fit on this machine's cores: each chunk one compiled call (the team's), on Numba's
    pool or on one thread as ``ThreadChooser`` measures; the parameters stay the model's
    own arrays throughout."""

    def __init__(self, model, config, team):
        self.model, self.config, self.team = model, config, team
        self.cap = team.workspace_samples(config.batch_size)
        self.net = contract.planned_for(model.net, self.cap, training=team.splits)
        self.buf = model._buffers(self.cap, config.optimizer.bind(model), self.net)
        team.begin(model, config.optimizer, config.rng)
        self.rule = config.optimizer.update_rule(config.clip, self.net.plan.parallel)
        self.chooser = ThreadChooser(self.net.plan, (tuple(model.net.sizes.tolist()), self.cap))
        self.perm, self.threads, self.total, self.correct = None, None, 0.0, 0

    def agree(self, steps, stopped):
        return self.team.agree(steps, stopped)

    def chunk_steps(self, steps):
        self.threads, steps = self.chooser.next(steps)
        return steps

    def new_epoch(self, perm):
        self.team.same_order(perm, self.config.shuffle)
        self.perm, self.total, self.correct = perm, 0.0, 0

    def train(self, start, stop):
        c, optimizer = self.config, self.config.optimizer
        with one_pool(self.net, self.cap), numba_threads(self.threads):
            self.total, self.correct, optimizer.steps = self.team.train(
                (c.X, c.T, self.perm, start, stop, c.batch_size, self.net,
                 optimizer.refresh(self.rule), self.buf, optimizer.steps, self.total,
                 self.correct), c.sample_weight)

    def measured(self, steps, seconds):
        self.chooser.record(self.threads, steps, seconds)

    def epoch_sums(self):
        return self.team.totals(self.total, self.correct)

    def validate(self):
        return self.team.validate(self.model, self.config.val)

    def copy_state(self, params, stats):
        params[...] = self.model.params
        stats[...] = self.model.stats

    def sync(self):
        """Nothing to do: the model's arrays are the ones trained."""

    def close(self):
        """Nothing to do."""
