"""``model.layout``: what a custom compiled loop needs from a model (docs/kernels.md;
scripts/custom_loop.py)."""
from fastnn.optimizers import check_clip, get_optimizer


class ModelLayout:
    """A model seen by the kernels (fastnn.kernels), for a loop of your own:

    ``net``     the kernels' tables (a ``fastnn.kernels.Network``): widths, activation
                codes, where each W, b, γ, β lies in the flat vectors, the workspace
                layout, the loss, the plan — read-only (never modify it);
    ``params``, ``grads``, ``stats``  the model's own flat vectors, which the kernels
                read and update in place (``model.params`` ...);
    ``buffers(batch_size, optimizer=None)``  a ``fastnn.kernels.Buffers`` with a
                workspace for minibatches of up to ``batch_size`` samples and, given an
                optimizer, its state vectors bound to this model (kept between calls, as
                ``fit`` keeps them: train with it, then ``fit`` can continue);
    ``update(optimizer, clip_norm=None, clip_value=None)``  the optimizer's ``Update``
                for ``optimizer_update`` (rule, hyperparameters, schedule, clipping).

    A loop that makes updates should set ``optimizer.steps`` to the step count it
    returns, so that schedules, Adam's bias correction and ``fit`` carry on from there.
    Check everything with ``fastnn.kernels.check_layout`` before the loop.
    """

    def __init__(self, model):
        self._model = model

    @property
    def net(self):
        return self._model.net

    @property
    def params(self):
        return self._model.params

    @property
    def grads(self):
        return self._model.grads

    @property
    def stats(self):
        return self._model.stats

    def buffers(self, batch_size, optimizer=None):
        from fastnn.validation import check_positive_int

        batch_size = check_positive_int(batch_size, "batch_size")
        state = None if optimizer is None else get_optimizer(optimizer).bind(self._model)
        return self._model._buffers(batch_size, state)

    def update(self, optimizer, clip_norm=None, clip_value=None):
        return get_optimizer(optimizer).update_rule(check_clip(clip_norm, clip_value),
                                                    self.net.plan.parallel)

    def __repr__(self):
        sizes = "-".join(str(int(n)) for n in self.net.sizes)
        return f"ModelLayout({sizes}, {self.params.size} parameters, {self.params.dtype.name})"
