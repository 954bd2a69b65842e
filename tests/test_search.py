"""The architecture search of Sec. 4.2, split into one job per trial and a selection (issue 12).

1. the split changes nothing: run_search gives, bit for bit, the trials and winner of the search
   before the split (kept here as the reference), and is select_best over run_trial of every trial,
   whatever the order in which the trials ran and after a JSON round trip;
2. the selection's ties go to the lower validation loss, then the earlier trial;
3. select_best refuses, in one line, records that miss or repeat a trial or belong to another search;
4. the stages: a search_trial job per trial then the search job give run_search's winner and
   trials table, and their errors are one line.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import ParameterSampler

from nnassure.data import generate_dataset, load_dataset, split_arrays, stratified_split
from nnassure.errors import ConfigError, InputFileError
from nnassure.io import write_csv
from nnassure.metrics import classification_metrics
from nnassure.paths import ExperimentPaths
from nnassure.search import (
    TRIAL_COLUMNS,
    SearchSpace,
    run_search,
    run_trial,
    search_candidates,
    search_identity,
    select_best,
)
from nnassure.stages import search as search_stage
from nnassure.stages import search_trial as trial_stage
from nnassure.stages._common import run_stage
from nnassure.training import Hyperparameters, predict_labels, train_mlp

SPACE = SearchSpace(depths=[1, 2], widths=[4, 8], lrs=[1e-3, 1e-2], weight_decays=[0.0, 1e-4], dropouts=[0.0, 0.2])
SETTINGS = {"max_epochs": 3, "patience": 2, "batch_size": 16}


def legacy_run_search(x_train, y_train, x_val, y_val, space, n_trials, cost_fn, cost_fp=1.0, max_epochs=60,
                      patience=8, seed=0, batch_size=32):
    """run_search as it was before the split (commit 04dc4b3), the reference the split must equal."""
    n_trials = min(n_trials, space.size())
    candidates = list(ParameterSampler(space.grid(), n_iter=n_trials, random_state=seed))
    records = []
    for index, params in enumerate(candidates):
        hparams = Hyperparameters(
            depth=int(params["depth"]), width=int(params["width"]), dropout=float(params["dropout"]),
            lr=float(params["lr"]), weight_decay=float(params["weight_decay"]),
            batch_size=batch_size, max_epochs=max_epochs, patience=patience,
        )
        result = train_mlp(x_train, y_train, x_val, y_val, hparams, cost_fn, cost_fp, seed=seed + index,
                           progress=False)
        train_m = classification_metrics(y_train, predict_labels(result.model, x_train), cost_fn, cost_fp)
        val_m = classification_metrics(y_val, predict_labels(result.model, x_val), cost_fn, cost_fp)
        records.append({
            "trial": index, "seed": seed + index, **asdict(hparams), "best_epoch": result.best_epoch,
            "val_loss": result.best_val_loss, "train_accuracy": train_m.accuracy, "val_accuracy": val_m.accuracy,
            "val_f1_macro": val_m.f1_macro, "val_cost_per_sample": val_m.cost_per_sample,
        })
    trials = pd.DataFrame(records)
    best_row = trials.sort_values(["val_cost_per_sample", "val_loss", "trial"], kind="stable").iloc[0]
    best = Hyperparameters(
        depth=int(best_row["depth"]), width=int(best_row["width"]), dropout=float(best_row["dropout"]),
        lr=float(best_row["lr"]), weight_decay=float(best_row["weight_decay"]),
        batch_size=batch_size, max_epochs=max_epochs, patience=patience,
    )
    return trials, best, int(best_row["trial"])


@pytest.fixture(scope="module")
def arrays(small_frame):
    return (*split_arrays(small_frame, "train"), *split_arrays(small_frame, "val"))


# --- 1. the split changes nothing ------------------------------------------------------------------


@pytest.mark.parametrize(("n_trials", "seed", "cost_fn"), [(5, 0, 10.0), (3, 7, 1.0), (40, 1, 2.0)])
def test_run_search_is_the_search_before_the_split_bit_for_bit(arrays, n_trials, seed, cost_fn) -> None:
    # n_trials=40 exceeds the 32 configurations: both run every configuration once
    space = SPACE if n_trials < 40 else SearchSpace([1], [4, 8], [1e-2], [0.0], [0.0, 0.2])
    trials, best, best_trial = legacy_run_search(*arrays, space, n_trials, cost_fn, seed=seed, **SETTINGS)
    result = run_search(*arrays, space, n_trials, cost_fn, seed=seed, progress=False, **SETTINGS)
    pd.testing.assert_frame_equal(result.trials, trials, check_exact=True)
    assert list(result.trials.columns) == list(TRIAL_COLUMNS)
    assert (result.best, result.best_trial) == (best, best_trial)


def test_run_search_is_select_best_over_run_trial_of_every_trial(arrays) -> None:
    n_trials, seed, cost_fn = 6, 3, 10.0
    seen = []
    result = run_search(*arrays, SPACE, n_trials, cost_fn, seed=seed, on_trial=seen.append, progress=False,
                        **SETTINGS)
    # each trial on its own, last first (as parallel jobs finish), through the JSON of its file
    records = [json.loads(json.dumps(run_trial(*arrays, SPACE, n_trials, trial, cost_fn, seed=seed, **SETTINGS)))
               for trial in reversed(range(n_trials))]
    split = select_best(records, SETTINGS["batch_size"], SETTINGS["max_epochs"], SETTINGS["patience"])
    pd.testing.assert_frame_equal(split.trials, result.trials, check_exact=True)
    assert (split.best, split.best_trial) == (result.best, result.best_trial)
    assert seen == result.trials.to_dict("records")  # on_trial still gets the table's rows
    # trial i is the i-th configuration of the draw, trained with seed + i
    for row, params in zip(result.trials.to_dict("records"), search_candidates(SPACE, n_trials, seed), strict=True):
        assert {k: row[k] for k in params} == params and row["seed"] == seed + row["trial"]


def test_run_trial_refuses_a_trial_outside_the_search(arrays) -> None:
    with pytest.raises(ConfigError, match=r"^trial 3 is not one of the search's trials: expected an integer in 0\.\.2"):
        run_trial(*arrays, SPACE, 3, 3, 1.0, **SETTINGS)


# --- 2-3. the selection on hand-made records -----------------------------------------------------


IDENTITY = {"n_trials": 4, "seed": 0, "space": SPACE.digest(), "cost_fn": 10.0, "cost_fp": 1.0, "data": "d"}


def _record(trial: int, cost: float, loss: float, **extra) -> dict:
    return {"trial": trial, "seed": trial, "depth": 1 + trial % 2, "width": 4, "dropout": 0.0, "lr": 1e-3,
            "weight_decay": 0.0, "batch_size": 16, "max_epochs": 3, "patience": 2, "best_epoch": 1,
            "val_loss": loss, "train_accuracy": 0.5, "val_accuracy": 0.5, "val_f1_macro": 0.5,
            "val_cost_per_sample": cost, "search": dict(IDENTITY), **extra}


def _select(records, **kwargs):
    return select_best(records, 16, 3, 2, **kwargs)


@pytest.mark.parametrize(("records", "winner"), [
    # the lowest cost per sample wins, whatever the loss
    ([_record(0, 0.3, 0.1), _record(1, 0.2, 0.9), _record(2, 0.4, 0.0), _record(3, 0.25, 0.0)], 1),
    # equal cost: the lower validation loss
    ([_record(0, 0.2, 0.5), _record(1, 0.2, 0.4), _record(2, 0.2, 0.45), _record(3, 0.3, 0.0)], 1),
    # equal cost and loss: the earlier trial, in whatever order the records come
    ([_record(3, 0.2, 0.4), _record(2, 0.2, 0.4), _record(0, 0.5, 0.1), _record(1, 0.2, 0.4)], 1),
])
def test_ties_go_to_the_lower_loss_then_the_earlier_trial(records, winner) -> None:
    result = _select(records)
    assert result.best_trial == winner
    assert list(result.trials["trial"]) == [0, 1, 2, 3]
    assert result.best == Hyperparameters(1 + winner % 2, 4, 0.0, 1e-3, 0.0, 16, 3, 2)


def _four(**changes) -> list[dict]:
    records = [_record(t, 0.1 * t, 0.1) for t in range(4)]
    for trial, change in changes.items():
        records[int(trial[1:])] = change
    return records


@pytest.mark.parametrize(("records", "kwargs", "message"), [
    (_four(t3=_record(2, 0.1, 0.1)), {}, "trial(s) 2 recorded more than once: expected one record per trial 0..3"),
    (_four()[:3], {}, "trial(s) 3 missing: expected one record per trial 0..3"),
    ([r for r in _four() if r["trial"] not in (1, 2)], {}, "trial(s) 1, 2 missing: expected one record per trial 0..3"),
    (_four(t3=_record(4, 0.1, 0.1)), {}, "trial 4 is not one of the search's trials: expected an integer in 0..3"),
    (_four(t2=_record(2, 0.1, 0.1, search={**IDENTITY, "seed": 1})), {},
     "trial 2 belongs to another search (seed 1, expected 0)"),
    (_four(t1=_record(1, 0.1, 0.1, search={**IDENTITY, "space": "x", "cost_fn": 1.0})), {},
     f"trial 1 belongs to another search (space 'x', expected {SPACE.digest()!r}; cost_fn 1.0, expected 10.0)"),
    (_four(), {"search": {**IDENTITY, "n_trials": 5}}, "trial 0 belongs to another search (n_trials 4, expected 5)"),
    (_four(t0=_record(0, 0.1, 0.1, batch_size=32)), {},
     "trial 0 trained with batch_size=32: expected 16, the batch_size the winner is trained with"),
    (_four(t0={k: v for k, v in _record(0, 0.1, 0.1).items() if k != "search"}), {},
     "trial record 0 lacks search: expected a record of run_trial with trial, seed,"),
    ([], {}, "no trial records to select from"),
])
def test_the_selection_refuses_records_that_are_not_one_search_complete(records, kwargs, message) -> None:
    with pytest.raises(InputFileError) as info:
        _select(records, **kwargs)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_the_identity_tells_searches_apart(arrays) -> None:
    base = search_identity(*arrays, SPACE, 8, 0, 10.0)
    assert search_identity(*arrays, SPACE, 8, 0, 10) == base  # an int cost is the same cost
    assert search_identity(*arrays, SearchSpace([1, 2], [4, 8], [0.001, 0.01], [0, 0.0001], [0, 0.2]), 8, 0,
                           10.0) == base  # 0 and 0.0 draw the same grid
    assert search_identity(*arrays, SPACE, 100, 0, 10.0)["n_trials"] == SPACE.size()  # capped by the space
    others = [search_identity(*arrays, SPACE, 9, 0, 10.0), search_identity(*arrays, SPACE, 8, 1, 10.0),
              search_identity(*arrays, SPACE, 8, 0, 1.0), search_identity(*arrays, SPACE, 8, 0, 10.0, 2.0),
              search_identity(*arrays, replace(SPACE, widths=[8, 4]), 8, 0, 10.0),
              search_identity(arrays[0][1:], arrays[1][1:], *arrays[2:], SPACE, 8, 0, 10.0)]
    assert all(other != base for other in others)


# --- 4. the stages ---------------------------------------------------------------------------------


def _args(tmp_path: Path, *extra: str) -> list[str]:
    return ["experiment=smoke", f"results_dir={tmp_path}", "tracking=disabled", "dataset=a", "train.cost_fn=10",
            "search.n_trials=3", "search.max_epochs=3", *extra]


@pytest.fixture
def experiment(tmp_path: Path) -> ExperimentPaths:
    paths = ExperimentPaths(tmp_path, "smoke")
    path = paths.dataset("a")
    path.parent.mkdir(parents=True, exist_ok=True)
    stratified_split(generate_dataset("a", 120, 0.3333, 0.002, 0), 0.2, 0).to_parquet(path, index=False)
    return paths


def _run_failing(capsys, name: str, main, args: list[str]) -> str:
    capsys.readouterr()  # what earlier stages printed
    with pytest.raises(SystemExit) as info:
        run_stage(name, main, args)
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_job_per_trial_then_the_selection_is_run_search(tmp_path: Path, experiment: ExperimentPaths) -> None:
    for trial in range(3):
        run_stage("search_trial", trial_stage.main, _args(tmp_path, f"search.trial={trial}"))
    assert sorted(p.name for p in experiment.search_trial("a", 10.0, 0).parent.iterdir()) == \
        ["0.json", "1.json", "2.json"]  # atomic writes leave no temporary file behind
    run_stage("search", search_stage.main, _args(tmp_path))

    x_train, y_train = split_arrays(load_dataset(experiment.dataset("a")), "train")
    x_val, y_val = split_arrays(load_dataset(experiment.dataset("a")), "val")
    # the smoke experiment's search space, as the stages read it
    space = SearchSpace([1, 2], [16, 32], [3e-4, 1e-3, 2e-3], [0.0, 1e-4], [0.0, 0.1])
    result = run_search(x_train, y_train, x_val, y_val, space, 3, 10.0, 1.0, max_epochs=3, patience=2, seed=0,
                        batch_size=32, progress=False)
    expected_csv = tmp_path / "expected.csv"
    write_csv(result.trials, expected_csv, float_format="%.6g")
    assert experiment.search_trials("a", 10.0).read_text() == expected_csv.read_text()
    best = json.loads(experiment.search("a", 10.0).read_text())
    assert best == {"dataset": "a", "cost_fn": 10, "cost_fp": 1.0, "best_trial": result.best_trial,
                    "hyperparameters": asdict(result.best)}


def test_a_trial_outside_the_search_is_one_line(tmp_path: Path, experiment: ExperimentPaths, capsys) -> None:
    message = _run_failing(capsys, "search_trial", trial_stage.main, _args(tmp_path, "search.trial=3"))
    assert message == ("nnassure search_trial: error: invalid config value search.trial=3: expected an integer in "
                       "0..2, the trial this job runs (min(search.n_trials=3, 48 configurations of the space) = "
                       "3 trials)")
    message = _run_failing(capsys, "search_trial", trial_stage.main, _args(tmp_path))
    assert message.startswith("nnassure search_trial: error: invalid config value search.trial=None: expected an "
                              "integer in 0..2")
    assert not (experiment.root / "search").exists()


def test_the_selection_refuses_a_missing_stale_or_misplaced_trial(tmp_path: Path, experiment: ExperimentPaths,
                                                                   capsys) -> None:
    for trial in (0, 2):
        run_stage("search_trial", trial_stage.main, _args(tmp_path, f"search.trial={trial}"))
    missing = experiment.search_trial("a", 10.0, 1)
    message = _run_failing(capsys, "search", search_stage.main, _args(tmp_path))
    assert message == (f"nnassure search: error: {missing}: file not found; expected the record of trial 1 of 3, "
                       "written by search_trial search.trial=1")

    missing.write_text(experiment.search_trial("a", 10.0, 0).read_text())
    message = _run_failing(capsys, "search", search_stage.main, _args(tmp_path))
    assert message.endswith(f"{missing}: holds trial 0; expected the record of trial 1 of 3, written by "
                            "search_trial search.trial=1")

    # trial 1 of a search with another seed: same file name, another search
    run_stage("search_trial", trial_stage.main, _args(tmp_path, "search.trial=1", "search.seed=5"))
    message = _run_failing(capsys, "search", search_stage.main, _args(tmp_path))
    assert message == (f"nnassure search: error: {missing.parent}: trial 1 belongs to another search (seed 5, "
                       "expected 0); rerun search_trial for this search")

    run_stage("search_trial", trial_stage.main, _args(tmp_path, "search.trial=1", "train.batch_size=8"))
    message = _run_failing(capsys, "search", search_stage.main, _args(tmp_path))
    assert message.endswith("trial 1 trained with batch_size=8: expected 32, the batch_size the winner is trained "
                            "with; rerun search_trial for this search")
    assert not experiment.search("a", 10.0).exists() and not experiment.search_trials("a", 10.0).exists()


def test_trial_records_are_json_with_the_row_and_the_search(tmp_path: Path, experiment: ExperimentPaths) -> None:
    run_stage("search_trial", trial_stage.main, _args(tmp_path, "search.trial=1"))
    record = json.loads(experiment.search_trial("a", 10.0, 1).read_text())
    assert set(record) == {*TRIAL_COLUMNS, "search"}
    assert record["trial"] == 1 and record["seed"] == 1
    assert set(record["search"]) == {"n_trials", "seed", "space", "cost_fn", "cost_fp", "data"}
    assert record["search"]["n_trials"] == 3 and record["search"]["cost_fn"] == 10.0
    assert np.isfinite(record["val_cost_per_sample"])


def test_a_trial_refuses_the_keys_the_search_chooses(tmp_path: Path, experiment: ExperimentPaths, capsys) -> None:
    message = _run_failing(capsys, "search_trial", trial_stage.main, _args(tmp_path, "search.trial=0", "model.width=8"))
    assert message == ("nnassure search_trial: error: invalid config value model.width=8: expected its default 64 "
                       "in the search_trial stage; the search chooses it from search.widths")
