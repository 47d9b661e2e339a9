"""scikit-learn's MLP against fastnn's drop-in: the same as ``fastnn bench --sklearn``
(see fastnn/bench/sklearn_swap.py)."""
import sys

from fastnn.bench.sklearn_swap import main

if __name__ == "__main__":
    sys.exit(main())
