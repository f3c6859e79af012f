"""Benchmarks: what the extension costs each Lambda environment, under the RIE (not tests)."""
