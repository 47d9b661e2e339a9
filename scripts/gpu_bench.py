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
``--check-only`` runs step 1 alone; it also runs on the simulator with tiny shapes:
``NUMBA_ENABLE_CUDASIM=1 python scripts/gpu_bench.py --check-only --check-size 9 7``.
The check covers the dropout masks (bit for bit against the CPU), BatchNorm, the
schedules and every optimizer with clipping; the step timings include a variant with
BatchNorm, dropout and global-norm clipping on.
"""
import argparse
import json
import time

import numpy as np

from fastnn.kernels import _activations as act_codes
from fastnn.kernels import _batchnorm as cpu_bn
from fastnn.kernels import _dropout as cpu_drop
from fastnn.kernels import _losses as loss_codes
from fastnn.kernels import _optimizers as cpu_opt
from fastnn.kernels import _random as cpu_random
from fastnn.kernels import _schedules as cpu_sched
from fastnn.kernels import cuda as gpu
from fastnn.kernels.cuda._backend import cuda, require_cuda
from fastnn.kernels.cuda._optimizers import device_segments
from fastnn.kernels import Buffers
from fastnn.kernels._layout import DENSE, BlockSpec, Segments, make_network
from fastnn.kernels.optimizer_rules import RULES


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
    """Every kernel against float64 NumPy (or fastnn's float64 CPU kernels) on the
    device; returns the worst errors (dropout masks: 1 where any bit differs)."""
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
    check_layers(rng, err, worst, n, batch)
    check_optimizers(rng, err)
    return worst


def check_layers(rng, err, worst, n, batch):
    """Dropout (the CPU's masks, bit for bit), BatchNorm and the schedules."""
    X = fmat(rng, n, batch)
    X64 = X.astype(np.float64)
    start = np.uint64(cpu_random.stream(np.uint64(12345), 7, 1))
    for rate in (0.1, 0.5):
        A = cuda.to_device(X)
        gpu.dropout_forward(A, rate, start)
        ref = X64.copy(order="F")
        cpu_drop.dropout_forward(ref, rate, start)
        out = A.copy_to_host()
        worst[f"dropout_mask[{rate}]"] = float(np.any((out == 0) != (ref == 0)))
        err(f"dropout_forward[{rate}]", out, ref)
        D = cuda.to_device(X)
        gpu.dropout_activation_backward(act_codes.TANH, A, D, rate, start)
        ref_d = X64.copy(order="F")
        cpu_drop.dropout_activation_backward(act_codes.TANH, ref, ref_d, rate, start)
        err(f"dropout_activation_backward[{rate}]", D.copy_to_host(), ref_d, product=True)
    mask, ref_mask = cuda.to_device(np.zeros(10007, np.int64)), np.zeros(10007, np.int64)
    gpu.keep_mask(np.uint64(2 ** 63 + 5), 3, 2, 0.3, mask)
    cpu_random.keep_mask(np.uint64(2 ** 63 + 5), 3, 2, 0.3, ref_mask)
    worst["keep_mask"] = float(np.any(mask.copy_to_host() != ref_mask))
    Z = X + np.float32(1.5)
    gamma = (1 + 0.3 * rng.standard_normal(n)).astype(np.float32)
    beta = rng.standard_normal(n).astype(np.float32)
    outs = [cuda.to_device(Z), cuda.device_array((n, batch), np.float32, order="F"),
            cuda.device_array(n, np.float32), cuda.device_array(n, np.float32),
            cuda.device_array(2 * n)]
    refs = [Z.astype(np.float64), np.empty((n, batch), order="F"), np.empty(n), np.empty(n),
            np.empty(2 * n)]
    gpu.batchnorm_forward(outs[0], cuda.to_device(gamma), cuda.to_device(beta), 1e-5,
                          act_codes.RELU, *outs[1:])
    cpu_bn.batchnorm_forward(refs[0], gamma.astype(np.float64), beta.astype(np.float64), 1e-5,
                             act_codes.RELU, *refs[1:])
    for name, out, ref in zip(("Y", "Zhat", "mean", "istd"), outs, refs):
        err(f"batchnorm_forward {name}", out.copy_to_host(), ref, product=True)
    dY = fmat(rng, n, batch)
    grads = [cuda.to_device(dY), cuda.device_array(n, np.float32),
             cuda.device_array(n, np.float32), cuda.device_array(2 * n)]
    ref_grads = [dY.astype(np.float64), np.empty(n), np.empty(n), np.empty(2 * n)]
    gpu.batchnorm_backward(grads[0], outs[1], cuda.to_device(gamma), outs[3], *grads[1:])
    cpu_bn.batchnorm_backward(ref_grads[0], refs[1], gamma.astype(np.float64), refs[3],
                              *ref_grads[1:])
    for name, out, ref in zip(("dZ", "dgamma", "dbeta"), grads, ref_grads):
        err(f"batchnorm_backward {name}", out.copy_to_host(), ref, product=True)
    running = [rng.standard_normal(n).astype(np.float32),
               rng.uniform(0.5, 2, n).astype(np.float32)]
    Y = cuda.to_device(Z)
    gpu.batchnorm_inference(Y, cuda.to_device(gamma), cuda.to_device(beta),
                            *(cuda.to_device(r) for r in running), 1e-5, act_codes.SIGMOID,
                            cuda.device_array(n, np.float32), cuda.device_array(n, np.float32))
    ref = Z.astype(np.float64)
    cpu_bn.batchnorm_inference(ref, gamma.astype(np.float64), beta.astype(np.float64),
                               *(r.astype(np.float64) for r in running), 1e-5,
                               act_codes.SIGMOID, np.empty(n), np.empty(n))
    err("batchnorm_inference", Y.copy_to_host(), ref)
    for table in ([cpu_sched.STEP, 0.1, 3, 0.5, 0, 1], [cpu_sched.EXPONENTIAL, 0.1, 0.99, 0, 0, 1],
                  [cpu_sched.COSINE, 0.1, 100, 10, 0.001, 0.5]):
        table = np.array(table, np.float64)
        for t in (0, 5, 50, 150):
            err("learning_rate", np.array([gpu.host_learning_rate(table, t)]),
                np.array([cpu_sched.learning_rate(table, t)]))


def check_optimizers(rng, err, size=1000):
    """Every optimizer by ``optimizer_update``, with a schedule, both clippings and
    weight decay, three steps, against the float64 CPU kernels."""
    p = rng.standard_normal(size).astype(np.float32)
    g = rng.standard_normal(size).astype(np.float32)
    cut = size * 3 // 5
    seg = Segments(np.array([0, cut, size]), np.array([1e-3, 0.0]), np.array([1e-2, 0.0]),
                   np.array([1.0, 0.0]))
    seg_d = device_segments(seg)
    schedule = np.array([cpu_sched.COSINE, 1e-3, 10, 1, 1e-5, 1.0])
    hps = {rule.name: [float(h.default) for h in rule.hyperparameters] for rule in RULES}
    hps["sgd"] = [0.9, 1.0]    # Nesterov momentum
    for name, code in cpu_opt.OPTIMIZERS.items():
        for clip in ([np.inf, np.inf], [5.0, np.inf], [np.inf, 0.5]):
            upd = cpu_opt.make_update(code, np.array(hps[name], np.float64), schedule,
                                      np.array(clip))
            upd_d = upd._replace(schedule=cuda.to_device(schedule))
            state = np.zeros((cpu_opt.STATE_VECTORS[code], size), np.float32)
            p_d, g_d, s_d = cuda.to_device(p), cuda.to_device(g), cuda.to_device(state)
            ref_p, ref_s = p.astype(np.float64), state.astype(np.float64)
            for step in range(3):
                gpu.optimizer_update(upd_d, seg_d, p_d, g_d, s_d, step)
                cpu_opt.optimizer_update(upd, seg, ref_p, g.astype(np.float64), ref_s, step)
            err(f"{name}_update", p_d.copy_to_host(), ref_p, product=True)


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


def adam_rule(schedule_d, max_norm=np.inf):
    return cpu_opt.make_update(cpu_opt.ADAM, np.array([0.9, 0.999, 1e-8, 0.0]), schedule_d,
                               np.array([max_norm, np.inf]))


def bench_adam(sizes):
    rows = []
    schedule = cuda.to_device(np.array([cpu_sched.INVERSE_TIME, 1e-3, 0, 0, 0, 1.0]))
    for n in sizes:
        p = cuda.device_array(n, np.float32)
        g, state = cuda.device_array(n, np.float32), cuda.device_array((2, n), np.float32)
        seg = device_segments(Segments(np.array([0, n]), np.zeros(1), np.zeros(1),
                                           np.zeros(1)))
        scratch = cuda.device_array(3, np.float64)
        row = {"op": "adam_update", "n": n}
        for label, max_norm in (("", np.inf), ("clip_", 1.0)):
            upd = adam_rule(schedule, max_norm)
            t = timed(lambda: gpu.optimizer_update(upd, seg, p, g, state, 5, scratch), repeat=10)
            row[label + "ms"], row[label + "GB/s"] = t * 1e3, 7 * 4 * n / t / 1e9
        copy_src, copy_dst = cuda.device_array(n, np.float32), cuda.device_array(n, np.float32)
        tc = timed(lambda: copy_dst.copy_to_device(copy_src), repeat=10)
        row["copy_GB/s"] = 2 * 4 * n / tc / 1e9
        rows.append(row)
    return rows


def fastnn_step(sizes, batch, features=False):
    """Seconds per training step of fastnn's device network (gather .. update); with
    ``features``, BatchNorm on the hidden blocks, dropout 0.1 on their outputs and
    global-norm clipping."""
    rng = np.random.default_rng(0)
    n = batch * 8
    X = rng.standard_normal((n, sizes[0])).astype(np.float32)
    T = np.zeros((n, sizes[-1]), np.float32)
    T[np.arange(n), rng.integers(0, sizes[-1], n)] = 1
    L = len(sizes) - 1
    hidden = [int(features)] * (L - 1) + [0]
    acts = [act_codes.RELU] * (L - 1) + [act_codes.SOFTMAX]
    drops = [0.0] + [0.1 * features] * (L - 1)
    net, n_params, n_stats = make_network(
        [BlockSpec(DENSE, sizes[l], sizes[l + 1], None, acts[l], hidden[l], 0.1, 1e-5, drops[l],
                   0.0, 0.0) for l in range(L)], loss_codes.CATEGORICAL_CROSSENTROPY, True, 1)
    params = (rng.standard_normal(n_params) * 0.05).astype(np.float32)
    stats = np.ones(n_stats, np.float32)
    host = Buffers(params, np.zeros_like(params), np.zeros((2, n_params), np.float32), stats,
                   np.zeros(int(gpu.workspace_size(net, batch)), np.float32),
                   np.zeros(max(1, int(net.acc_size))))
    device_net, buf = gpu.to_device(net, host)
    args = [cuda.to_device(a) for a in (X, T, np.arange(n))]
    schedule = cuda.to_device(np.array([cpu_sched.INVERSE_TIME, 1e-3, 0, 0, 0, 1.0]))
    upd = adam_rule(schedule, 1.0 if features else np.inf)
    t = timed(lambda: gpu.train_batches(*args, 0, n, batch, device_net, upd, buf, 0, 0.0, 0),
              repeat=5)
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
    parser.add_argument("--check-size", type=int, nargs=2, default=(33, 17),
                        metavar=("N", "BATCH"),
                        help="shapes of the check (e.g. 9 7 on the simulator)")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    require_cuda()
    worst = check(*args.check_size)
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
                  f"({r['GB/s'] / r['copy_GB/s']:.0%} of copy bandwidth {r['copy_GB/s']:.0f}); "
                  f"with global-norm clipping {r['clip_ms']:.3f} ms")
        results["steps"] = []
        for sizes_, batch in (((784, 256, 128, 10), 128), ((1024, 2048, 2048, 10), 512),
                              ((4096, 4096, 4096, 10), 4096)):
            ours, theirs = fastnn_step(sizes_, batch), torch_step(sizes_, batch)
            featured = fastnn_step(sizes_, batch, features=True)
            results["steps"].append({"net": sizes_, "batch": batch, "fastnn_ms": ours * 1e3,
                                     "fastnn_bn_dropout_clip_ms": featured * 1e3,
                                     "torch_ms": theirs * 1e3 if theirs else None})
            print(f"step {'-'.join(map(str, sizes_))} batch {batch}: fastnn {ours * 1e3:.3f} ms"
                  f" (BatchNorm + dropout + clipping {featured * 1e3:.3f} ms)"
                  + (f", PyTorch eager {theirs * 1e3:.3f} ms" if theirs else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    return 0 if all(e <= 1e-4 for e in worst.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
