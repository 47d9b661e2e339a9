"""Where a workload's step goes, part by part (see fastnn/bench/breakdown.py)."""
import sys

from fastnn.bench.breakdown import main

if __name__ == "__main__":
    sys.exit(main())
