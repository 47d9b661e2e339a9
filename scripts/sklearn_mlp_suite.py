"""scikit-learn's own test file for its MLP (sklearn/neural_network/tests/test_mlp.py, in
its wheel), run against fastnn's estimators: the file is copied to a temporary folder
with its import of MLPClassifier and MLPRegressor swapped for fastnn's, and run by
pytest. Prints pytest's summary (each failure's name and first line with -v) and the
share passed.

    python scripts/sklearn_mlp_suite.py [-v] [pytest arguments...]
"""
import os
import re
import subprocess
import sys
import tempfile

SWAP = ("from sklearn.neural_network import MLPClassifier, MLPRegressor",
        "from fastnn import MLPClassifier, MLPRegressor")


def suite_source():
    """test_mlp.py of the installed scikit-learn, its import swapped for fastnn's."""
    import sklearn.neural_network.tests as tests

    with open(os.path.join(os.path.dirname(tests.__file__), "test_mlp.py")) as f:
        source = f.read()
    if SWAP[0] not in source:
        raise SystemExit(f"scikit-learn's test_mlp.py no longer has {SWAP[0]!r}")
    return source.replace(SWAP[0], SWAP[1])


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="fastnn-sklearn-suite-") as folder:
        path = os.path.join(folder, "test_mlp_fastnn.py")
        with open(path, "w") as f:
            f.write(suite_source())
        run = subprocess.run([sys.executable, "-m", "pytest", path, "-q", "-rf", "-p",
                              "no:cacheprovider", *args], cwd=folder, capture_output=True,
                             text=True)
    out = run.stdout
    print(out[-6000:])
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|error)", out)}
    total = sum(counts.values())
    if total:
        print(f"fastnn passes {counts.get('passed', 0)} of {total} tests of scikit-learn's "
              f"test_mlp.py ({100 * counts.get('passed', 0) / total:.0f} %)")
    return 0 if total else 1


if __name__ == "__main__":
    sys.exit(main())
