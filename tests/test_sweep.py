"""Sweeps (nnassure.sweep): the file format, the points, which stages a point runs itself, the
summary's numbers, W&B's agent mapping, and the one-line refusals before any job."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nnassure.config import compose_pipeline
from nnassure.errors import ConfigError, NnassureError
from nnassure.paths import ExperimentPaths
from nnassure.stage_keys import STAGES
from nnassure.sweep import (
    JOB_KEY_LISTS,
    REPORT_STAGES,
    changed_stages,
    downstream,
    hydra_value,
    load_sweep,
    plan,
)
from nnassure.sweep.__main__ import match_point, snakemake_command
from nnassure.sweep.summary import HEADLINES, summarize, wide

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
BASE = ["experiment=smoke"]


def sweep_file(tmp_path: Path, parameters: object, name: str = "s", **extra: object) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps({"method": "grid", "parameters": parameters, **extra}))
    return path


@pytest.fixture(scope="module")
def base():
    return compose_pipeline(BASE)


def test_the_points_are_the_product_of_the_value_lists_named_after_their_values(tmp_path: Path) -> None:
    sweep = load_sweep(sweep_file(tmp_path, {"certify.eps": {"values": [[0.01, 0.025], [0.05]]},
                                              "certify.radius_steps": {"values": [4, 8]}}))
    assert sweep.name == "s" and sweep.keys == ("certify.eps", "certify.radius_steps")
    assert [p.name for p in sweep.points] == [
        "certify.eps=0.01,0.025_certify.radius_steps=4", "certify.eps=0.01,0.025_certify.radius_steps=8",
        "certify.eps=0.05_certify.radius_steps=4", "certify.eps=0.05_certify.radius_steps=8"]
    assert sweep.points[2].overrides() == ["certify.eps=[0.05]", "certify.radius_steps=4"]


def test_a_per_job_key_is_swept_through_the_list_its_jobs_come_from(tmp_path: Path) -> None:
    sweep = load_sweep(sweep_file(tmp_path, {"train.cost_fn": {"values": [5.0]}}))
    assert sweep.points[0].overrides() == ["grid.costs=[5.0]"]
    assert JOB_KEY_LISTS["train.cost_fn"] == "grid.costs"


@pytest.mark.parametrize(("value", "text"), [
    (None, "null"), (True, "true"), (3, "3"), (0.5, "0.5"), ("a b", '"a b"'), ([1, [2.5]], "[1,[2.5]]"),
    ({"kind": "fog", "p": [0.5]}, '{kind:"fog",p:[0.5]}'),
])
def test_values_are_written_in_hydras_override_grammar(value: object, text: str) -> None:
    assert hydra_value(value) == text


@pytest.mark.parametrize(("document", "message"), [
    ({"method": "grid", "parameters": {}}, "parameters is empty"),
    ({"method": "grid", "parameters": {"certify.eps": {"values": []}}}, "empty value list"),
    ({"method": "grid", "parameters": {"certify.eps": [0.1]}}, "must be {values: [...]}"),
    ({"method": "random", "parameters": {"certify.eps": {"values": [[0.1]]}}}, "method 'random' is not supported"),
    ({"method": "grid", "parameters": {"results_dir": {"values": ["x"]}}}, "cannot be swept"),
    ({"method": "grid", "parameters": {"resources.certify.mem_mb": {"values": [1]}}}, "cannot be swept"),
    ({"method": "grid", "parameters": {"search.trial": {"values": [1]}}}, "set per job by the Snakefile"),
    ({"method": "grid", "parameters": {"certify eps": {"values": [1]}}}, "is not a config key"),
    ({"method": "grid", "paramters": {}}, "unknown key 'paramters'"),
    ({"method": "grid", "parameters": {"certify.eps": {"values": 0.01}}}, "has values 0.01: expected a list"),
    ({"method": "grid", "parameters": {"certify": {"values": [{"eps": [0.1]}]}, "certify.eps": {"values": [[0.1]]}}},
     "parameters certify and certify.eps overlap"),
    ({"method": "grid", "parameters": {"certify.radius_steps": {"values": [4, 4.0]}}}, "share the name"),
])
def test_a_bad_sweep_file_is_refused_in_one_line(tmp_path: Path, document: dict, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        load_sweep(path)
    assert "\n" not in str(error.value)


def test_a_sweep_file_name_that_cannot_name_directories_and_rules_is_refused(tmp_path: Path) -> None:
    for stem in ("st'x y", "st{x}", "a" * 41):
        path = tmp_path / f"{stem}.yaml"
        path.write_text(json.dumps({"method": "grid", "parameters": {"certify.radius_steps": {"values": [4]}}}))
        with pytest.raises(ConfigError, match="names the sweep's directory"):
            load_sweep(path)


def test_a_point_on_data_sets_the_experiment_lacks_is_compared_with_the_experiments_config_of_them(
        tmp_path: Path) -> None:
    """The experiment runs data set a only; a point on b with other radii must certify b at its own
    radii, not share what the experiment's config would certify b at."""
    base_overrides = [*BASE, "grid.datasets=[a]"]
    sweep = load_sweep(sweep_file(tmp_path, {"dataset.name": {"values": ["b"]},
                                              "certify.eps": {"values": [[0.01, 0.025, 0.05]]}}))
    (point,) = plan(sweep, base_overrides, compose_pipeline(base_overrides))
    assert {"certify", "proven_verified", "report", "report_proven"} <= point.own
    assert not {"data", "search_trial", "search", "train"} & point.own
    sweep = load_sweep(sweep_file(tmp_path, {"dataset.name": {"values": ["b"]},
                                              "dataset.n_samples": {"values": [200]}}))
    (point,) = plan(sweep, base_overrides, compose_pipeline(base_overrides))
    assert {"data", "search_trial", "train", "certify"} <= point.own


