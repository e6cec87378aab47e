"""Evaluation: trajectory metrics, plots, peer methods for comparisons and benchmarks."""
