"""Per-kernel timings across sizes (float32, (features, batch) column-major)."""
import numpy as np

from fastnn.bench import crossover
from fastnn.kernels import activations, dense, losses, optimizers
from fastnn.kernels.matmul import matmul

SIZES = [64, 256, 1024]


def fmat(rng, rows, cols):
    return np.asfortranarray(rng.standard_normal((rows, cols), dtype=np.float32))


class Dense:
    """Dense forward (fused bias + ReLU) and the three backprop rules, n x n x n."""
    params = SIZES
    param_names = ["n"]

    def setup(self, n):
        rng = np.random.default_rng(0)
        self.W = rng.standard_normal((n, n), dtype=np.float32)
        self.b = rng.standard_normal(n, dtype=np.float32)
        self.X, self.Y, self.D = fmat(rng, n, n), fmat(rng, n, n), fmat(rng, n, n)
        self.dW, self.db, self.dX = np.empty_like(self.W), np.empty_like(self.b), fmat(rng, n, n)
        self.time_forward(n)
        self.time_backprop_delta_relu(n)
        self.time_backprop_weights(n)
        self.time_backprop_inputs(n)

    def time_forward(self, n):
        dense.dense_forward(self.W, self.b, self.X, activations.RELU, self.Y)

    def time_matmul_only(self, n):
        matmul(self.W, self.X, self.Y)

    def time_backprop_delta_relu(self, n):
        dense.backprop_delta(activations.RELU, self.Y, self.D, self.D, self.db)

    def time_backprop_weights(self, n):
        dense.backprop_weights(self.D, self.X, self.dW)

    def time_backprop_inputs(self, n):
        dense.backprop_inputs(self.W, self.D, self.dX)

    def track_forward_gflops(self, n):
        import timeit
        t = min(timeit.repeat(lambda: self.time_forward(n), number=20, repeat=3)) / 20
        return 2 * n ** 3 / t / 1e9
    track_forward_gflops.unit = "GFLOP/s"


class MatmulPaths:
    """The dense layer's three products through BLAS and through the hand-written loops
    (n outputs x n inputs x batch n): where the crossover lies (fastnn/bench/crossover.py)."""
    params = (["blas", "loops"], list(crossover.PRODUCTS), [16, 64, 256])
    param_names = ["path", "product", "n"]

    def setup(self, path, product, n):
        W, X, D, dW, dX = crossover.operands(n, n)
        fn = crossover.PATHS[path]
        self.call = {"forward": lambda: fn(W, X, dX), "weights": lambda: fn(D, X.T, dW),
                     "inputs": lambda: fn(W.T, D, dX)}[product]
        self.call()

    def time_product(self, path, product, n):
        self.call()

    def track_gflops(self, path, product, n):
        return crossover.gflops(path, product, n, n, seconds=0.005)
    track_gflops.unit = "GFLOP/s"


class Activations:
    params = (list(activations.ACTIVATIONS), [4096, 262144])
    param_names = ["activation", "elements"]

    def setup(self, name, elements):
        rng = np.random.default_rng(0)
        self.code = activations.ACTIVATIONS[name]
        self.Z = fmat(rng, 64, elements // 64)
        self.A, self.D = np.empty_like(self.Z), fmat(rng, 64, elements // 64)
        activations.activation_forward(self.code, self.Z, self.A)
        activations.activation_backward(self.code, self.A, self.D, self.D)

    def time_forward(self, name, elements):
        activations.activation_forward(self.code, self.Z, self.A)

    def time_backward(self, name, elements):
        activations.activation_backward(self.code, self.A, self.D, self.D)


class SoftmaxCrossEntropy:
    params = [128, 4096]
    param_names = ["batch"]

    def setup(self, batch):
        rng = np.random.default_rng(0)
        self.Z, self.G = fmat(rng, 10, batch), fmat(rng, 10, batch)
        self.T = np.zeros((10, batch), np.float32, order="F")
        self.T[rng.integers(0, 10, batch), np.arange(batch)] = 1
        self.P = np.empty_like(self.Z)
        losses.softmax_cross_entropy(self.Z, self.T, self.P, self.G)

    def time_fused(self, batch):
        losses.softmax_cross_entropy(self.Z, self.T, self.P, self.G)


class Optimizers:
    params = (list(optimizers.OPTIMIZERS), [10_000, 100_000, 1_000_000])
    param_names = ["optimizer", "parameters"]

    def setup(self, name, n):
        rng = np.random.default_rng(0)
        self.code = optimizers.OPTIMIZERS[name]
        self.p = rng.standard_normal(n, dtype=np.float32)
        self.g = rng.standard_normal(n, dtype=np.float32)
        self.state = np.zeros((optimizers.STATE_VECTORS[self.code], n), np.float32)
        self.hp = np.array([1e-3, 0.0, 0.9, 0.999, 1e-8])
        self.bounds = np.array([0, n // 2, n], dtype=np.int64)
        self.l1, self.l2 = np.zeros(2), np.array([1e-4, 0.0])
        self.time_update(name, n)

    def time_update(self, name, n):
        optimizers.optimizer_update(self.code, self.p, self.g, self.state, self.hp, 3,
                                    self.bounds, self.l1, self.l2)
