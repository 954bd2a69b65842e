"""``python -m nnassure.sweep agent <sweep file> key=value ...``: run one point of a sweep.

This is the ``command`` of a sweep file given to W&B's controller (``wandb sweep <file>``,
``wandb agent <id>``; both need W&B's server): the agent passes the values it chose as
``key=value`` arguments, which must be one point of the file's grid. The point's jobs run through
Snakemake exactly as in ``--config sweep=<file>`` (same outputs under sweeps/<name>/<point>/, the
same shared upstream artifacts), restricted to that point. The stage jobs log their own W&B runs
in the sweep's group, so the agent's own run id is removed from their environment; when the
agent gave one, the point's headline numbers are then logged to it, so the controller sees a
result per point.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from nnassure.errors import NnassureError
from nnassure.sweep import Sweep, SweepPoint, load_sweep

# The variables through which W&B's agent hands its run to the program it starts.
_AGENT_VARIABLES = ("WANDB_RUN_ID", "WANDB_SWEEP_ID", "WANDB_SWEEP_PARAM_PATH", "WANDB_RESUME")


def match_point(sweep: Sweep, arguments: Sequence[str]) -> SweepPoint:
    """The point of ``sweep`` whose values are the ``key=value`` arguments (values in YAML)."""
    values = {}
    for argument in arguments:
        key, sep, text = argument.partition("=")
        if not sep:
            raise NnassureError(f"argument {argument!r} is not key=value: expected e.g. certify.eps=[0.01]")
        values[key.lstrip("-")] = yaml.safe_load(text)
    if set(values) != set(sweep.keys):
        raise NnassureError(f"sweep {sweep.name} has the keys {', '.join(sweep.keys)}; got "
                            + (", ".join(sorted(values)) or "none"))
    for point in sweep.points:
        if all(point.values[key] == values[key] for key in sweep.keys):
            return point
    raise NnassureError(f"{' '.join(arguments)} is not a point of sweep {sweep.name}: expected one of "
                        + "; ".join(p.name for p in sweep.points))


def snakemake_command(sweep_file: str | Path, point: SweepPoint, experiment: str, cores: int,
                      overrides: str = "") -> list[str]:
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--config", f"experiment={experiment}",
               f"sweep={sweep_file}", f"point={point.name}"]
    if overrides:
        command.append(f"overrides={overrides}")
    return command


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnassure.sweep", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    agent = sub.add_parser("agent", help="run the jobs of one point of a sweep file")
    agent.add_argument("sweep_file")
    agent.add_argument("values", nargs="*", help="key=value for every key of the sweep")
    agent.add_argument("--experiment", default=os.environ.get("NNASSURE_EXPERIMENT", "quick"))
    agent.add_argument("--cores", type=int, default=int(os.environ.get("NNASSURE_CORES", "2")))
    agent.add_argument("--overrides", default=os.environ.get("NNASSURE_OVERRIDES", ""))
    args = parser.parse_args(argv)
    try:
        sweep = load_sweep(args.sweep_file)
        point = match_point(sweep, args.values)
    except NnassureError as exc:
        print(f"nnassure sweep: error: {exc}", file=sys.stderr)
        return 2
    environment = {k: v for k, v in os.environ.items() if k not in _AGENT_VARIABLES}
    completed = subprocess.run(snakemake_command(args.sweep_file, point, args.experiment, args.cores,
                                                 args.overrides), env=environment, check=False)
    if completed.returncode == 0 and os.environ.get("WANDB_RUN_ID"):
        _log_to_agent_run(sweep, point, args.experiment, args.overrides)
    return completed.returncode


def _log_to_agent_run(sweep: Sweep, point: SweepPoint, experiment: str, overrides: str) -> None:
    """The point's headline numbers on the run W&B's agent started for it."""
    import shlex

    import wandb

    from nnassure.config import compose_pipeline
    from nnassure.paths import ExperimentPaths
    from nnassure.report import catalog
    from nnassure.sweep import REPORT_STAGES, plan
    from nnassure.sweep.summary import HEADLINES

    base_overrides = [f"experiment={experiment}", *shlex.split(overrides)]
    planned = {p.point.name: p for p in plan(sweep, base_overrides, compose_pipeline(base_overrides))}[point.name]
    cfg = planned.cfg
    paths = ExperimentPaths(cfg.results_dir, cfg.grid.name, sweep.name, point.name, planned.own)
    metrics = {}
    for family in catalog.FAMILIES:
        if REPORT_STAGES[family] in planned.own:
            root = paths.of(REPORT_STAGES[family])
            files = [str(root / p.relative_to(paths.experiment_root)) for p in catalog.family_files(cfg, family)]
            metrics.update({f"{family}/{k}": v for k, v in HEADLINES[family](files).items()})
    run = wandb.init()
    run.log(metrics)
    run.finish()


if __name__ == "__main__":
    sys.exit(main())
