"""One workload's epoch under each plan (serial, products, split), alternating: see
fastnn/bench/plans.py."""
import sys

from fastnn.bench.plans import main

if __name__ == "__main__":
    sys.exit(main())
