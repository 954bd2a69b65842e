"""The ensemble_data stage: an instance's data made once, read back exactly, and refused in one
line when it is missing, corrupt or made for other settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_stages import _run_failing

from nnassure.ensemble.benchmarks import instance_benchmark, selected_benchmarks
from nnassure.ensemble.data import data_source, load_instance_data, save_instance_data
from nnassure.ensemble.experiment import instance_data
from nnassure.errors import InputFileError
from nnassure.paths import ExperimentPaths
from nnassure.stages import ensemble_data, ensemble_row, ensemble_train
from nnassure.stages._common import run_stage

INSTANCE = "mnist_7_8-6x6"  # the smoke experiment's rows 25 and 26


def _args(tmp_path: Path, *extra: str) -> list[str]:
    return ["experiment=smoke", f"results_dir={tmp_path}", "tracking=disabled", *extra]




def _smoke_benchmark():
    from nnassure.config import compose

    cfg = compose(["experiment=smoke"])
    return cfg, instance_benchmark(selected_benchmarks(cfg.ensemble), INSTANCE)


def test_the_stage_writes_the_instance_data_exactly(tmp_path: Path) -> None:
    run_stage("ensemble_data", ensemble_data.main, _args(tmp_path, f"ensemble.instance={INSTANCE}"))
    cfg, benchmark = _smoke_benchmark()
    path = ExperimentPaths(tmp_path, "smoke").ensemble_instance_data(INSTANCE)
    assert path == tmp_path / "smoke" / "ensemble" / "data" / f"{INSTANCE}.npz"
    loaded = load_instance_data(path, data_source(benchmark, cfg.ensemble.signs_per_class, cfg.ensemble.seed))
    made = instance_data(benchmark, cfg.ensemble.signs_per_class, cfg.ensemble.seed)
    assert loaded.x.dtype == made.x.dtype and np.array_equal(loaded.x, made.x)
    assert np.array_equal(loaded.labels, made.labels) and np.array_equal(loaded.split, made.split)
    assert loaded.shape == made.shape == (6, 6, 1) and all(type(v) is int for v in loaded.shape)
    assert not list(path.parent.glob(".*.tmp"))  # written atomically, no temporary left behind


def test_the_stage_needs_an_instance_of_the_experiment(tmp_path: Path, capsys) -> None:
    assert "ensemble.instance" in _run_failing(capsys, "ensemble_data", ensemble_data.main, _args(tmp_path))
    message = _run_failing(capsys, "ensemble_data", ensemble_data.main,
                           _args(tmp_path, "ensemble.instance=mnist_0_1-8x8"))
    assert "ensemble.instance=mnist_0_1-8x8" in message
    assert not (tmp_path / "smoke" / "ensemble").exists()


def test_a_missing_data_file_stops_ensemble_train_in_one_line(tmp_path: Path, capsys) -> None:
    message = _run_failing(capsys, "ensemble_train", ensemble_train.main,
                     _args(tmp_path, f"ensemble.instance={INSTANCE}", "ensemble.classifier=1"))
    assert f"{INSTANCE}.npz" in message and "not found" in message and "ensemble_data" in message
    assert not ExperimentPaths(tmp_path, "smoke").ensemble_classifier_stem(INSTANCE, 1).with_suffix(
        ".safetensors").exists()


@pytest.mark.parametrize("damage", ["not an archive", "truncated", "missing array", "bad labels"])
def test_a_corrupt_data_file_is_refused_in_one_line(tmp_path: Path, damage: str) -> None:
    cfg, benchmark = _smoke_benchmark()
    source = data_source(benchmark, cfg.ensemble.signs_per_class, cfg.ensemble.seed)
    path = tmp_path / "data.npz"
    data = instance_data(benchmark, cfg.ensemble.signs_per_class, cfg.ensemble.seed)
    save_instance_data(data, source, path)
    if damage == "not an archive":
        path.write_text("x,labels\n")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: 2000])
    elif damage == "missing array":
        with np.load(path) as archive:
            arrays = {k: archive[k] for k in archive.files if k != "split"}
        np.savez(path, **arrays)
    else:
        data.labels = data.labels + 2
        save_instance_data(data, source, path)
    with pytest.raises(InputFileError) as info:
        load_instance_data(path, source)
    message = str(info.value)
    assert str(path) in message and "\n" not in message and "ensemble_data" in message


def test_data_made_for_other_settings_is_refused(tmp_path: Path, capsys) -> None:
    run_stage("ensemble_data", ensemble_data.main, _args(tmp_path, f"ensemble.instance={INSTANCE}"))
    message = _run_failing(capsys, "ensemble_row", ensemble_row.main,
                           _args(tmp_path, "ensemble.row=25", "ensemble.seed=1"))
    # The classifiers are looked for first; without them the row stops there.
    assert "not found" in message
    from nnassure.models import MLP, MLPSpec, save_model

    paths = ExperimentPaths(tmp_path, "smoke")
    for k in (1, 2, 3):
        save_model(MLP(MLPSpec(depth=1, width=4, input_dim=36, outputs=2)), paths.ensemble_classifier_stem(INSTANCE, k))
    message = _run_failing(capsys, "ensemble_row", ensemble_row.main,
                           _args(tmp_path, "ensemble.row=25", "ensemble.seed=1"))
    assert "other settings" in message and "seed" in message and "ensemble_data" in message
    assert not paths.ensemble_row(25).exists()


def test_train_to_bar_tries_seeds_in_order_and_keeps_the_first_at_the_bar() -> None:
    from nnassure.ensemble.instances import AccuracyBarError, ClassifierShape, digit_pair, train_to_bar

    data = digit_pair((7, 8), 6)
    attempts: list[dict] = []
    with pytest.raises(AccuracyBarError, match=r"classifier 2 reached .* with 2 seeds, below the bar 1.01"):
        train_to_bar(data, ClassifierShape(), 2, 1.01, 2, seed=5, max_epochs=1, on_attempt=attempts.append)
    assert [a["seed"] for a in attempts] == [7, 1007]  # seed + index + 1000 x attempt
    trained = train_to_bar(data, ClassifierShape(), 2, 0.0, 3, seed=5, max_epochs=1)
    assert trained.seed == 7 and trained.optimizer == "sgd"  # even classifiers use SGD
    assert trained.accuracy == attempts[0]["test_accuracy"]  # the same seed gives the same classifier


def test_sign_instance_data_round_trips_and_records_the_sign_count(tmp_path: Path) -> None:
    from nnassure.ensemble.benchmarks import Benchmark

    benchmark = Benchmark(1, "signs", 2, 1, 2, 8, 8, 1.0, 1.0, "signs", None, 0)
    data = instance_data(benchmark, 20, 0)
    save_instance_data(data, data_source(benchmark, 20, 0), tmp_path / "signs.npz")
    loaded = load_instance_data(tmp_path / "signs.npz", data_source(benchmark, 20, 0))
    assert loaded.shape == (8, 8, 3) and np.array_equal(loaded.x, data.x)
    with pytest.raises(InputFileError, match="signs_per_class"):
        load_instance_data(tmp_path / "signs.npz", data_source(benchmark, 30, 0))
