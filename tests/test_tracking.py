"""W&B tracking: offline by default into results/, disabled, and online without a key."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from nnassure.config import compose
from nnassure.errors import ConfigError
from nnassure.tracking import tracked_run


def test_offline_run_is_written_under_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "WANDB_MODE"):
        monkeypatch.delenv(variable, raising=False)
    cfg = compose(["experiment=smoke", f"results_dir={tmp_path}"])
    assert cfg.tracking.mode == "offline"
    with tracked_run(cfg, "train", "a_c1") as tracker:
        assert tracker.enabled
        tracker.log({"val_loss": 0.5})
        tracker.log_table("trials", pd.DataFrame({"trial": [0, 1], "cost": [0.1, 0.2]}))
        run = tracker._run
        assert run.job_type == "train" and run.group == "smoke"
        assert run.config["train"]["cost_fn"] == 1.0
        import torch

        assert run.config["environment"]["torch"] == torch.__version__
        assert run.config["environment"]["nnassure"] is not None
    runs = list((tmp_path / "smoke" / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("*.wandb"))


def test_disabled_tracking_does_not_import_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # any import of wandb would now fail
    cfg = compose(["experiment=smoke", f"results_dir={tmp_path}", "tracking=disabled"])
    with tracked_run(cfg, "data", "a") as tracker:
        tracker.log({"x": 1})
        assert not tracker.enabled
    assert not (tmp_path / "smoke").exists()


def test_online_without_api_key_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = compose(["experiment=smoke", f"results_dir={tmp_path}", "tracking=online"])
    with pytest.raises(ConfigError, match="WANDB_API_KEY"), tracked_run(cfg, "data", "a"):
        pass
