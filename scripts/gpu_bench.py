"""GPU benchmark of fastnn's CUDA kernels, in one command on a CUDA machine:

    pip install -e '.[cuda]' && python scripts/gpu_bench.py [--json out.json] [--quick]

1. checks every CUDA kernel against a float64 NumPy reference, on the device;
2. times dense forward and the three backprop rules (n x n x n, n = 512 .. 8192) in
   GFLOP/s, the Adam update over 1e6 .. 1e8 parameters in GB/s (4 vectors read, 3
   written), and a training step of 784-256-128-10 (batch 128), 1024-2048-2048-10
   (batch 512) and 4096-4096-4096-10 (batch 4096); beside each, the same through
   cuBLAS (CuPy or PyTorch, float32, TF32 off) and a PyTorch CUDA eager step.
Goals on an H100: forward >= 50 % of cuBLAS SGEMM at 4096^3; Adam >= 70 % of the
device's copy bandwidth; the 784-256-128-10 step no slower than PyTorch eager.
``--check-only`` runs step 1 alone (it also runs on the simulator, tiny sizes).
"""
import argparse
import json
import time

import numpy as np

from fastnn.kernels import activations as act_codes
from fastnn.kernels import losses as loss_codes
from fastnn.kernels import optimizers as cpu_opt
from fastnn.kernels import cuda as gpu
from fastnn.kernels.cuda.backend import cuda, require_cuda
from fastnn.kernels.cuda.network import DeviceNetwork


def timed(fn, repeat=20, warmup=3):
    """Median seconds per call, by CUDA events."""
    for _ in range(warmup):
        fn()
    cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = cuda.event(), cuda.event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cuda.event_elapsed_time(start, end) / 1e3)
    return float(np.median(times))


def fmat(rng, rows, cols, dtype=np.float32):
    return np.asfortranarray(rng.standard_normal((rows, cols)).astype(dtype))


def check(n=33, batch=17):
    """Every kernel against float64 NumPy on the device; returns the worst errors."""
    rng = np.random.default_rng(0)
    worst = {}

    def err(name, out, ref, product=False):
        e = np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-30) if product else \
            np.max(np.abs(out - ref) / (np.abs(ref) + 1e-6))
        worst[name] = max(worst.get(name, 0.0), float(e))

    W, X = rng.standard_normal((n, n)).astype(np.float32), fmat(rng, n, batch)
    b, dA = rng.standard_normal(n).astype(np.float32), fmat(rng, n, batch)
    Z = W.astype(np.float64) @ X + b[:, None]
    for name, code in act_codes.ACTIVATIONS.items():
        Y = cuda.to_device(np.empty((n, batch), np.float32, order="F"))
        gpu.dense_forward(cuda.to_device(W), cuda.to_device(b), cuda.to_device(X), code, Y)
        ref = np.empty_like(Z)
        act_codes.activation_forward(code, Z, ref)
        err(f"dense_forward[{name}]", Y.copy_to_host(), ref, product=True)
        A = ref.astype(np.float32, order="F")
        dZ = cuda.to_device(np.empty_like(dA))
        gpu.activation_backward(code, cuda.to_device(A), cuda.to_device(dA), dZ)
        expected = dA.astype(np.float64)
        act_codes.activation_backward(code, A.astype(np.float64), expected, expected)
        err(f"activation_backward[{name}]", dZ.copy_to_host(), expected)
    dW, dX = cuda.to_device(np.empty_like(W)), cuda.to_device(np.empty_like(X))
    gpu.backprop_weights(cuda.to_device(dA), cuda.to_device(X), dW)
    gpu.backprop_inputs(cuda.to_device(W), cuda.to_device(dA), dX)
    err("backprop_weights", dW.copy_to_host(), dA.astype(np.float64) @ X.T, product=True)
    err("backprop_inputs", dX.copy_to_host(), W.T.astype(np.float64) @ dA, product=True)
    db = cuda.to_device(np.empty(n, np.float32))
    gpu.row_sum(cuda.to_device(dA), db)
    err("row_sum", db.copy_to_host(), dA.astype(np.float64).sum(axis=1), product=True)
    T = np.zeros((n, batch), np.float32, order="F")
    T[rng.integers(0, n, batch), np.arange(batch)] = 1
    for name in ("softmax_cross_entropy", "sigmoid_binary_cross_entropy"):
        P, G = cuda.to_device(np.empty_like(X)), cuda.to_device(np.empty_like(X))
        value = getattr(gpu, name)(cuda.to_device(X), cuda.to_device(T), P, G)
        P64, G64 = np.empty((n, batch)), np.empty((n, batch))
        ref = getattr(loss_codes, name)(X.astype(np.float64), T.astype(np.float64), P64, G64)
        err(name, np.array([value]), np.array([ref]))
        err(name + " grad", G.copy_to_host(), G64, product=True)
    p, g = rng.standard_normal(1000).astype(np.float32), rng.standard_normal(1000).astype(
        np.float32)
    bounds, l1, l2 = np.array([0, 600, 1000]), np.array([1e-3, 0.0]), np.array([1e-2, 0.0])
    for name, code in {"sgd": 0, "adagrad": 1, "rmsprop": 2, "adam": 3}.items():
        state = np.zeros((2, 1000), np.float32)
        hp = np.array([1e-3, 0.0, 0.9, 0.999, 1e-7])
        p_d, s_d = cuda.to_device(p), cuda.to_device(state)
        ref_p, ref_s = p.astype(np.float64), state.astype(np.float64)
        for step in range(3):
            gpu.optimizer_update(code, p_d, cuda.to_device(g), s_d, hp, step,
                                 *(cuda.to_device(a) for a in (bounds, l1, l2)))
            cpu_opt.optimizer_update(code, ref_p, g.astype(np.float64), ref_s, hp, step,
                                     bounds, l1, l2)
        err(f"{name}_update", p_d.copy_to_host(), ref_p)
    return worst


