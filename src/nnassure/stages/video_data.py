"""Video data stage: synthetic motion clips, their pooled Farneback flow and true motion, as one .npz file.

The clips stand in for the paper's UCF101 videos (Wu & Kwiatkowska, Sec. 6); the flow is P(v) of
Def. 4, the network's input. The tracker gets the counts per split and class and the mean
endpoint error of the pooled flow against the renderer's pooled motion, overall, per class and
on the moving cells, so that a change of the renderer or of the Farneback parameters that
degrades the flow shows in the run.
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from nnassure.data.images import SPLITS
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run
from nnassure.video.clips import build_video_dataset, save_video_dataset
from nnassure.video.flow import endpoint_error


def main(cfg: DictConfig) -> None:
    path = ExperimentPaths.from_config(cfg).video_clips
    with tracked_run(cfg, "video_data", "clips") as tracker:
        dataset = build_video_dataset(cfg.video)
        save_video_dataset(path, dataset)
        summary: dict[str, float | int] = {"n": len(dataset.labels),
                                           "flow_epe": endpoint_error(dataset.flows, dataset.true_flows)}
        for split in SPLITS:
            summary[f"{split}/n"] = len(dataset.indices(split))
        for label, name in enumerate(dataset.classes):
            members = dataset.labels == label
            summary[f"{name}/n"] = int(members.sum())
            for split in SPLITS:
                summary[f"{name}/{split}/n"] = int((members & (dataset.split == split)).sum())
            summary[f"{name}/flow_epe"] = endpoint_error(dataset.flows[members], dataset.true_flows[members])
        # The cells the sprite moves in; elsewhere the true motion is 0 and the error is Farneback's
        # halo around the sprite and its response to the pixel noise.
        moving = np.linalg.norm(dataset.true_flows, axis=2) > 0
        summary["flow_epe_moving"] = endpoint_error(dataset.flows, dataset.true_flows, where=moving)
        tracker.summary(summary)


if __name__ == "__main__":
    run_stage("video_data", main)
