"""The reference workloads of the performance issue: step and epoch time through
fastnn's model, and the ratio to the GEMM floor measured in the same process."""
from fastnn.bench import contenders
from fastnn.bench.workloads import WORKLOADS, build_model, data, fit_options, steps


class Workload:
    params = ["bike", "mnist", "mnist-regularized", "wide"]
    param_names = ["workload"]
    timeout = 300

    def setup(self, name):
        self.w = WORKLOADS[name]
        self.X, self.y = data(self.w)
        self.model = build_model(self.w)
        # the optimizer, and a regularized workload's clipping: fit and train_step take both
        self.options = fit_options(self.w)
        self.Xb, self.yb = self.X[:self.w.batch], self.y[:self.w.batch]
        self.time_epoch(name)
        self.time_step(name)

    def time_epoch(self, name):
        self.model.fit(self.X, self.y, epochs=1, batch_size=self.w.batch, verbose=0,
                       **self.options)

    def time_step(self, name):
        self.model.train_step(self.Xb, self.yb, **self.options)

    def track_floor_ratio(self, name):
        """fastnn's ms/step over the GEMM floor's, best of 2 epochs each, same process."""
        return min(contenders.fastnn_run(self.w, 2)) / min(contenders.floor_run(self.w, 2))
    track_floor_ratio.unit = "ratio"

    def track_ms_per_step(self, name):
        return min(contenders.fastnn_run(self.w, 2)) / steps(self.w) * 1e3
    track_ms_per_step.unit = "ms"


class Plans:
    """bike's network (56-64-64-1, Adam) for an epoch under each plan: serial, products
    split across threads (Plan.parallel), minibatches split by samples (Plan.split;
    scripts/plans.py), at bike's batch (64) and the scikit-learn drop-in's (200)."""
    params = (["serial", "products", "split"], [64, 200])
    param_names = ["plan", "batch"]
    timeout = 300

    def setup(self, plan, batch):
        from ._scripts import script

        epoch_runner = script("plans").epoch_runner

        self.epoch = epoch_runner(WORKLOADS["bike"], batch, plan)

    def time_epoch(self, plan, batch):
        self.epoch()
