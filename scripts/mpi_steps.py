"""Data-parallel step time and allreduce time per workload (see fastnn/bench/mpi_steps.py):
``python scripts/mpi_steps.py`` (one process), ``mpiexec -n 2 python scripts/mpi_steps.py``."""
import sys

from fastnn.bench.mpi_steps import main

if __name__ == "__main__":
    sys.exit(main())
