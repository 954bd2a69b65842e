"""Weights & Biases logging: one run per stage job, grouped by experiment (issue: W&B per stage).

``offline`` (the default) writes runs under results/<experiment>/wandb/ and never touches the
network; ``disabled`` does not import wandb at all; ``online`` needs WANDB_API_KEY.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from nnassure.errors import ConfigError
from nnassure.paths import ExperimentPaths


class Tracker:
    """What a stage logs to; a no-op when tracking is disabled."""

    def __init__(self, run: Any | None = None) -> None:
        self._run = run

    @property
    def enabled(self) -> bool:
        return self._run is not None

    def log(self, metrics: dict[str, Any]) -> None:
        if self._run is not None:
            self._run.log(metrics)

    def log_table(self, key: str, frame: pd.DataFrame) -> None:
        if self._run is not None:
            import wandb

            self._run.log({key: wandb.Table(dataframe=frame.reset_index(drop=True))})

    def summary(self, values: dict[str, Any]) -> None:
        if self._run is not None:
            for key, value in values.items():
                self._run.summary[key] = value


def _prepare_environment(cfg: DictConfig) -> str:
    root = ExperimentPaths.from_config(cfg).wandb
    root.mkdir(parents=True, exist_ok=True)
    # Keep wandb's caches inside results/ instead of ~/.cache and ~/.config: runs stay
    # self-contained and nothing is written outside the experiment's directory.
    for variable, sub in (("WANDB_CACHE_DIR", ".cache"), ("WANDB_DATA_DIR", ".data"),
                          ("WANDB_CONFIG_DIR", ".config")):
        os.environ.setdefault(variable, str(root / sub))
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("WANDB_CONSOLE", "off")
    return str(root)


def run_identity(cfg: DictConfig, name: str) -> tuple[str, str, list[str]]:
    """W&B's group, run name and tags of a job: the experiment's jobs group by experiment; a sweep
    point's by sweep (``<experiment>/sweep/<sweep>``), tagged with the point, whose keys are in the
    run's config, so the W&B UI compares the points by group, job type and config."""
    sweep = cfg.sweep if "sweep" in cfg else None
    if sweep is None or sweep.name is None:
        return cfg.grid.name, f"{cfg.grid.name}/{name}", []
    group = f"{cfg.grid.name}/sweep/{sweep.name}"
    if sweep.point is None:
        return group, f"{group}/{name}", [f"sweep:{sweep.name}"]
    # W&B refuses tags over 64 characters: a long point name is tagged by a digest of it (the name
    # itself is in the run's name and config).
    tag = f"point:{sweep.point}"
    if len(tag) > 64:
        tag = "point:" + hashlib.sha256(sweep.point.encode()).hexdigest()[:16]
    return group, f"{group}/{sweep.point}/{name}", [f"sweep:{sweep.name}", tag]


# The distributions a stage's numbers depend on, recorded in each run's config as ``environment``.
# W&B's own list of every installed package (``requirements.txt`` of a run) is not saved: reading
# the metadata of the 135 packages of this environment took 0.6 s of every wandb.init, measured,
# about a tenth of the quick run's job time; the rest of the environment is requirements.lock at
# the commit W&B records.
RECORDED_DISTRIBUTIONS = ("nnassure", "torch", "auto_LiRPA", "numpy", "onnx", "onnxruntime", "onnx2torch", "highspy",
                          "gurobipy", "z3-solver", "adversarial-robustness-toolbox", "albumentations", "hydra-core",
                          "wandb")


def package_versions() -> dict[str, str | None]:
    """The installed version of each of :data:`RECORDED_DISTRIBUTIONS` (None where not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {}
    for name in RECORDED_DISTRIBUTIONS:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


@contextmanager
def tracked_run(cfg: DictConfig, stage: str, name: str) -> Iterator[Tracker]:
    """A W&B run with job_type = ``stage``, group = experiment (or sweep, :func:`run_identity`) and
    config = the composed config."""
    mode = cfg.tracking.mode
    if mode == "disabled":
        yield Tracker()
        return
    if mode == "online" and not os.environ.get("WANDB_API_KEY"):
        raise ConfigError(
            "tracking=online needs the environment variable WANDB_API_KEY; "
            "set it, or use tracking=offline (the default) or tracking=disabled"
        )
    directory = _prepare_environment(cfg)
    import wandb

    group, run_name, tags = run_identity(cfg, name)
    run = wandb.init(
        project=cfg.tracking.project,
        entity=cfg.tracking.entity,
        group=group,
        job_type=stage,
        name=run_name,
        tags=tags,
        config={**OmegaConf.to_container(cfg, resolve=True), "environment": package_versions()},  # type: ignore[dict-item]
        dir=directory,
        mode=mode,
        reinit="finish_previous",
        settings=wandb.Settings(console="off", silent=True, x_save_requirements=False),
    )
    try:
        yield Tracker(run)
        run.finish(exit_code=0)
    except BaseException:
        run.finish(exit_code=1)
        raise


# How long the shared service outlives its last client: it is stopped when the run ends, and
# this bounds its life when the Snakemake process that started it is killed.
SHARED_SERVICE_IDLE = "2m"


def start_shared_service(cfg: DictConfig) -> str | None:
    """Start one detached wandb-core service for the local jobs of a run and return its address
    (for ``WANDB_SERVICE``), or None when tracking is disabled or a service is already given.

    Every ``wandb.init`` otherwise starts and tears down a wandb-core process of its own: measured
    here, 4.5 s of each job's time with tracking offline (a stage doing nothing: 4.5 s disabled,
    8.9 s offline, 6.9 s with a shared service). W&B documents the shared service for processes
    on one host (``wandb beta core start``); jobs on other hosts (SLURM) must not get it."""
    if cfg.tracking.mode == "disabled" or os.environ.get("WANDB_SERVICE"):
        return None
    import subprocess
    import sys

    _prepare_environment(cfg)
    started = subprocess.run([sys.executable, "-m", "wandb", "beta", "core", "start", "--idle-timeout",
                              SHARED_SERVICE_IDLE], capture_output=True, text=True, timeout=120)
    token = started.stdout.strip().splitlines()[-1] if started.stdout.strip() else ""
    if started.returncode != 0 or not token:
        # Not fatal: each job then starts its own service, as without this.
        print(f"nnassure: no shared wandb-core service ({started.stderr.strip()[-200:]}); every job starts its own",
              file=sys.stderr)
        return None
    return token


def stop_shared_service(token: str | None) -> None:
    """Stop the service :func:`start_shared_service` started (its idle timeout would otherwise)."""
    if not token:
        return
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "wandb", "beta", "core", "stop"], capture_output=True, text=True,
                   timeout=120, env={**os.environ, "WANDB_SERVICE": token})
