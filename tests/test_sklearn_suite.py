"""scikit-learn's own test_mlp.py, its import swapped for fastnn's estimators
(scripts/sklearn_mlp_suite.py): every test passes but the few listed here, each a
difference fastnn has yet to close (docs/sklearn.md)."""
import pytest

pytest.importorskip("sklearn")

#: test name -> why it does not pass yet
NOT_YET = {}


def test_scikit_learns_own_mlp_tests_pass(script):
    outcomes = script("sklearn_mlp_suite").run_suite()
    assert len(outcomes) >= 50        # the file was found and collected
    failing = {name: message for name, (outcome, message) in outcomes.items()
               if outcome != "passed"}
    unexpected = {name: message for name, message in failing.items() if name not in NOT_YET}
    assert unexpected == {}
    fixed = set(NOT_YET) - set(failing)
    assert fixed == set(), "passes now: take it off NOT_YET"
