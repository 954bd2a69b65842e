"""nnassure: an experiment pipeline that tells how far a neural network can be trusted."""

__version__ = "0.1.0"
