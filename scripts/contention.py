"""fastnn beside other work and inside joblib's workers: see fastnn/bench/contention.py."""
import sys

from fastnn.bench.contention import main

if __name__ == "__main__":
    sys.exit(main())
