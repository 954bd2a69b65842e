"""SLURM: nnassure.slurm's refusal of a run without a usable partition (hand-made scontrol outputs)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REAL_PATH

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


# --- On a real SLURM cluster (tests/slurm/cluster.sh) -------------------------------------------

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
PROFILE = REPO / "workflow" / "profiles" / "slurm"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
# The real PATH: the rest of the suite puts a failing scontrol first (tests/conftest.py).
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{REAL_PATH}"}
# Bounds for `timeout`: an unanswered status query must fail the test, not hang it.
RUN_TIMEOUT_S = 600
FAIL_TIMEOUT_S = 180
SUBMITTED = re.compile(r"^Job (\d+) has been submitted with SLURM jobid (\d+)", re.M)


def cluster_blocker() -> str | None:
    """Why no test cluster can be started here, or None."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "the SLURM executor plugin is not installed (pip install -c requirements.lock -e '.[slurm]')"
    if os.geteuid() != 0:
        return "starting the test cluster needs root"
    if shutil.which("dpkg-query") is None or shutil.which("apt-get") is None:
        return "the test cluster is installed with apt-get (Debian/Ubuntu), which is not here"
    return None


def run_cluster(command: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(CLUSTER), command], capture_output=True, text=True, timeout=timeout, env=ENV)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[None]:
    """A running single-node SLURM cluster; installed and started here when it can be, and stopped at
    the end if this fixture started it. Skips, with the reason, where it cannot be."""
    if blocker := cluster_blocker():
        pytest.skip(blocker)
    installed = run_cluster("install", timeout=600)
    if installed.returncode != 0:  # typically: the Debian registry is not reachable
        reason = (installed.stderr.strip().splitlines() or ["no message"])[-1]
        pytest.skip(f"cluster.sh install failed ({reason})")
    was_running = run_cluster("status", timeout=60).returncode == 0
    started = run_cluster("start", timeout=120)
    if started.returncode != 0 and "not written by this script" in started.stderr:
        pytest.skip(started.stderr.strip().splitlines()[-1])
    assert started.returncode == 0, started.stdout + started.stderr
    yield
    if not was_running:
        stopped = run_cluster("stop", timeout=120)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def through_slurm(workdir: Path, *args: str, timeout_s: int = RUN_TIMEOUT_S,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """snakemake --profile workflow/profiles/slurm in `workdir`, under `timeout` (exit status 124 when hit)."""
    return subprocess.run(["timeout", str(timeout_s), str(SNAKEMAKE), "--profile", str(PROFILE), *args],
                          capture_output=True, text=True, cwd=workdir, env=env or ENV, timeout=timeout_s + 60)


def slurm_states(job_ids: list[str]) -> dict[str, str]:
    """The states slurmctld still holds (MinJobAge=600 on the test cluster) for these SLURM jobs."""
    out = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%i|%T", "--jobs", ",".join(job_ids)],
                         capture_output=True, text=True, timeout=60, check=True, env=ENV).stdout
    return dict(line.split("|") for line in out.split())


@pytest.mark.slurm
@pytest.mark.slow
def test_smoke_jobs_run_through_slurm_to_the_tables_of_a_local_run(slurm_cluster: None, smoke_run: Path,
                                                                   tmp_path: Path) -> None:
    """On a copy of the local smoke run, the certificates of two models and the verified-classification
    report are made again, each job a SLURM job through the profile (the report waits for both
    certify jobs): every file they write is byte-identical to the local run's. Not the whole smoke
    DAG, which through SLURM on 2 cores would not fit make test's time (each level of the DAG costs
    a status-check interval on top of its jobs)."""
    workdir = tmp_path / "run"
    shutil.copytree(smoke_run.parents[1], workdir, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    root = workdir / "results" / "smoke"
    remade = sorted(p for cell in ("b_c10", "a_c1") for p in (root / "certify").glob(f"{cell}[._]*"))
    remade += sorted(p for d in ("tables", "figures") for p in (root / d).glob("vc_*"))
    for path in remade:
        path.unlink()
    started = time.monotonic()
    result = through_slurm(workdir, "-s", str(REPO / "Snakefile"), "results/smoke/tables/vc_table3.csv",
                           "--config", "experiment=smoke", "overrides=tracking=disabled")
    seconds = time.monotonic() - started
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"exit {result.returncode} after {seconds:.0f} s:\n{log[-4000:]}"
    ran = re.findall(r"^(local)?rule (\w+):\n(?:.*\n)*?\s+jobid: (\d+)", log, flags=re.M)
    assert sorted(rule for _, rule, _ in ran) == ["certify", "certify", "report"], ran
    assert not [rule for local, rule, _ in ran if local], "a job ran on the submitting host"
    submitted = dict(SUBMITTED.findall(log))
    assert sorted(submitted) == sorted(jobid for _, _, jobid in ran), log[-4000:]
    assert set(slurm_states(list(submitted.values())).values()) == {"COMPLETED"}
    for path in remade:
        assert path.read_bytes() == (smoke_run / path.relative_to(root)).read_bytes(), \
            f"{path.relative_to(root)} made through SLURM differs from the local run's"


@pytest.mark.slurm
def test_a_failing_slurm_job_ends_the_run_with_an_error(slurm_cluster: None, tmp_path: Path) -> None:
    started = time.monotonic()
    result = through_slurm(tmp_path, "-s", str(REPO / "tests" / "slurm" / "Snakefile"), "fail",
                           timeout_s=FAIL_TIMEOUT_S)
    seconds = time.monotonic() - started
    log = result.stdout + result.stderr
    assert result.returncode not in (0, 124), f"exit {result.returncode} after {seconds:.0f} s:\n{log[-3000:]}"
    (job_id,) = [slurm_id for _, slurm_id in SUBMITTED.findall(log)]
    assert f"SLURM-job '{job_id}' failed, SLURM status is: 'FAILED'" in log, log[-3000:]
    assert slurm_states([job_id]) == {job_id: "FAILED"}


@pytest.mark.slurm
def test_a_partition_that_sbatch_would_ignore_is_refused_before_any_submission(slurm_cluster: None,
                                                                              tmp_path: Path) -> None:
    """The test cluster has a default partition, so the plugin's -p would override SBATCH_PARTITION."""
    result = through_slurm(tmp_path, "-s", str(REPO / "tests" / "slurm" / "Snakefile"), "ok",
                           env={**ENV, "SBATCH_PARTITION": "elsewhere"}, timeout_s=FAIL_TIMEOUT_S)
    log = result.stdout + result.stderr
    assert result.returncode == 1, log[-3000:]
    refusals = [line for line in result.stderr.splitlines() if line.startswith("nnassure: ")]
    assert refusals == ["nnassure: SBATCH_PARTITION=elsewhere would be ignored: the SLURM plugin submits with -p "
                        "main (the cluster's default partition) when no slurm_partition is given; run with "
                        "--default-resources slurm_partition=elsewhere"], log[-3000:]
    assert not SUBMITTED.search(log)
    # The same run with the partition named as the refusal says goes on to SLURM.
    named = through_slurm(tmp_path, "-s", str(REPO / "tests" / "slurm" / "Snakefile"), "ok", "--default-resources",
                          "slurm_partition=main", env={**ENV, "SBATCH_PARTITION": "elsewhere"},
                          timeout_s=FAIL_TIMEOUT_S)
    assert named.returncode == 0, (named.stdout + named.stderr)[-3000:]
    (job_id,) = [slurm_id for _, slurm_id in SUBMITTED.findall(named.stdout + named.stderr)]
    assert (tmp_path / "ok.txt").read_text().strip() == job_id