def test_a_point_that_selects_some_of_the_experiments_ensemble_rows_shares_their_jobs(tmp_path: Path, base) -> None:
    sweep = load_sweep(sweep_file(tmp_path, {"ensemble.row": {"values": [25, 3]}}))
    inside, outside = plan(sweep, BASE, base)  # smoke runs rows 25 and 26
    assert inside.own == {"report_ensemble"}
    assert outside.own == {"ensemble_data", "ensemble_train", "ensemble_row", "report_ensemble"}


def test_a_missing_or_broken_sweep_file_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_sweep(tmp_path / "none.yaml")
    (tmp_path / "broken.yaml").write_text("parameters: [\n")
    with pytest.raises(ConfigError, match="is not YAML"):
        load_sweep(tmp_path / "broken.yaml")


def test_an_unknown_key_or_a_bad_value_names_the_point(tmp_path: Path, base) -> None:
    with pytest.raises(ConfigError, match=r"point certify.epz=0.1: .*certify.epz"):
        plan(load_sweep(sweep_file(tmp_path, {"certify.epz": {"values": [0.1]}})), BASE, base)
    with pytest.raises(ConfigError, match=r"point certify.radius_steps=-1: .*certify.radius_steps"):
        plan(load_sweep(sweep_file(tmp_path, {"certify.radius_steps": {"values": [-1]}})), BASE, base)


@pytest.mark.parametrize(("override", "changed", "own"), [
    ("certify.radius_steps=5", {"certify"}, {"certify", "report"}),
    ("certify.eps=[0.01,0.025]", {"certify", "proven_verified", "report", "report_proven"},
     {"certify", "proven_verified", "report", "report_proven"}),
    ("search.n_trials=1", {"search_trial", "search"},
     {"search_trial", "search", "train", "certify", "proven_verified", "report", "report_proven"}),
    ("dataset.n_samples=200", {"data"}, {"data", "baselines", "search_trial", "search", "train", "certify",
                                         "proven_verified", "report", "report_proven"}),
    ("ensemble.time_limit=4", {"ensemble_row", "report_ensemble"}, {"ensemble_row", "report_ensemble"}),
    ("video.lr=0.004", {"video_train"}, {"video_train", "video_bounds", "report_video"}),
    ("kri.draws=3", {"kri_infer", "kri_tensor", "assess_kri"},
     {"kri_infer", "kri_tensor", "report_kri", "assess_kri", "report_assess"}),
    # grid.costs is read by the reports only: the stages of a new cost compute what the experiment
    # would, so they are shared (new jobs where the experiment keeps its artifacts).
    ("grid.costs=[5.0]", {"report", "report_proven"}, {"report", "report_proven"}),
    ("tracking.project=elsewhere", set(), set()),
])
def test_a_point_runs_the_stages_that_read_its_keys_and_everything_downstream(base, override: str, changed: set,
                                                                             own: set) -> None:
    point = compose_pipeline([*BASE, override])
    assert changed_stages(base, point) == changed
    assert downstream(frozenset(changed)) == own