def cublas():
    """(name, C = A @ B on device arrays of that library) or None."""
    try:
        import cupy
        return "cupy", cupy, lambda a, b, c: cupy.matmul(a, b, out=c)
    except ImportError:
        pass
    try:
        import torch
        torch.backends.cuda.matmul.allow_tf32 = False
        return "torch", torch, lambda a, b, c: torch.matmul(a, b, out=c)
    except ImportError:
        return None


def bench_products(sizes):
    rows = []
    peer = cublas()
    for n in sizes:
        rng = np.random.default_rng(n)
        W, X = cuda.to_device(rng.standard_normal((n, n), dtype=np.float32)), cuda.to_device(
            fmat(rng, n, n))
        b, Y = cuda.to_device(np.zeros(n, np.float32)), cuda.device_array((n, n), np.float32,
                                                                          order="F")
        D, dW, dX = cuda.to_device(fmat(rng, n, n)), cuda.device_array((n, n), np.float32), \
            cuda.device_array((n, n), np.float32, order="F")
        flops = 2.0 * n ** 3
        ops = {"dense_forward": lambda: gpu.dense_forward(W, b, X, act_codes.RELU, Y),
               "backprop_delta": lambda: gpu.backprop_delta(act_codes.RELU, Y, D, D, b),
               "backprop_weights": lambda: gpu.backprop_weights(D, X, dW),
               "backprop_inputs": lambda: gpu.backprop_inputs(W, D, dX)}
        ref = None
        if peer:
            name, lib, mm = peer
            a = lib.asarray(W) if name == "cupy" else lib.as_tensor(W, device="cuda")
            c = lib.empty_like(a)
            ref = flops / timed(lambda: mm(a, a, c)) / 1e9
        for op, fn in ops.items():
            t = timed(fn, repeat=5 if n >= 4096 else 20)
            rate = (n * n * 4 * 3 / t / 1e9) if op == "backprop_delta" else flops / t / 1e9
            rows.append({"op": op, "n": n, "ms": t * 1e3,
                         "rate": rate, "unit": "GB/s" if op == "backprop_delta" else "GFLOP/s",
                         "cublas_gflops": ref if op != "backprop_delta" else None})
    return rows


def bench_adam(sizes):
    rows = []
    for n in sizes:
        p = cuda.device_array(n, np.float32)
        g, state = cuda.device_array(n, np.float32), cuda.device_array((2, n), np.float32)
        bounds, l1 = cuda.to_device(np.array([0, n])), cuda.to_device(np.zeros(1))
        hp = np.array([1e-3, 0.0, 0.9, 0.999, 1e-8])
        t = timed(lambda: gpu.optimizer_update(3, p, g, state, hp, 5, bounds, l1, l1), repeat=10)
        copy_src, copy_dst = cuda.device_array(n, np.float32), cuda.device_array(n, np.float32)
        tc = timed(lambda: copy_dst.copy_to_device(copy_src), repeat=10)
        rows.append({"op": "adam_update", "n": n, "ms": t * 1e3, "GB/s": 7 * 4 * n / t / 1e9,
                     "copy_GB/s": 2 * 4 * n / tc / 1e9})
    return rows


