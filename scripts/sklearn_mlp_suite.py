"""scikit-learn's own test file for its MLP (sklearn/neural_network/tests/test_mlp.py, in
its wheel), run against fastnn's estimators: the file is copied to a temporary folder
with its import of MLPClassifier and MLPRegressor swapped for fastnn's, and run by
pytest. Prints each test that does not pass, with pytest's one-line reason, and the
share passed.

    python scripts/sklearn_mlp_suite.py [pytest arguments...]
"""
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree

SWAP = ("from sklearn.neural_network import MLPClassifier, MLPRegressor",
        "from fastnn import MLPClassifier, MLPRegressor")
#: the fixture of scikit-learn's own conftest that the file uses, at its default seed (42,
#: when SKLEARN_TESTS_GLOBAL_RANDOM_SEED is not set)
CONFTEST = """import pytest


@pytest.fixture
def global_random_seed():
    return 42
"""


def suite_source():
    """test_mlp.py of the installed scikit-learn, its import swapped for fastnn's."""
    import sklearn.neural_network.tests as tests

    with open(os.path.join(os.path.dirname(tests.__file__), "test_mlp.py")) as f:
        source = f.read()
    if SWAP[0] not in source:
        raise SystemExit(f"scikit-learn's test_mlp.py no longer has {SWAP[0]!r}")
    return source.replace(SWAP[0], SWAP[1])


def run_suite(args=()):
    """{test name: (outcome, message)}: "passed", "failed", "error" or "skipped"."""
    with tempfile.TemporaryDirectory(prefix="fastnn-sklearn-suite-") as folder:
        path = os.path.join(folder, "test_mlp_fastnn.py")
        with open(path, "w") as f:
            f.write(suite_source())
        with open(os.path.join(folder, "conftest.py"), "w") as f:
            f.write(CONFTEST)
        report = os.path.join(folder, "report.xml")
        subprocess.run([sys.executable, "-m", "pytest", path, "-q", "-p", "no:cacheprovider",
                        f"--junitxml={report}", *args], cwd=folder, capture_output=True)
        outcomes = {}
        for case in ElementTree.parse(report).iter("testcase"):
            outcome, message = "passed", ""
            for kind in ("failure", "error", "skipped"):
                found = case.find(kind)
                if found is not None:
                    outcome = "failed" if kind == "failure" else kind
                    message = (found.get("message") or "").splitlines()[0][:120] \
                        if found.get("message") else ""
            outcomes[case.get("name")] = (outcome, message)
    return outcomes


def main(argv=None):
    outcomes = run_suite(sys.argv[1:] if argv is None else argv)
    for name, (outcome, message) in outcomes.items():
        if outcome != "passed":
            print(f"{outcome.upper():8} {name}: {message}")
    passed = sum(outcome == "passed" for outcome, _ in outcomes.values())
    if not outcomes:
        print("no test ran")
        return 1
    print(f"fastnn passes {passed} of {len(outcomes)} tests of scikit-learn's test_mlp.py "
          f"({100 * passed / len(outcomes):.0f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