def test_every_stage_input_is_a_stage_and_the_graph_has_no_cycle() -> None:
    for name, keys in STAGES.items():
        assert set(keys.inputs) <= set(STAGES), name
        upstream, frontier = set(), set(keys.inputs)
        while frontier:
            upstream |= frontier
            frontier = {i for f in frontier for i in STAGES[f].inputs} - upstream
        assert name not in upstream, f"{name} reads its own artifacts through {sorted(upstream)}"


def test_a_points_paths_put_its_own_stages_under_the_point_and_share_the_rest() -> None:
    paths = ExperimentPaths("results", "quick", "eps", "p", ["certify", "report"])
    assert paths.dataset("a") == Path("results/quick/data/a.parquet")
    assert paths.model_stem("a", 1.0) == Path("results/quick/models/a_c1")
    assert paths.certification("a", 1.0) == Path("results/quick/sweeps/eps/p/certify/a_c1.parquet")
    assert paths.tables == Path("results/quick/sweeps/eps/p/tables")
    assert paths.logs == Path("results/quick/sweeps/eps/p/logs")


def _report(tmp_path: Path, table_id: str, frame: pd.DataFrame) -> str:
    path = tmp_path / f"{table_id}.csv"
    frame.to_csv(path, index=False)
    return str(path)


def test_the_headlines_are_the_means_and_counts_of_the_report_tables(tmp_path: Path) -> None:
    vc = pd.DataFrame({"dataset": ["a", "a", "b", "b"], "cost_fn": [1.0] * 4,
                       "section": ["full", "full", "full", "minority"],
                       "metric": ["verified_accuracy"] * 3 + ["verified_accuracy"], "norm": ["l2"] * 4,
                       "eps": [0.01, 0.025, 0.01, 0.01], "value": [0.9, 0.8, 0.7, 0.1]})
    files = [_report(tmp_path, "vc_table3", vc)]
    # b's minority row is not the full test set; eps 0.01 is the mean of a's 0.9 and b's 0.7
    assert HEADLINES["verified-classification"](files) == pytest.approx(
        {"verified_accuracy l2 eps=0.01": 0.8, "verified_accuracy l2 eps=0.025": 0.8})
    en = pd.DataFrame({"id": [1, 1, 2, 2], "method": ["milp", "smt", "milp", "smt"],
                       "outcome": ["attack", "timeout", "robust", "timeout"]})
    assert HEADLINES["ensemble"]([_report(tmp_path, "en_table4", en)]) == {
        "rows attack (milp)": 1.0, "rows robust (milp)": 1.0, "rows timeout (smt)": 2.0}
    kr = pd.DataFrame({"loss": ["class_change"] * 2, "model": ["A", "A"], "level": ["final", "family"],
                       "name": ["final", "x"], "kri": [0.25, 0.5]})
    assert HEADLINES["kri"]([_report(tmp_path, "kr_table2", kr)]) == {"final risk class_change A": 0.25}
    assert HEADLINES["video"]([]) == {}


def test_the_summary_has_a_row_per_point_and_metric_with_the_points_keys(tmp_path: Path) -> None:
    kr = pd.DataFrame({"loss": ["class_change"], "model": ["A"], "level": ["final"], "name": ["final"], "kri": [0.2]})
    files = [_report(tmp_path, "kr_table2", kr)]
    document = {"sweep": "s", "keys": ["kri.draws"], "families": ["kri"],
                "points": [{"name": "kri.draws=2", "values": {"kri.draws": 2}, "reports": {"kri": files}},
                           {"name": "kri.draws=3", "values": {"kri.draws": 3}, "reports": {"kri": files}}]}
    summary = summarize(document)
    assert summary.to_dict("records") == [
        {"point": "kri.draws=2", "kri.draws": "2", "family": "kri", "metric": "final risk class_change A",
         "value": 0.2},
        {"point": "kri.draws=3", "kri.draws": "3", "family": "kri", "metric": "final risk class_change A",
         "value": 0.2}]
    assert list(wide(summary, ["kri.draws"]).columns) == ["point", "kri.draws", "final risk class_change A"]


