"""Benchmarks and the process launcher they share with the end-to-end tests."""
