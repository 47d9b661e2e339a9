"""The ``fastnn`` command: ``train bike``, ``info``, ``bench``."""
import argparse
import importlib
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
    hidden = [int(h) for h in args.hidden.split(",") if h.strip()]
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


def _command_main(command, module):
    """``fastnn.<module>.main``, imported only when its command runs; a clear message
    (exit status 1) if that module is not part of this installation."""
    name = f"fastnn.{module}"
    try:
        return importlib.import_module(name).main
    except ModuleNotFoundError as exc:
        if exc.name != name:   # the module exists but one of its own imports is missing
            raise
        raise SystemExit(f"fastnn {command}: this installation has no {name} module, "
                         f"which the '{command}' command needs") from None


def _positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _non_negative_float(text):
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _widths(text):
    """'64,64' -> '64,64' after checking every width is a positive integer."""
    try:
        widths = [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        widths = []
    if not widths or min(widths) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive layer widths such as 64,64, got {text!r}")
    return text


def _parser():
    parser = argparse.ArgumentParser(
        prog="fastnn", description="fastnn: train bike | info | bench")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model on a shipped data set")
    train.add_argument("dataset", choices=["bike"])
    train.add_argument("--epochs", type=_positive_int, default=100, help="at most this many (100)")
    train.add_argument("--patience", type=_non_negative_int, default=10,
                       help="early stopping: epochs without a better validation MSE (10; "
                            "0 disables)")
    train.add_argument("--batch-size", type=_positive_int, default=64)
    train.add_argument("--lr", type=_positive_float, default=1e-3, help="Adam learning rate")
    train.add_argument("--l2", type=_non_negative_float, default=1e-3, help="L2 penalty of hidden weights")
    train.add_argument("--hidden", type=_widths, default="64,64", help="hidden layer widths (64,64)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    train.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    info = sub.add_parser("info", help="what decides speed on this machine")
    info.add_argument("--json", action="store_true")
    sub.add_parser("bench", help="the head-to-head comparison (scripts/compare.py); "
                   "--sklearn: scikit-learn's MLP against fastnn's (scripts/sklearn_swap.py)",
                   add_help=False)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        if "--sklearn" in argv[1:]:
            rest = [a for a in argv[1:] if a != "--sklearn"]
            return _command_main("bench --sklearn", "bench.sklearn_swap")(rest) or 0
        return _command_main("bench", "bench")(argv[1:]) or 0
    args = _parser().parse_args(argv)
    if args.command == "train":
        train_bike(args)
    elif args.command == "info":
        return _command_main("info", "sysinfo")(args) or 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
