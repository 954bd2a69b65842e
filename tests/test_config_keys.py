"""Config keys that reach the search: train.batch_size is what its trials train with, and the
keys it chooses itself (model.*, train.lr, train.weight_decay) are refused rather than ignored."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from nnassure.data import generate_dataset, stratified_split
from nnassure.paths import ExperimentPaths
from nnassure.search import random_search
from nnassure.stages import search, search_trial
from nnassure.stages._common import run_stage


def _args(tmp_path: Path, *extra: str) -> list[str]:
    return ["experiment=smoke", f"results_dir={tmp_path}", "tracking=disabled", "dataset=a", *extra]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = ExperimentPaths(tmp_path, "smoke").dataset("a")
    path.parent.mkdir(parents=True, exist_ok=True)
    stratified_split(generate_dataset("a", 100, 0.3333, 0.002, 0), 0.2, 0).to_parquet(path, index=False)
    return path


def test_search_trials_train_with_train_batch_size(tmp_path: Path, dataset: Path, monkeypatch) -> None:
    seen = []
    real_train = random_search.train_mlp

    def spy(*args, **kwargs):
        seen.append(args[4].batch_size)  # the trial's Hyperparameters
        return real_train(*args, **kwargs)

    monkeypatch.setattr(random_search, "train_mlp", spy)
    settings = ("train.batch_size=7", "search.n_trials=2", "search.max_epochs=1")
    for trial in range(2):  # one job per trial, then the selection
        run_stage("search_trial", search_trial.main, _args(tmp_path, *settings, f"search.trial={trial}"))
    run_stage("search", search.main, _args(tmp_path, *settings))
    paths = ExperimentPaths(tmp_path, "smoke")
    assert seen == [7, 7]
    assert json.loads(paths.search("a", 1.0).read_text())["hyperparameters"]["batch_size"] == 7
    assert set(pd.read_csv(paths.search_trials("a", 1.0))["batch_size"]) == {7}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lr=0.01", "invalid config value train.lr=0.01: expected its default 0.001 in the search stage; "
                          "the search chooses it from search.lrs"),
        ("model.width=8", "invalid config value model.width=8: expected its default 64 in the search stage; "
                          "the search chooses it from search.widths"),
    ],
)
def test_search_stage_refuses_keys_it_chooses(tmp_path: Path, capsys, override: str, message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_stage("search", search.main, _args(tmp_path, override))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"nnassure search: error: {message}"]
    assert not (tmp_path / "smoke" / "search").exists()
