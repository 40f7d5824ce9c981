"""Benchmarks of issue 7: `passpro bench` (services/cli/bench.py) runs `bench.harness`; see BENCHMARKS.md."""
