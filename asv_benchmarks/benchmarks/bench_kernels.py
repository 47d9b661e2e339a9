"""Per-kernel timings across sizes (float32, (features, batch) column-major)."""
import numpy as np

from fastnn.kernels import _activations as activations, _batchnorm as batchnorm, _dense as dense
from fastnn.kernels import _dropout as dropout, _losses as losses, _optimizers as optimizers
from fastnn.kernels import _random as random
from fastnn.kernels._layout import Segments
from fastnn.optimizers import OPTIMIZERS, check_clip
from fastnn.kernels._matmul import matmul

from ._scripts import script

crossover = script("crossover")

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
    (n outputs x n inputs x batch n): where the crossover lies (scripts/crossover.py)."""
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
    """Each optimizer's fused update over a flat vector (two segments, one penalized),
    without and with global-norm clipping."""
    params = (list(optimizers.OPTIMIZERS), [10_000, 100_000, 1_000_000], [False, True])
    param_names = ["optimizer", "parameters", "clip_norm"]

    def setup(self, name, n, clip):
        rng = np.random.default_rng(0)
        code = optimizers.OPTIMIZERS[name]
        self.p = rng.standard_normal(n, dtype=np.float32)
        self.g = rng.standard_normal(n, dtype=np.float32)
        self.state = np.zeros((optimizers.STATE_VECTORS[code], n), np.float32)
        rule = OPTIMIZERS[name](momentum=0.9) if name == "sgd" else OPTIMIZERS[name]()
        self.upd = rule.update_rule(check_clip(1.0 if clip else None, None))
        self.seg = Segments(np.array([0, n // 2, n], dtype=np.int64), np.zeros(2),
                            np.array([1e-4, 0.0]), np.array([1.0, 0.0]))
        self.time_update(name, n, clip)

    def time_update(self, name, n, clip):
        optimizers.optimizer_update(self.upd, self.seg, self.p, self.g, self.state, 3)


class Remedies:
    """BatchNorm (training forward with ReLU, backward) and dropout over n features x
    a batch of 128, float32."""
    params = [64, 256, 1024]
    param_names = ["features"]

    def setup(self, n):
        rng = np.random.default_rng(0)
        self.Z, self.D = fmat(rng, n, 128), fmat(rng, n, 128)
        self.Zhat = np.empty_like(self.Z)
        self.gamma, self.beta = np.ones(n, np.float32), np.zeros(n, np.float32)
        self.mean, self.istd = np.empty(n, np.float32), np.empty(n, np.float32)
        self.acc = np.empty(2 * n)
        self.start = random.stream(np.uint64(1), 2, 3)
        self.time_batchnorm_forward(n)
        self.time_batchnorm_backward(n)
        self.time_dropout_forward(n)
        self.time_dropout_relu_backward(n)

    def time_batchnorm_forward(self, n):
        batchnorm.batchnorm_forward(self.Z, self.gamma, self.beta, 1e-5, activations.RELU,
                                    self.Zhat, self.mean, self.istd, self.acc)

    def time_batchnorm_backward(self, n):
        batchnorm.batchnorm_backward(self.D, self.Zhat, self.gamma, self.istd, self.mean,
                                     self.istd, self.acc)

    def time_dropout_forward(self, n):
        dropout.dropout_forward(self.Z, 0.2, self.start)

    def time_dropout_relu_backward(self, n):
        dropout.dropout_activation_backward(activations.RELU, self.Z, self.D, 0.2, self.start)


class ParallelTwins:
    """The parallel plan's kernels against their serial twins, BLAS held at one thread
    for both (as fastnn.threads.one_pool holds it; a BLAS pool spinning from a threaded
    call would stall the parallel regions that follow): the three products (m x k x n:
    outputs, inputs, batch), Adam and SGD with momentum over a flat vector (every rule
    but LAMB has the parallel pass), the minibatch gather, the bias + ReLU epilogue and
    ReLU's delta + db of the first hidden layer's output (parallel from 2^18 elements:
    wide's, not mnist's), and the finiteness scan of fit's input (of the gather's data)."""
    params = (["serial", "parallel"], ["forward", "weights", "inputs", "adam", "sgd", "gather",
                                       "epilogue", "delta", "scan"], ["mnist", "wide"])
    param_names = ["path", "kernel", "size"]
    SHAPES = {"mnist": (256, 784, 128), "wide": (2048, 2048, 512)}

    def setup(self, path, kernel, size):
        from threadpoolctl import threadpool_limits

        import scipy.linalg.cython_blas  # noqa: F401  (loaded before it is limited)
        from fastnn.kernels import _network as network
        from fastnn.kernels._matmul import PARTS, matmul_parallel

        parallel = path == "parallel"
        self.limits = threadpool_limits(1, user_api="blas")
        m, k, n = self.SHAPES[size]
        W, X, D, dW, dX = _operands(m, k, n)
        product = (lambda a, b, out: matmul_parallel(a, b, out, PARTS)) if parallel else matmul
        rng = np.random.default_rng(0)
        if kernel in ("forward", "weights", "inputs"):
            self.call = {"forward": lambda: product(W, X, D),
                         "weights": lambda: product(D, X.T, dW),
                         "inputs": lambda: product(W.T, D, dX)}[kernel]
        elif kernel in ("adam", "sgd"):
            import fastnn
            from fastnn.kernels import STATE_VECTORS, optimizer_update

            count = m * k
            p, g = rng.standard_normal(count, dtype=np.float32), rng.standard_normal(
                count, dtype=np.float32)
            opt = fastnn.Adam(1e-3) if kernel == "adam" else fastnn.SGD(1e-2, momentum=0.9)
            upd = opt.update_rule(None, parallel)
            state = np.zeros((STATE_VECTORS[opt.code], count), np.float32)
            seg = Segments(np.array([0, count], dtype=np.int64), np.zeros(1), np.zeros(1),
                           np.ones(1))
            self.call = lambda: optimizer_update(upd, seg, p, g, state, 3)
        elif kernel in ("epilogue", "delta"):
            b, db, G = rng.standard_normal(m, dtype=np.float32), np.empty(m, np.float32), \
                fmat(rng, m, n)
            if kernel == "epilogue":           # D = relu(D + b): the output of the product
                run = network._bias_activation_blocks if parallel else \
                    activations.bias_activation_forward
                self.call = lambda: run(D, b, activations.RELU)
            else:                              # G = G * relu'(D), db = row-sum(G)
                run = network._delta_bias_blocks if parallel else network._delta_bias
                self.call = lambda: run(activations.RELU, D, G, db)
        else:
            data = rng.standard_normal((4 * n, k), dtype=np.float32)
            if kernel == "scan":
                from fastnn.kernels._scan import _nonfinite, count_nonfinite, scan_blocks

                flat = data.ravel()
                counts = np.empty(scan_blocks(flat.size), np.int64)
                self.call = (lambda: count_nonfinite(flat, counts)) if parallel else \
                    (lambda: _nonfinite(flat))
            else:
                targets = rng.standard_normal((4 * n, 1), dtype=np.float32)
                perm = rng.permutation(4 * n).astype(np.int64)
                Xb, Tb = np.empty((k, n), np.float32, order="F"), np.empty((1, n), np.float32,
                                                                            order="F")
                gather = network._gather_batch_parallel if parallel else network.gather_batch
                self.call = lambda: gather(data, targets, perm, 0, Xb, Tb)
        self.call()

    def teardown(self, path, kernel, size):
        self.limits.restore_original_limits()

    def time_kernel(self, path, kernel, size):
        self.call()


def _operands(m, k, n):
    """W (m, k), X (k, n), D (m, n), dW (m, k), dX (k, n) in the dense layer's layouts."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal((m, k), dtype=np.float32), fmat(rng, k, n), fmat(rng, m, n),
            np.empty((m, k), np.float32), fmat(rng, k, n))
