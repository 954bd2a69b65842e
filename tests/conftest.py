"""Shared fixtures: a tiny data set, seeded random ReLU MLPs (2 inputs, 1 logit) and the smoke run."""

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from torch import nn

from nnassure.data import generate_dataset, stratified_split


@pytest.fixture(scope="session")
def small_frame():
    """200 points of data set B (balanced) with a stratified 80/20 train/val split."""
    return stratified_split(generate_dataset("b", 200, 0.5, 0.004, 0), 0.2, 0)


def make_mlp(widths, seed=0):
    """nn.Sequential(Linear(2, w1), ReLU, ..., Linear(w_last, 1)) with seeded default init, in eval mode."""
    torch.manual_seed(seed)
    layers = []
    fan_in = 2
    for width in widths:
        layers += [nn.Linear(fan_in, width), nn.ReLU()]
        fan_in = width
    layers.append(nn.Linear(fan_in, 1))
    return nn.Sequential(*layers).eval()


@pytest.fixture(scope="session")
def random_mlp():
    """Factory: ``random_mlp([16, 8], seed=3)`` builds a seeded MLP with those hidden widths."""
    return make_mlp


REPO = Path(__file__).resolve().parents[1]

# Under pytest-xdist (make test) two workers share the cores: one torch thread in each. With
# torch's default of one per core, OpenMP threads spun waiting for a core the other worker held
# (measured: 18.5 min of user time for the suite, against 11.7 min run serially).
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`snakemake --cores 2` on experiment=smoke (tracking disabled) in a temporary directory, run once
    for the session: tests/test_pipeline.py checks it and tests/test_slurm.py compares SLURM runs
    with it. Returns its results/smoke directory."""
    workdir = tmp_path_factory.mktemp("smoke")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([str(Path(sys.executable).with_name("snakemake")), "-s", str(REPO / "Snakefile"),
                             "--directory", str(workdir), "--cores", "2", "--config", "experiment=smoke",
                             "overrides=tracking=disabled"], capture_output=True, text=True, env=env, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir / "results" / "smoke"


# Where the SLURM tests find Slurm's client commands: PATH as the suite was started with. Kept in
# the environment, since pytest-xdist's workers inherit the PATH this file's pytest_configure
# changed in the controlling process.
REAL_PATH = os.environ.setdefault("NNASSURE_TESTS_REAL_PATH", os.environ["PATH"])


def pytest_configure(config: pytest.Config) -> None:
    """Outside the SLURM tests, a ``scontrol`` that fails at once comes first on PATH. Once Slurm's
    client is installed (the SLURM tests install it, and on a developer's machine it may be there
    from the start), every Snakemake start of the suite would otherwise wait 9 s for ``scontrol show
    config`` (see :func:`pytest_collection_modifyitems`): that made the whole suite 28 min instead
    of 20 here. tests/test_slurm.py runs on :data:`REAL_PATH`."""
    stub = Path(tempfile.mkdtemp(prefix="nnassure-no-scontrol-"))
    scontrol = stub / "scontrol"
    scontrol.write_text("#!/bin/sh\n# nnassure's test suite: no Slurm controller outside the SLURM tests\nexit 1\n")
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.environ["PATH"] = f"{stub}{os.pathsep}{REAL_PATH}"


# The modules of the smoke run's tests and of the SLURM tests (which compare with the smoke run).
# `make test` runs the suite on two pytest-xdist workers; these modules go to one worker as one
# unit, first, so that the smoke run is made once and one SLURM cluster is started, while the
# other worker runs the rest of the suite.
END_TO_END_MODULES = ("tests/test_pipeline.py", "tests/test_slurm.py")


def _end_to_end(nodeid: str) -> bool:
    return nodeid.split("::", 1)[0] in END_TO_END_MODULES


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The end-to-end modules first (the longest unit of work starts first under xdist), and the
    tests on a real SLURM cluster last among them. Those install Slurm's client commands, and once
    ``sinfo`` is on PATH the SLURM executor plugin runs ``scontrol show config`` whenever Snakemake
    starts (its import computes a help text from MinJobAge); with no controller answering, that
    waits for its 10 s timeout, on every later Snakemake start of the suite (measured: 9 s)."""
    items.sort(key=lambda item: (not _end_to_end(item.nodeid), item.get_closest_marker("slurm") is not None))


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: unknown to a plain pytest
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """A module at a time to whichever worker is free (module fixtures are made once), and
    :data:`END_TO_END_MODULES` as one unit.

    Written here rather than marking the tests with ``xdist_group`` for ``--dist loadgroup``: with
    pytest 9.2, pytest-xdist 3.8's loadgroup silently stops grouping (it renames node ids through a
    field pytest no longer reads; pytest-xdist issue 1386), and the smoke run was made on both
    workers."""
    from xdist.scheduler import LoadScopeScheduling

    class EndToEndAsOneUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "end-to-end" if _end_to_end(nodeid) else super()._split_scope(nodeid)

    return EndToEndAsOneUnit(config, log)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line on whether the tests on a real SLURM cluster ran, so that a skip is not missed."""
    stats = terminalreporter.stats
    reports = [r for outcome in ("passed", "failed", "error", "skipped") for r in stats.get(outcome, [])
               if "slurm" in getattr(r, "keywords", {}) and (r.when == "call" or not r.passed)]
    if not reports:
        return
    if all(r.skipped for r in reports):
        reasons = sorted({str(r.longrepr[2]).removeprefix("Skipped: ") for r in reports})
        terminalreporter.write_line(f"SLURM tests skipped: {'; '.join(reasons)}")
    else:
        counts = {o: sum(getattr(r, o) for r in reports) for o in ("passed", "failed", "skipped")}
        terminalreporter.write_line("SLURM tests ran on a real cluster: "
                                    + ", ".join(f"{n} {o}" for o, n in counts.items() if n))
