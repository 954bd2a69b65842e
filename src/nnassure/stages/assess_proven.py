"""PROVEN's probabilistic certificates of an assessed model (``results/<experiment>/assess/<name>/
proven.json``): the worst-case radius and, per confidence, PROVEN's radius under bounded noise, for
the first assess.proven.samples correctly classified points, or the reason they do not apply."""

from __future__ import annotations

from omegaconf import DictConfig

from nnassure.io import write_json
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    import pandas as pd

    from nnassure.assess.experiment import imported, proven_certificates
    from nnassure.proven.bisection import BisectionSettings

    paths = ExperimentPaths.from_config(cfg)
    name, model, data = imported(cfg)
    p = cfg.assess.proven
    settings = BisectionSettings(eps_min=float(p.eps_min), eps_max=float(p.eps_max),
                                 tolerance=float(p.bisection_tolerance), guess_factor=float(p.guess_factor),
                                 batch_size=int(p.batch_size))
    with tracked_run(cfg, "assess_proven", name) as tracker:
        result = proven_certificates(model, data, int(p.samples), [float(g) for g in p.gammas], settings)
        write_json(result, paths.assess_proven(name))
        if "skipped" not in result:
            tracker.log_table("mean_certified_eps", pd.DataFrame(result["mean_certified_eps"]))
    print(f"assess_proven {name}: " + (f"skipped: {result['skipped']}" if "skipped" in result else
                                       f"{len(result['samples'])} points certified"))


if __name__ == "__main__":
    run_stage("assess_proven", main)