def test_wandbs_agent_values_map_onto_the_files_point(tmp_path: Path) -> None:
    path = sweep_file(tmp_path, {"certify.eps": {"values": [[0.01, 0.025], [0.05]]}})
    sweep = load_sweep(path)
    point = match_point(sweep, ["certify.eps=[0.05]"])
    assert point.name == "certify.eps=0.05"
    command = snakemake_command(path, point, "quick", 2)
    assert command[-3:] == ["experiment=quick", f"sweep={path}", "point=certify.eps=0.05"]
    with pytest.raises(NnassureError, match="is not a point of sweep s"):
        match_point(sweep, ["certify.eps=[0.5]"])
    with pytest.raises(NnassureError, match="has the keys certify.eps"):
        match_point(sweep, ["certify.radius_steps=3"])


def test_every_family_has_a_report_stage_and_headlines() -> None:
    from nnassure.report.catalog import FAMILIES

    assert set(REPORT_STAGES) == set(FAMILIES) == set(HEADLINES)
    assert all(stage in STAGES for stage in REPORT_STAGES.values())


def dry_run(tmp_path: Path, *config: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "-n",
                           "--cores", "1", "--config", "experiment=smoke", "overrides=tracking=disabled", *config],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("parameters", "message"), [
    ({"certify.epz": {"values": [[0.1]]}}, "certify.epz"),
    ({"certify.eps": {"values": []}}, "empty value list"),
])
def test_snakemake_refuses_a_bad_sweep_in_one_line_before_any_job(tmp_path: Path, parameters: dict,
                                                                   message: str) -> None:
    result = dry_run(tmp_path, f"sweep={sweep_file(tmp_path, parameters)}")
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("nnassure: ")]
    assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]
    assert not (tmp_path / "results").exists()


def test_wandb_groups_a_points_runs_by_sweep_and_tags_them_with_the_point() -> None:
    from nnassure.config import compose
    from nnassure.tracking import run_identity

    assert run_identity(compose(BASE), "a_c1") == ("smoke", "smoke/a_c1", [])
    point = compose([*BASE, "sweep.name=eps", f"sweep.point={hydra_value('certify.eps=0.01,0.025')}",
                     "sweep.own=[certify]"])
    assert run_identity(point, "a_c1") == ("smoke/sweep/eps", "smoke/sweep/eps/certify.eps=0.01,0.025/a_c1",
                                           ["sweep:eps", "point:certify.eps=0.01,0.025"])
    long_name = "certify.eps=0.001,0.005,0.01,0.025,0.05,0.1_certify.radius_steps=4"
    group, name, tags = run_identity(compose([*BASE, "sweep.name=epsr", f"sweep.point={hydra_value(long_name)}"]), "x")
    assert long_name in name and all(len(tag) <= 64 for tag in tags) and tags[1].startswith("point:")
    summary = compose([*BASE, "sweep.name=eps"])
    assert run_identity(summary, "summary") == ("smoke/sweep/eps", "smoke/sweep/eps/summary", ["sweep:eps"])


def test_one_point_of_a_sweep_runs_alone_under_its_whole_sweep_rule_names(tmp_path: Path) -> None:
    path = sweep_file(tmp_path, {"certify.radius_steps": {"values": [4, 5]}}, name="steps")
    result = dry_run(tmp_path, f"sweep={path}", "point=certify.radius_steps=5")
    assert result.returncode == 0, result.stderr[-2000:]
    rules = set(re.findall(r"^(?:local)?rule (\S+):", result.stdout, flags=re.M))
    assert {"certify__steps_1", "report__steps_1"} <= rules
    assert not {r for r in rules if r.endswith("__steps_0")} and "sweep_summary" not in rules
    wrong = dry_run(tmp_path, f"sweep={path}", "point=certify.radius_steps=6")
    lines = [line for line in wrong.stderr.splitlines() if line.startswith("nnassure: ")]
    assert wrong.returncode != 0 and len(lines) == 1 and "has no point 'certify.radius_steps=6'" in lines[0]
