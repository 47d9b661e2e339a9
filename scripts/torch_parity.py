"""fastnn against PyTorch on the same weights and batches, in float64: BatchNorm
(training, running statistics, inference) against BatchNorm1d, AdamW with decay on the
weights only against torch.optim.AdamW with two parameter groups, clip_norm against
clip_grad_norm_, CosineDecay against a LambdaLR of the same formula. Prints the
largest difference of each quantity after 12 steps (about 1e-15 when they agree).
Needs PyTorch (pip install -e '.[bench]')."""
import math

import numpy as np
import torch

import fastnn

TOTAL, WARMUP, LR, MIN_LR, DECAY, CLIP = 40, 5, 0.01, 1e-4, 0.05, 0.5


def cosine(t):
    """CosineDecay's formula, as the factor LambdaLR multiplies LR by."""
    if t < WARMUP:
        return t / WARMUP
    if t < TOTAL:
        return (MIN_LR + (LR - MIN_LR) * 0.5 * (1 + math.cos(math.pi * (t - WARMUP)
                                                             / (TOTAL - WARMUP)))) / LR
    return MIN_LR / LR


def parity(steps=12):
    """{quantity: largest absolute difference between fastnn and PyTorch}."""
    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((256, 20)), rng.integers(0, 5, 256)
    d1, n1, d2, n2 = fastnn.Dense(20, 32), fastnn.BatchNorm(32), fastnn.Dense(32, 16), \
        fastnn.BatchNorm(16)
    d3 = fastnn.Dense(16, 5, activation="softmax")
    model = fastnn.Sequential([d1, n1, fastnn.Activation("relu"), d2, n2,
                               fastnn.Activation("tanh"), d3],
                              loss="categorical_crossentropy", dtype="float64", seed=0)
    net = torch.nn.Sequential(torch.nn.Linear(20, 32, bias=False), torch.nn.BatchNorm1d(32),
                              torch.nn.ReLU(), torch.nn.Linear(32, 16, bias=False),
                              torch.nn.BatchNorm1d(16), torch.nn.Tanh(), torch.nn.Linear(16, 5))
    with torch.no_grad():
        for dense, linear in ((d1, net[0]), (d2, net[3]), (d3, net[6])):
            linear.weight.copy_(torch.from_numpy(dense.W))
        net[6].bias.copy_(torch.from_numpy(d3.b))
    opt = fastnn.AdamW(lr=fastnn.CosineDecay(LR, TOTAL, WARMUP, MIN_LR), weight_decay=DECAY)
    weights = [net[0].weight, net[3].weight, net[6].weight]
    others = [p for p in net.parameters() if all(p is not w for w in weights)]
    torch_opt = torch.optim.AdamW([{"params": weights, "weight_decay": DECAY},
                                   {"params": others, "weight_decay": 0.0}], lr=LR)
    schedule = torch.optim.lr_scheduler.LambdaLR(torch_opt, cosine)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    net.train()
    for step in range(steps):
        batch = slice(32 * (step % 8), 32 * (step % 8) + 32)
        model.train_step(X[batch], y[batch], opt, clip_norm=CLIP)
        torch_opt.zero_grad()
        torch.nn.functional.cross_entropy(net(Xt[batch]), yt[batch]).backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
        torch_opt.step()
        schedule.step()
    net.eval()
    pairs = {"W1": (d1.W, net[0].weight), "W2": (d2.W, net[3].weight), "W3": (d3.W, net[6].weight),
             "b3": (d3.b, net[6].bias), "gamma1": (n1.gamma, net[1].weight),
             "beta2": (n2.beta, net[4].bias), "running_mean1": (n1.running_mean, net[1].running_mean),
             "running_var2": (n2.running_var, net[4].running_var),
             "inference probabilities": (model.predict_proba(X), torch.softmax(net(Xt), dim=1)),
             "learning rate": (np.array(opt.current_lr()), torch.tensor(schedule.get_last_lr()[0]))}
    return {name: float(np.max(np.abs(a - b.detach().numpy()))) for name, (a, b) in pairs.items()}


if __name__ == "__main__":
    for name, difference in parity().items():
        print(f"{name:<24}{difference:.2e}")
