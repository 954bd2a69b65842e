"""Refuse a SLURM run, before anything is submitted, whose jobs would not go where the user meant.

The SLURM executor plugin (snakemake-executor-plugin-slurm 2.8) chooses a job's partition like this:
the ``slurm_partition`` resource if there is one; else the partition ``sinfo`` marks as the
cluster's default, passed as ``-p``; else no ``-p`` at all, and sbatch takes ``SBATCH_PARTITION``
or the cluster's own (hidden) default, or fails. Two outcomes of that are worth stopping for, since
the plugin would otherwise fail every job one by one or run them all somewhere else:

- the cluster has no default partition and none is given: each sbatch fails with "No partition
  specified or system default partition";
- ``SBATCH_PARTITION`` is set and the cluster has a default partition: the plugin's ``-p`` wins over
  the environment variable (sbatch's rule), so every job silently runs in the default partition.

A named partition that the cluster does not have is refused too. ``partition_problem`` decides from
its arguments alone; ``slurm_partition_problem`` feeds it ``scontrol show partition``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping

# scontrol asks slurmctld; a cluster that does not answer within this is not usable anyway.
SCONTROL_TIMEOUT_S = 30
FIX = "run with --default-resources slurm_partition=<name>"


def parse_partitions(scontrol_output: str) -> list[dict[str, str]]:
    """The partitions in ``scontrol show partition -o`` output, one ``{key: value}`` per line."""
    partitions = []
    for line in scontrol_output.splitlines():
        if line.startswith("PartitionName="):
            partitions.append({key: value for key, _, value in (token.partition("=") for token in line.split())})
    return partitions


def _names(value: str) -> list[str]:
    # sbatch takes a comma-separated list of partitions (the first that can run the job is used).
    return [name for name in value.strip().strip("'\"").split(",") if name]


def _unknown(requested: Iterable[str], known: list[str]) -> list[str]:
    return [name for name in requested if name not in known]


def partition_problem(default_resources: Mapping[str, object], environ: Mapping[str, str],
                      scontrol_output: str | None) -> str | None:
    """Why this run's SLURM jobs would fail or go to the wrong partition, in one line; None if they
    would not (or if it cannot be told: ``scontrol_output`` None means the partitions are unknown).

    ``default_resources`` maps resource names to their values as given (``slurm_partition`` is
    the one read), ``environ`` is the environment sbatch would see and ``scontrol_output`` the text
    of ``scontrol show partition -o``.
    """
    given = _names(str(default_resources.get("slurm_partition") or ""))
    from_env = _names(environ.get("SBATCH_PARTITION", ""))
    if scontrol_output is None:
        return None
    partitions = parse_partitions(scontrol_output)
    known = [p["PartitionName"] for p in partitions]
    listed = f"partitions: {', '.join(known)}"
    if not partitions:
        return "the SLURM cluster has no partitions (scontrol show partition lists none): no job can be submitted"
    if given:
        if unknown := _unknown(given, known):
            return f"slurm_partition={','.join(unknown)} is not a partition of this SLURM cluster ({listed})"
        return None
    # The plugin finds the default partition with `sinfo`, which does not show hidden partitions.
    visible_default = next((p["PartitionName"] for p in partitions
                            if p.get("Default") == "YES" and p.get("Hidden") != "YES"), None)
    if visible_default is not None:
        if from_env and from_env != [visible_default]:
            return (f"SBATCH_PARTITION={','.join(from_env)} would be ignored: the SLURM plugin submits with "
                    f"-p {visible_default} (the cluster's default partition) when no slurm_partition is given; "
                    f"run with --default-resources slurm_partition={','.join(from_env)}")
        return None
    if from_env:
        if unknown := _unknown(from_env, known):
            return f"SBATCH_PARTITION={','.join(unknown)} is not a partition of this SLURM cluster ({listed})"
        return None
    if any(p.get("Default") == "YES" for p in partitions):
        return None  # a hidden default: sbatch without -p uses it
    return (f"this SLURM cluster has no default partition and none was given: {FIX} ({listed}) "
            "or set SBATCH_PARTITION")


def scontrol_partitions(timeout_s: float = SCONTROL_TIMEOUT_S) -> str:
    """The output of ``scontrol --all show partition -o`` (hidden partitions included).

    Raises RuntimeError with a one-line message when scontrol is missing, fails or hangs.
    """
    if shutil.which("scontrol") is None:
        raise RuntimeError("the SLURM executor needs SLURM's client commands, but scontrol is not on PATH")
    command = ["scontrol", "--all", "show", "partition", "-o"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"'{' '.join(command)}' did not answer within {timeout_s:g} s: "
                           "is slurmctld reachable from this host?") from None
    if result.returncode != 0:
        message = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
        raise RuntimeError(f"'{' '.join(command)}' failed ({message}): is slurmctld reachable from this host?")
    return result.stdout


def slurm_partition_problem(default_resources: Mapping[str, object] | None,
                            environ: Mapping[str, str] | None = None) -> str | None:
    """``partition_problem`` for this host's SLURM cluster, or why the cluster cannot be asked.

    ``default_resources`` is a mapping of names to values, or Snakemake's Resources (names to
    Resource objects), e.g. ``workflow.resource_settings.default_resources``.
    """
    # Snakemake's Resources hold Resource objects, whose value as given is `.raw`.
    resources = {name: getattr(default_resources[name], "raw", default_resources[name])
                 for name in default_resources or ()}
    try:
        output = scontrol_partitions()
    except RuntimeError as exc:
        return str(exc)
    return partition_problem(resources, os.environ if environ is None else environ, output)
