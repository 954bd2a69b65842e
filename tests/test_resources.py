"""Every rule asks for threads, mem_mb and runtime from the config's `resources` section, and the
paper's ensemble rows ask for the time their solver limits can take."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from nnassure.config import compose
from nnassure.ensemble.benchmarks import selected_benchmarks
from nnassure.stage_keys import STAGES

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))


def rule_blocks(text: str) -> list[str]:
    """Each rule's text: from a `rule` line to the next one (or the end)."""
    starts = [m.start() for m in re.finditer(r"^\s*rule\b[^\n]*:\s*$", text, flags=re.M)]
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=False)]


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.name for p in RULE_FILES])
def test_every_rule_in_the_rule_files_declares_threads_and_resources(path: Path) -> None:
    blocks = rule_blocks(path.read_text())
    if path.name != "common.smk":
        assert blocks, f"{path.name} defines no rule"
    for block in blocks:
        head = block.strip().splitlines()[0:4]
        assert re.search(r"^\s+threads:", block, flags=re.M), f"{path.name}: a rule lacks threads: {head}"
        assert re.search(r"^\s+resources:", block, flags=re.M), f"{path.name}: a rule lacks resources: {head}"


def test_every_job_of_the_smoke_dag_asks_for_its_stages_configured_resources(tmp_path: Path) -> None:
    """A dry run from scratch prints every job's resources; each equals conf/resources/ for its stage."""
    import numpy as np
    import torch

    # The smoke experiment's DAG, and an assessment's (an outside model, its data, one property).
    torch.onnx.export(torch.nn.Sequential(torch.nn.Linear(2, 2)), torch.zeros(1, 2), str(tmp_path / "m.onnx"),
                      dynamo=False)
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2), np.float32), y=np.zeros(4, np.int64))
    (tmp_path / "p.vnnlib").write_text("(declare-const X_0 Real)\n")
    assessment = (f"assess.model={tmp_path / 'm.onnx'} assess.data={tmp_path / 'd.npz'} "
                  f"assess.properties=[{tmp_path / 'p.vnnlib'}]")
    seen = set()
    for experiment, extra in (("smoke", ""), ("assess", assessment)):
        result = subprocess.run([str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "-n",
                                 "--cores", "2", "--config", f"experiment={experiment}",
                                 f"overrides=tracking=disabled {extra}"], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        cfg = compose([f"experiment={experiment}"])
        jobs = re.findall(r"^(?:local)?rule (\w+):\n(.*?)(?=^\S|\Z)", result.stdout, flags=re.M | re.S)
        for rule, body in jobs:
            if rule == "all":
                continue
            match = re.search(r"resources: (.*)", body)
            assert match, f"job of rule {rule} declares no resources"
            resources = dict(item.split("=", 1) for item in match.group(1).split(", "))
            expected = cfg.resources[rule]
            assert int(resources["mem_mb"]) == expected.mem_mb, rule
            assert int(resources["runtime"]) == expected.runtime, rule
            seen.add(rule)
    assert seen == set(STAGES) - {"sweep_summary"}


def test_the_paper_asks_for_the_worst_case_time_of_an_ensemble_rows_solver_calls() -> None:
    cfg = compose(["experiment=paper"])
    e = cfg.ensemble
    classifiers = max(b.classifiers for b in selected_benchmarks(e))
    # MILP per backend, one baseline attack per classifier, MaxMILP, then SMT (nnassure.ensemble.experiment)
    seconds = (len(e.backends) + classifiers + 1) * e.time_limit + (e.smt_time_limit if e.smt else 0)
    assert cfg.resources.ensemble_row.runtime * 60 >= seconds
    quick = compose(["experiment=quick"])
    q = quick.ensemble
    quick_seconds = (len(q.backends) + classifiers + 1) * q.time_limit + (q.smt_time_limit if q.smt else 0)
    assert quick.resources.ensemble_row.runtime * 60 >= quick_seconds


def test_a_local_run_is_scheduled_within_the_machines_memory() -> None:
    make = subprocess.run(["make", "-n", "-C", str(REPO), "run"], capture_output=True, text=True, timeout=60)
    assert re.search(r"snakemake --cores \d+ --resources mem_mb=\d+ ", make.stdout), make.stdout
