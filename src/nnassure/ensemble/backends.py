"""The MILP backends :func:`nnassure.ensemble.milp.solve` accepts.

Kept apart from ``milp.py`` (and free of numpy, scipy and torch) so that the config schema can
check ``ensemble.backends`` without importing the solver stack.
"""

BACKENDS = ("highs", "gurobi")
