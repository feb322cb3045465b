"""Side-by-side timings against peers. Run by hand: ``python -m benchmarks.<name>``."""
