"""Thin Hydra entry points: ``python -m nnassure.stages.<name> key=value ...``.

Each composes the config, reads its input files, calls the library function, writes its
outputs atomically and logs to W&B. Snakemake runs exactly these commands.
"""
