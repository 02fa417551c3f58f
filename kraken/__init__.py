"""Kraken: a continuous-integration system for huge test suites."""

__version__ = "0.1.0"
