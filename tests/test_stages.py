"""Stage entry points: bad input ends in one clear line, exit code 2, and no output file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nnassure.data import generate_dataset, save_image_dataset, stratified_split
from nnassure.models import MLP, MLPSpec, save_model
from nnassure.paths import ExperimentPaths
from nnassure.stages import baselines, certify, proven, train, train_classifier
from nnassure.stages._common import run_stage


def _args(tmp_path: Path, *extra: str) -> list[str]:
    return ["experiment=smoke", f"results_dir={tmp_path}", "tracking=disabled", *extra]


def _write_dataset(tmp_path: Path, frame: pd.DataFrame, name: str = "a") -> Path:
    path = ExperimentPaths(tmp_path, "smoke").dataset(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


@pytest.fixture
def good_frame() -> pd.DataFrame:
    return stratified_split(generate_dataset("a", 100, 0.3333, 0.002, 0), 0.2, 0)


def _run_failing(capsys: pytest.CaptureFixture[str], name: str, main: object, args: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_stage(name, main, args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith(f"nnassure {name}: error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in "\n".join(err)
    return errors[0]


def test_dataset_with_nan_is_rejected(tmp_path: Path, good_frame: pd.DataFrame, capsys) -> None:
    frame = good_frame.copy()
    frame.loc[3, "x1"] = np.nan
    _write_dataset(tmp_path, frame)
    message = _run_failing(capsys, "baselines", baselines.main, _args(tmp_path, "dataset=a"))
    assert "NaN" in message
    assert not ExperimentPaths(tmp_path, "smoke").baselines("a").exists()


def test_dataset_with_missing_column_is_rejected(tmp_path: Path, good_frame: pd.DataFrame, capsys) -> None:
    _write_dataset(tmp_path, good_frame.drop(columns=["label"]))
    message = _run_failing(capsys, "train", train.main, _args(tmp_path, "dataset=a"))
    assert "missing column(s) label" in message
    assert not list((tmp_path / "smoke").glob("models/*"))


def test_corrupt_model_file_is_rejected(tmp_path: Path, good_frame: pd.DataFrame, capsys) -> None:
    _write_dataset(tmp_path, good_frame)
    paths = ExperimentPaths(tmp_path, "smoke")
    save_model(MLP(MLPSpec(depth=1, width=4)), paths.model_stem("a", 1.0))
    weights = paths.model_stem("a", 1.0).with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[:40] + b"garbage")
    message = _run_failing(capsys, "certify", certify.main, _args(tmp_path, "dataset=a", "train.cost_fn=1"))
    assert "corrupt safetensors" in message
    assert not paths.certification("a", 1.0).exists()


def test_invalid_override_is_rejected_before_any_work(tmp_path: Path, capsys) -> None:
    message = _run_failing(capsys, "train", train.main, _args(tmp_path, "train.cost_fn=-3"))
    assert "train.cost_fn" in message and "> 0" in message
    assert not (tmp_path / "smoke").exists()


def test_search_result_that_is_not_json_is_rejected(tmp_path: Path, good_frame: pd.DataFrame, capsys) -> None:
    _write_dataset(tmp_path, good_frame)
    bogus = tmp_path / "bogus.json"
    bogus.write_text("{not json")
    message = _run_failing(capsys, "train", train.main, _args(tmp_path, "dataset=a", f"train.hparams_file={bogus}"))
    assert "not a search result" in message


def test_command_line_error_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nnassure.stages.train", "model.depth=9", f"results_dir={tmp_path}"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert lines == ["nnassure train: error: invalid config value model.depth=9: expected an integer in 1..4"]


def test_hand_run_of_train_writes_a_loadable_model(tmp_path: Path, good_frame: pd.DataFrame) -> None:
    from nnassure.models import load_model

    _write_dataset(tmp_path, good_frame)
    run_stage("train", train.main, _args(tmp_path, "dataset=a", "train.cost_fn=10", "model.depth=1",
                                         "model.width=8"))
    loaded = load_model(ExperimentPaths(tmp_path, "smoke").model_stem("a", 10.0))
    assert loaded.model.spec == MLPSpec(depth=1, width=8)
    assert loaded.metadata["cost_fn"] == 10.0
    assert set(loaded.metadata["metrics"]) == {"train", "val"}


def _write_digits(tmp_path: Path, n: int = 60) -> None:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 10
    split = np.array(["train", "val", "test"])[np.arange(n) % 3]
    save_image_dataset(ExperimentPaths(tmp_path, "smoke").image_dataset("digits"),
                       rng.uniform(0, 1, (n, 8, 8)).astype(np.float32), labels, split, [str(d) for d in range(10)])


def test_proven_without_a_model_name_is_rejected(tmp_path: Path, capsys) -> None:
    message = _run_failing(capsys, "proven", proven.main, _args(tmp_path))
    assert "proven.model" in message


def test_proven_with_a_missing_model_file_is_rejected(tmp_path: Path, capsys) -> None:
    _write_digits(tmp_path)
    message = _run_failing(capsys, "proven", proven.main, _args(tmp_path, "proven.model=digits_relu_1x16"))
    assert "not found" in message and "digits_relu_1x16" in message
    assert not (tmp_path / "smoke" / "proven").exists()


def test_proven_with_a_model_that_does_not_fit_the_data_is_rejected(tmp_path: Path, capsys) -> None:
    _write_digits(tmp_path)
    paths = ExperimentPaths(tmp_path, "smoke")
    save_model(MLP(MLPSpec(depth=1, width=16, input_dim=10, outputs=10)), paths.classifier_stem("digits_relu_1x16"))
    message = _run_failing(capsys, "proven", proven.main, _args(tmp_path, "proven.model=digits_relu_1x16"))
    assert "does not fit" in message
    assert not paths.proven("digits_relu_1x16").exists()


def test_proven_with_too_few_correct_test_points_is_rejected(tmp_path: Path, capsys) -> None:
    _write_digits(tmp_path)
    paths = ExperimentPaths(tmp_path, "smoke")
    save_model(MLP(MLPSpec(depth=1, width=16, input_dim=64, outputs=10)), paths.classifier_stem("digits_relu_1x16"))
    message = _run_failing(capsys, "proven", proven.main,
                           _args(tmp_path, "proven.model=digits_relu_1x16", "proven.samples=50"))
    assert "correctly classified" in message and "proven.samples" in message
    assert not paths.proven("digits_relu_1x16").exists()


def test_train_classifier_with_a_missing_data_set_is_rejected(tmp_path: Path, capsys) -> None:
    message = _run_failing(capsys, "train_classifier", train_classifier.main,
                           _args(tmp_path, "proven.model=signs_relu_1x16"))
    assert "signs.npz" in message
    assert not (tmp_path / "smoke" / "models").exists()


# ---------------------------------------------------------------------------------------------
# Ensemble stages (smoke runs rows 25 and 26 of instance mnist_7_8-6x6, 3 classifiers on 36 inputs)
# ---------------------------------------------------------------------------------------------

def _write_ensemble_data(tmp_path: Path) -> None:
    from nnassure.stages import ensemble_data

    run_stage("ensemble_data", ensemble_data.main, _args(tmp_path, "ensemble.instance=mnist_7_8-6x6"))


def test_ensemble_row_without_a_row_is_rejected(tmp_path: Path, capsys) -> None:
    from nnassure.stages import ensemble_row

    message = _run_failing(capsys, "ensemble_row", ensemble_row.main, _args(tmp_path))
    assert "ensemble.row" in message


def test_ensemble_row_outside_the_experiment_is_rejected(tmp_path: Path, capsys) -> None:
    from nnassure.stages import ensemble_row

    message = _run_failing(capsys, "ensemble_row", ensemble_row.main, _args(tmp_path, "ensemble.row=3"))
    assert "ensemble.row=3" in message and "[25, 26]" in message


def test_ensemble_row_with_a_missing_classifier_is_rejected(tmp_path: Path, capsys) -> None:
    from nnassure.stages import ensemble_row

    message = _run_failing(capsys, "ensemble_row", ensemble_row.main, _args(tmp_path, "ensemble.row=25"))
    assert "not found" in message and "mnist_7_8-6x6" in message
    assert not ExperimentPaths(tmp_path, "smoke").ensemble_row(25).exists()


def test_ensemble_row_with_classifiers_that_do_not_fit_is_rejected(tmp_path: Path, capsys) -> None:
    from nnassure.stages import ensemble_row

    _write_ensemble_data(tmp_path)
    paths = ExperimentPaths(tmp_path, "smoke")
    for k in (1, 2, 3):  # 64 inputs where the 6x6 row needs 36
        save_model(MLP(MLPSpec(depth=1, width=4, input_dim=64, outputs=2)),
                   paths.ensemble_classifier_stem("mnist_7_8-6x6", k))
    message = _run_failing(capsys, "ensemble_row", ensemble_row.main, _args(tmp_path, "ensemble.row=25"))
    assert "do not fit" in message and "retrain" in message
    assert not paths.ensemble_row(25).exists() and not paths.ensemble_attacks(25).exists()


def test_ensemble_train_needs_an_instance_and_an_index_in_range(tmp_path: Path, capsys) -> None:
    from nnassure.stages import ensemble_train

    message = _run_failing(capsys, "ensemble_train", ensemble_train.main, _args(tmp_path))
    assert "ensemble.instance" in message and "ensemble.classifier" in message
    message = _run_failing(capsys, "ensemble_train", ensemble_train.main,
                           _args(tmp_path, "ensemble.instance=mnist_7_8-6x6", "ensemble.classifier=4"))
    assert "ensemble.classifier=4" in message and "3 classifiers" in message
    message = _run_failing(capsys, "ensemble_train", ensemble_train.main,
                           _args(tmp_path, "ensemble.instance=mnist_0_1-8x8", "ensemble.classifier=1"))
    assert "ensemble.instance" in message  # not among the smoke rows' instances


def test_ensemble_train_below_the_accuracy_bar_writes_nothing(tmp_path: Path, capsys) -> None:
    from nnassure.stages import ensemble_train

    _write_ensemble_data(tmp_path)
    message = _run_failing(capsys, "ensemble_train", ensemble_train.main,
                           _args(tmp_path, "ensemble.instance=mnist_7_8-6x6", "ensemble.classifier=1",
                                 "ensemble.max_epochs=1", "ensemble.training_attempts=1",
                                 "ensemble.min_accuracy_digits=1.0"))
    assert "below the bar 1.0" in message
    stem = ExperimentPaths(tmp_path, "smoke").ensemble_classifier_stem("mnist_7_8-6x6", 1)
    assert not stem.with_suffix(".safetensors").exists()


def test_ensemble_train_writes_a_classifier_at_the_bar(tmp_path: Path) -> None:
    from nnassure.models import load_model
    from nnassure.stages import ensemble_train

    _write_ensemble_data(tmp_path)
    run_stage("ensemble_train", ensemble_train.main,
              _args(tmp_path, "ensemble.instance=mnist_7_8-6x6", "ensemble.classifier=2"))
    model = load_model(ExperimentPaths(tmp_path, "smoke").ensemble_classifier_stem("mnist_7_8-6x6", 2))
    assert model.metadata["optimizer"] == "sgd" and model.metadata["test_accuracy"] >= 0.9
    assert model.model.spec.input_dim == 36 and model.model.spec.outputs == 2


def test_report_ensemble_without_row_results_is_rejected(tmp_path: Path, capsys) -> None:
    from nnassure.stages import report_ensemble

    message = _run_failing(capsys, "report_ensemble", report_ensemble.main, _args(tmp_path))
    assert "25.json" in message and "ensemble_row" in message


def test_report_ensemble_shows_a_solver_error_as_err_not_as_a_timeout(tmp_path: Path) -> None:
    import json

    from nnassure.stages import report_ensemble

    def record(verdict: str, seconds: float | None = 1.0, backend: str = "highs", note: str = "") -> dict:
        return {"verdict": verdict, "value": None, "optimal": verdict == "robust", "complete": True,
                "backend": backend, "seconds": seconds, "relus": {}, "note": note}

    paths = ExperimentPaths(tmp_path, "smoke")
    methods = {25: {"milp_highs": record("error", None, note="GurobiError: out of memory"),
                    "maxmilp": record("robust"), "smt": record("timeout", 5.0, "z3")},
               26: {"milp_highs": record("robust"), "maxmilp": record("robust"),
                    "smt": record("error", None, "z3", "Z3Exception: canceled")}}
    for row, row_methods in methods.items():
        benchmark = {"id": row, "name": "mnist_7_8", "classifiers": 3, "attacks": 2, "points": 4, "dim": "6x6",
                     "alpha": 1.0 if row == 25 else 0.9, "eps": 0.1}
        paths.ensemble_row(row).parent.mkdir(parents=True, exist_ok=True)
        paths.ensemble_row(row).write_text(json.dumps({"benchmark": benchmark, "methods": row_methods}))
    run_stage("report_ensemble", report_ensemble.main, _args(tmp_path))
    table = pd.read_csv(paths.tables / "en_table4.csv").set_index(["id", "method"])
    assert table.loc[(25, "milp"), "outcome"] == "error" and table.loc[(26, "smt"), "outcome"] == "error"
    assert "| ERR" in (paths.tables / "en_table4.md").read_text()
    text = (paths.tables / "en_table4.compare.md").read_text()
    # the paper's SMT timed out on both rows: our SMT error on row 26 is not "the same outcome"
    assert "- row 26, smt: ours error: Z3Exception: canceled, the paper timeout" in text
    assert "- row 25, milp: ours error: GurobiError: out of memory, the paper robust" in text


def test_certify_writes_what_each_column_means_into_the_parquet_schema(tmp_path: Path,
                                                                        good_frame: pd.DataFrame) -> None:
    import pyarrow.parquet as pq

    _write_dataset(tmp_path, good_frame)
    paths = ExperimentPaths(tmp_path, "smoke")
    save_model(MLP(MLPSpec(depth=1, width=4)), paths.model_stem("a", 1.0))
    run_stage("certify", certify.main, _args(tmp_path, "dataset=a", "train.cost_fn=1", "certify.radius_steps=2"))
    path = paths.certification("a", 1.0)
    schema = pq.read_schema(path)
    read_back = {name: (schema.field(name).metadata or {}).get(b"description", b"").decode()
                 for name in schema.names}
    assert read_back == certify.COLUMN_DESCRIPTIONS  # every column described, nothing else
    assert "lower bound of its true robust radius" in read_back["certified_radius"]
    assert "robust at this eps, whatever certified_radius says" in read_back["verified"]
    assert list(pd.read_parquet(path).columns) == list(certify.COLUMN_DESCRIPTIONS)


def test_report_proven_shows_not_certified_rows_as_such(tmp_path: Path) -> None:
    """The rigorous Gaussian certificate certifies no sample at 99.99 % (the 3-sigma rule leaves
    about 16 % of the mass outside the ball) and Hoeffding's only some: the tables say so."""
    from test_report_proven import results_frame

    from nnassure.stages import report_proven

    worst = [0.02 + 0.002 * i for i in range(8)]
    gammas = [0.9999, 0.75, 0.5, 0.25, 0.05]
    bounded = {g: [0.0 if (g == 0.9999 and i == 0) else w * (1.5 - g / 4) for i, w in enumerate(worst)]
               for g in gammas}
    gaussian = {(certificate, noise): {g: [0.0 if certificate == "gaussian-rigorous" and g == 0.9999 else w * 2
                                           for w in worst[:4]] for g in gammas}
                for certificate in ("gaussian-approx", "gaussian-rigorous")
                for noise in ("gaussian-diagonal", "gaussian-correlated")}
    results = pd.concat([results_frame("digits_relu_1x16", worst, bounded, "fast-lin"),
                         results_frame("digits_relu_1x16", worst, bounded, "crown", gaussian)])
    paths = ExperimentPaths(tmp_path, "smoke")
    paths.proven("digits_relu_1x16").parent.mkdir(parents=True, exist_ok=True)
    results.to_parquet(paths.proven("digits_relu_1x16"), index=False)
    pd.DataFrame({"eps": [0.01], "gamma": [0.9999], "correct": [True], "verified": [True],
                  "proven_certified": [True]}).to_parquet(paths.proven_verified("a", 1.0), index=False)
    run_stage("report_proven", report_proven.main, _args(
        tmp_path, "grid.datasets=[a]", "grid.costs=[1]", "proven.models=[digits_relu_1x16]",
        "proven.table4_models=[digits_relu_1x16]", "proven.gaussian_models=[digits_relu_1x16]",
        "proven.samples=8", "proven.table4_samples=8", f"proven.gammas=[{','.join(map(str, gammas))}]"))
    # Table 2 averages the first proven.table2_samples (4) samples, of which Hoeffding certifies 3
    table2 = (paths.tables / "pv_table2b.md").read_text()
    assert "(3/4)" in table2 and "| 0.0000" not in table2
    long2 = pd.read_csv(paths.tables / "pv_table2b.csv")
    top = long2[(long2["certificate"] == "hoeffding") & (long2["gamma"] == 0.9999)].iloc[0]
    assert (top["certified"], top["samples"]) == (3, 4)
    fig1 = (paths.tables / "pv_fig1.compare.md").read_text()
    assert "| not certified" in fig1 and "rigorous Gaussian not certified" in fig1
    assert "certified)" in (paths.tables / "pv_table4.md").read_text()  # Table 4's mean rows: fraction certified
