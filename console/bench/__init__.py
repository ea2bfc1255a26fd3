"""The benchmark suite behind ``samu bench`` / ``make bench``."""

from console.bench._runner import BENCHMARKS, run_all

__all__ = ["BENCHMARKS", "run_all"]
