"""model.save and fastnn.load of the wide workload's model with Adam state, beside
np.save / np.load of the same bytes (the ratio is the figure: scripts/save_load.py)."""
import os
import tempfile

import numpy as np


class SaveLoad:
    timeout = 300

    def setup(self):
        import fastnn
        from fastnn.bench.workloads import WORKLOADS, build_model

        self.model = build_model(WORKLOADS["wide"])
        self.model.optimizer = fastnn.Adam()
        state = self.model.optimizer.bind(self.model)
        state[...] = 0.5
        self.same_bytes = np.concatenate([self.model.params, self.model.stats, state.ravel()])
        self.folder = tempfile.mkdtemp()
        self.path = os.path.join(self.folder, "wide.fnn")
        self.npy = os.path.join(self.folder, "same.npy")
        self.model.save(self.path)
        np.save(self.npy, self.same_bytes)

    def time_model_save(self):
        self.model.save(self.path)

    def time_fastnn_load(self):
        import fastnn

        fastnn.load(self.path)

    def time_np_save_same_bytes(self):
        np.save(self.npy, self.same_bytes)

    def time_np_load_same_bytes(self):
        np.load(self.npy)
