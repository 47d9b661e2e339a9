"""What ``fit`` returns: per-epoch metrics, as in Keras."""


class History:
    """``history[name]`` is the list of per-epoch values of ``loss``, ``val_loss``,
    ``accuracy`` and ``val_accuracy`` (those that apply); ``epoch`` their indices;
    ``best_epoch`` the epoch whose parameters early stopping kept (else None);
    ``interrupted`` True when Ctrl-C ended training (the last entry may then be a partial
    epoch: its metrics over the samples trained on, validation metrics NaN)."""

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.best_epoch = None
        self.interrupted = False

    def append(self, epoch, logs):
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items())
        return f"History(epochs={len(self.epoch)}, {last})"
