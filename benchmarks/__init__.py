"""Benchmarks of envctl against moto behind injected latency (see README.md). Not part of the package."""
