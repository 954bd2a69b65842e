"""Stages for tests/test_warmstart.py: the launcher runs them as it runs nnassure.stages."""
