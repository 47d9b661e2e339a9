"""Threads, float64 and start-up figures in fresh processes (see fastnn/bench/scaling.py)."""
import sys

from fastnn.bench.scaling import main

if __name__ == "__main__":
    sys.exit(main())
