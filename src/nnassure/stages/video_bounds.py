"""video_bounds stage: every bound of the maximum safe radius of one analysed test clip (``video.clip``)."""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from nnassure.errors import ConfigError
from nnassure.io import atomic_path, write_json, write_parquet
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run
from nnassure.video.clips import load_video_dataset
from nnassure.video.experiment import BoundSettings, analyse_clip, select_clip
from nnassure.video.model import load_flow_lstm

TRACE_DESCRIPTIONS = {
    "bound": "upper | astar | astar_subspace_upper | lirpa_<norm> | astar_k | lirpa_k",
    "flows": "number of manipulated flows (all of them for whole-sequence bounds)",
    "iteration": "gradient-search iteration, A* expansion or bisection step",
    "value": "the bound after that iteration (upper: never increases; lower: never decreases)",
}


def main(cfg: DictConfig) -> None:
    v = cfg.video
    if v.clip is None:
        raise ConfigError("video.clip is not set: name the analysed test clip, e.g. video.clip=0")
    paths = ExperimentPaths.from_config(cfg)
    data = load_video_dataset(paths.video_clips)
    model = load_flow_lstm(paths.video_model_stem).model
    position = select_clip(model, data, int(v.clip), int(v.seed),
                           f"{paths.video_clips} (model {paths.video_model_stem}.json)")
    with tracked_run(cfg, "video_bounds", f"clip{v.clip}") as tracker:
        summary, trace, arrays = analyse_clip(model, data, position, int(v.clip), BoundSettings.from_config(v))
        write_parquet(trace, paths.video_trace(v.clip), TRACE_DESCRIPTIONS)
        with atomic_path(paths.video_flows(v.clip)) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        write_json(summary, paths.video_bounds(v.clip))
        tracker.log_table("trace", trace)
        tracker.summary({"upper": summary["upper"]["distance"], "astar_lower": summary["astar"]["lower"],
                         **{f"lirpa_{n}": r["radius"] for n, r in summary["lirpa"].items()}})


if __name__ == "__main__":
    run_stage("video_bounds", main)
