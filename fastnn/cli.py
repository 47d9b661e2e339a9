"""The ``fastnn`` command: ``train bike``, ``info``, ``bench``."""
import argparse
import sys
import time

import numpy as np


def _r2(y, pred):
    """Coefficient of determination 1 - SSE / SST."""
    return 1.0 - float(np.sum((pred - y) ** 2)) / float(np.sum((y - y.mean()) ** 2))


def train_bike(args):
    """Train the bike-sharing regressor and print its train / validation / test table."""
    import fastnn
    from fastnn.datasets import load_bike

    started = time.perf_counter()
    data = load_bike(dtype=args.dtype)
    hidden = [int(h) for h in args.hidden.split(",") if h]
    widths = [data.X_train.shape[1], *hidden]
    layers = [fastnn.Dense(a, b, activation="relu", l2=args.l2)
              for a, b in zip(widths[:-1], widths[1:])] + [fastnn.Dense(widths[-1], 1)]
    model = fastnn.Sequential(layers, loss="mse", dtype=args.dtype, seed=args.seed)
    print(f"bike sharing: {len(data.y_train)} train / {len(data.y_val)} validation / "
          f"{len(data.y_test)} test hours, {widths[0]} features; {model}")
    history = model.fit(data.X_train, data.y_train, epochs=args.epochs,
                        batch_size=args.batch_size, optimizer=fastnn.Adam(lr=args.lr),
                        validation_data=(data.X_val, data.y_val), seed=args.seed,
                        verbose=0 if args.quiet else 1, early_stopping=args.patience or None)
    if history.best_epoch is not None:
        print(f"kept the weights of epoch {history.best_epoch + 1} (lowest validation MSE)")
    print(f"\n{'split':<12}{'MSE':>10}{'R2':>10}   (standardized target)")
    results = {}
    for name, X, y in (("train", data.X_train, data.y_train),
                       ("validation", data.X_val, data.y_val),
                       ("test", data.X_test, data.y_test)):
        pred = model.predict(X)
        mse = model.evaluate(X, y)["loss"]
        results[name] = (mse, _r2(y.astype(np.float64), pred.astype(np.float64)))
        print(f"{name:<12}{mse:>10.4f}{results[name][1]:>10.4f}")
    print(f"\ntrained {len(history.epoch)} epochs in {sum(history.history['time']):.2f} s; "
          f"{time.perf_counter() - started:.2f} s in all")
    return results


def _parser():
    parser = argparse.ArgumentParser(prog="fastnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model on a shipped data set")
    train.add_argument("dataset", choices=["bike"])
    train.add_argument("--epochs", type=int, default=100, help="at most this many (100)")
    train.add_argument("--patience", type=int, default=10,
                       help="early stopping: epochs without a better validation MSE (10; "
                            "0 disables)")
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    train.add_argument("--l2", type=float, default=1e-3, help="L2 penalty of hidden weights")
    train.add_argument("--hidden", default="64,64", help="hidden layer widths (64,64)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    train.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    info = sub.add_parser("info", help="what decides speed on this machine")
    info.add_argument("--json", action="store_true")
    sub.add_parser("bench", help="the head-to-head comparison (scripts/compare.py)",
                   add_help=False)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        from fastnn.bench import main as bench_main
        return bench_main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "train":
        train_bike(args)
    elif args.command == "info":
        from fastnn.sysinfo import main as info_main
        info_main(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
