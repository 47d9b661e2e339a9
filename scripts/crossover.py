"""GFLOP/s of BLAS and the hand-written loops across sizes (see fastnn/bench/crossover.py)."""
import sys

from fastnn.bench.crossover import main

if __name__ == "__main__":
    sys.exit(main())
