"""SLURM: nnassure.slurm's refusal of a run without a usable partition (hand-made scontrol outputs)."""

from __future__ import annotations

import subprocess

import pytest

from nnassure import slurm
from nnassure.slurm import parse_partitions, partition_problem


def line(name: str, default: bool = False, hidden: bool = False) -> str:
    # The shape of `scontrol --all show partition -o` on Slurm 22.05 (fields cut down).
    return (f"PartitionName={name} AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL "
            f"Default={'YES' if default else 'NO'} QoS=N/A DefaultTime=NONE Hidden={'YES' if hidden else 'NO'} "
            f"MaxNodes=UNLIMITED MaxTime=UNLIMITED Nodes=vm State=UP TotalCPUs=2 TotalNodes=1 "
            f"TRES=cpu=2,mem=21694M,node=1,billing=2")


WITH_DEFAULT = "\n".join([line("cpu", default=True), line("gpu")]) + "\n"
NO_DEFAULT = "\n".join([line("short"), line("long")]) + "\n"
HIDDEN_DEFAULT = "\n".join([line("secret", default=True, hidden=True), line("open")]) + "\n"


def test_partitions_are_parsed_with_their_flags() -> None:
    parsed = parse_partitions(WITH_DEFAULT)
    assert [p["PartitionName"] for p in parsed] == ["cpu", "gpu"]
    assert [p["Default"] for p in parsed] == ["YES", "NO"]
    assert parsed[0]["TRES"] == "cpu=2,mem=21694M,node=1,billing=2"  # only the first '=' splits
    assert parse_partitions("No partitions in the system\n") == []


@pytest.mark.parametrize(("resources", "environ", "output"), [
    ({}, {}, WITH_DEFAULT),                               # the cluster's default partition
    ({"slurm_partition": "gpu"}, {}, WITH_DEFAULT),       # another one, named
    ({"slurm_partition": "'gpu'"}, {}, WITH_DEFAULT),     # quoted as Snakemake's docs suggest
    ({"slurm_partition": "short,long"}, {}, NO_DEFAULT),  # sbatch's list of partitions
    ({}, {"SBATCH_PARTITION": "cpu"}, WITH_DEFAULT),      # the default itself
    ({}, {"SBATCH_PARTITION": "long"}, NO_DEFAULT),       # no -p from the plugin, so sbatch reads it
    ({"slurm_partition": "long"}, {"SBATCH_PARTITION": "short"}, NO_DEFAULT),  # -p wins, as asked
    ({}, {}, HIDDEN_DEFAULT),                             # sbatch without -p uses the hidden default
    ({}, {}, None),                                       # partitions unknown: nothing to refuse
])
def test_a_run_whose_jobs_go_where_asked_is_not_refused(resources, environ, output) -> None:
    assert partition_problem(resources, environ, output) is None


@pytest.mark.parametrize(("resources", "environ", "output", "expected"), [
    ({}, {}, NO_DEFAULT, "this SLURM cluster has no default partition and none was given: run with "
     "--default-resources slurm_partition=<name> (partitions: short, long) or set SBATCH_PARTITION"),
    ({}, {"SBATCH_PARTITION": "gpu"}, WITH_DEFAULT, "SBATCH_PARTITION=gpu would be ignored: the SLURM plugin "
     "submits with -p cpu (the cluster's default partition) when no slurm_partition is given; run with "
     "--default-resources slurm_partition=gpu"),
    ({"slurm_partition": "gpu"}, {}, NO_DEFAULT,
     "slurm_partition=gpu is not a partition of this SLURM cluster (partitions: short, long)"),
    ({"slurm_partition": "short,gpu"}, {}, NO_DEFAULT,
     "slurm_partition=gpu is not a partition of this SLURM cluster (partitions: short, long)"),
    ({}, {"SBATCH_PARTITION": "gpu"}, NO_DEFAULT,
     "SBATCH_PARTITION=gpu is not a partition of this SLURM cluster (partitions: short, long)"),
    ({}, {}, "No partitions in the system\n",
     "the SLURM cluster has no partitions (scontrol show partition lists none): no job can be submitted"),
])
def test_a_run_whose_jobs_would_fail_or_go_elsewhere_is_refused_in_one_line(resources, environ, output,
                                                                            expected) -> None:
    problem = partition_problem(resources, environ, output)
    assert problem == expected
    assert "\n" not in problem


def test_the_hidden_default_does_not_hide_the_sbatch_partition_variable() -> None:
    # The plugin's `sinfo` does not see a hidden default, so it passes no -p and SBATCH_PARTITION counts.
    assert partition_problem({}, {"SBATCH_PARTITION": "open"}, HIDDEN_DEFAULT) is None


class FakeResource:
    """What Snakemake's Resources hold: the value as given is `.raw`."""

    def __init__(self, raw: object) -> None:
        self.raw = raw


def test_the_wrapper_reads_snakemake_resources_and_asks_scontrol(monkeypatch) -> None:
    monkeypatch.setattr(slurm, "scontrol_partitions", lambda: NO_DEFAULT)
    resources = {"tmpdir": FakeResource("system_tmpdir"), "slurm_partition": FakeResource("long")}
    assert slurm.slurm_partition_problem(resources, environ={}) is None
    assert slurm.slurm_partition_problem(None, environ={}).startswith("this SLURM cluster has no default")


def test_the_wrapper_names_a_cluster_that_cannot_be_asked(monkeypatch) -> None:
    monkeypatch.setattr(slurm.shutil, "which", lambda name: None)
    assert slurm.slurm_partition_problem({}, environ={}) == (
        "the SLURM executor needs SLURM's client commands, but scontrol is not on PATH")
    monkeypatch.setattr(slurm.shutil, "which", lambda name: "/usr/bin/scontrol")

    def hangs(command, **kwargs):
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    monkeypatch.setattr(slurm.subprocess, "run", hangs)
    assert slurm.slurm_partition_problem({}, environ={}) == (
        "'scontrol --all show partition -o' did not answer within 30 s: is slurmctld reachable from this host?")

    def fails(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "slurm_load_partitions: Unable to contact slurm "
                                                          "controller (connect failure)\n")

    monkeypatch.setattr(slurm.subprocess, "run", fails)
    assert slurm.slurm_partition_problem({}, environ={}) == (
        "'scontrol --all show partition -o' failed (slurm_load_partitions: Unable to contact slurm controller "
        "(connect failure)): is slurmctld reachable from this host?")
