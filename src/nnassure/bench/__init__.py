"""``make bench``: timings of the pipeline's claims, each module one report under results/bench/.

``python -m nnassure.bench.certify``, ``.proven`` and ``.ensemble`` take the stages' ``key=value``
config overrides (which experiment, model, data set and how many threads) and their own
``--options``; every input is a file of that experiment, found through ExperimentPaths."""
