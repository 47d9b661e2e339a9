"""The head-to-head comparison: the same as ``fastnn bench`` (see fastnn/bench)."""
import sys

from fastnn.bench import main

if __name__ == "__main__":
    sys.exit(main())
