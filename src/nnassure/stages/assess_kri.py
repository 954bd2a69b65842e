"""The KRI scenario components on an assessed model (``results/<experiment>/assess/<name>/kri.json``):
per corruption or attack of ``kri.scenarios`` (or ``assess.kri.scenarios``), the class-change and
misclassification rates of the first ``assess.kri.samples`` images, or the reason they do not apply
(the model's input is not an RGB image in [0, 1])."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from nnassure.io import write_json
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    from nnassure.assess.experiment import domain_of, imported, kri_components

    paths = ExperimentPaths.from_config(cfg)
    name, model, data = imported(cfg)
    chosen = cfg.assess.kri.scenarios if cfg.assess.kri.scenarios is not None else list(cfg.kri.scenarios)
    scenarios = {s: OmegaConf.to_container(cfg.kri.scenarios[s], resolve=True) for s in chosen}
    with tracked_run(cfg, "assess_kri", name) as tracker:
        result = kri_components(model, data, scenarios, int(cfg.assess.kri.samples), int(cfg.kri.draws),
                                int(cfg.kri.seed), domain_of(cfg.assess))
        write_json(result, paths.assess_kri(name))
        for row in result.get("rows", []):
            tracker.summary({f"class_change/{row['scenario']}": row["class_change"]})
    print(f"assess_kri {name}: " + (f"skipped: {result['skipped']}" if "skipped" in result else
                                    f"{len(result['rows'])} scenario components"))


if __name__ == "__main__":
    run_stage("assess_kri", main)
