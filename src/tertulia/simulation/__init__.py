"""Simulated men and the simulated channel they use, so that a whole program can run in
simulated time: the demo, the tests and the benchmarks."""