def fastnn_step(sizes, batch):
    """Seconds per training step of fastnn's device network (gather .. update)."""
    rng = np.random.default_rng(0)
    n = batch * 8
    X = rng.standard_normal((n, sizes[0])).astype(np.float32)
    T = np.zeros((n, sizes[-1]), np.float32)
    T[np.arange(n), rng.integers(0, sizes[-1], n)] = 1
    L = len(sizes) - 1
    w_off, b_off, off = [], [], 0
    for l in range(L):
        w_off.append(off)
        off += sizes[l] * sizes[l + 1]
        b_off.append(off)
        off += sizes[l + 1]
    params = (rng.standard_normal(off) * 0.05).astype(np.float32)
    net = DeviceNetwork(np.array(sizes), [act_codes.RELU] * (L - 1) + [act_codes.SOFTMAX],
                        w_off, b_off, loss_codes.CATEGORICAL_CROSSENTROPY, True, params,
                        np.float32)
    state = cuda.to_device(np.zeros((2, off), np.float32))
    args = [cuda.to_device(a) for a in (X, T, np.arange(n))]
    bounds, l1 = cuda.to_device(np.array([0, off])), cuda.to_device(np.zeros(1))
    hp = np.array([1e-3, 0.0, 0.9, 0.999, 1e-8])
    t = timed(lambda: net.train_epoch(*args, batch, state, 3, hp, 0, bounds, l1, l1), repeat=5)
    return t / 8


def torch_step(sizes, batch):
    try:
        import torch
    except ImportError:
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    X = torch.randn(batch, sizes[0], device="cuda")
    y = torch.randint(0, sizes[-1], (batch,), device="cuda")
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(X), y).backward()
        opt.step()

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(50):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / 50


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check-only", action="store_true")
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    require_cuda()
    worst = check()
    print("correctness (worst relative error, float32 vs float64 reference):")
    for name, e in worst.items():
        print(f"  {name:<34}{e:.2e}  {'ok' if e <= 1e-4 else 'FAIL'}")
    results = {"check": worst}
    if not args.check_only:
        sizes = [512, 1024, 2048] if args.quick else [512, 1024, 2048, 4096, 8192]
        results["products"] = bench_products(sizes)
        print(f"\n{'op':<18}{'n':>6}{'ms':>10}{'rate':>12}{'cuBLAS GFLOP/s':>16}{'ratio':>8}")
        for r in results["products"]:
            ref = r["cublas_gflops"]
            ratio = f"{r['rate'] / ref:.2f}" if ref else "-"
            print(f"{r['op']:<18}{r['n']:>6}{r['ms']:>10.3f}{r['rate']:>8.0f} {r['unit']:<4}"
                  f"{ref or float('nan'):>14.0f}{ratio:>8}")
        results["adam"] = bench_adam([10 ** 6, 10 ** 7] if args.quick else
                                     [10 ** 6, 10 ** 7, 10 ** 8])
        for r in results["adam"]:
            print(f"adam_update n={r['n']:.0e}: {r['ms']:.3f} ms, {r['GB/s']:.0f} GB/s "
                  f"({r['GB/s'] / r['copy_GB/s']:.0%} of copy bandwidth {r['copy_GB/s']:.0f})")
        results["steps"] = []
        for sizes_, batch in (((784, 256, 128, 10), 128), ((1024, 2048, 2048, 10), 512),
                              ((4096, 4096, 4096, 10), 4096)):
            ours, theirs = fastnn_step(sizes_, batch), torch_step(sizes_, batch)
            results["steps"].append({"net": sizes_, "batch": batch, "fastnn_ms": ours * 1e3,
                                     "torch_ms": theirs * 1e3 if theirs else None})
            print(f"step {'-'.join(map(str, sizes_))} batch {batch}: fastnn {ours * 1e3:.3f} ms"
                  + (f", PyTorch eager {theirs * 1e3:.3f} ms" if theirs else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    return 0 if all(e <= 1e-4 for e in worst.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
