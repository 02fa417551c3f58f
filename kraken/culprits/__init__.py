"""Culprit finding: the range of commits behind a regression, and its bisection (``docs/culprits.md``)."""
