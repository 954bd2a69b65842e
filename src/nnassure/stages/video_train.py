"""Train stage of the video family (Wu & Kwiatkowska, Sec. 6): the CNN + LSTM flow classifier on
the clips of video_data, saved as ``models/video/flow_lstm.{safetensors,json}``.

The architecture's input size and classes come from the clips (flows per clip, flow grid, motion
classes), its widths and the optimiser from ``video.*`` (the keys of ``video_train`` in
:mod:`nnassure.stage_keys`).
"""

from __future__ import annotations

from dataclasses import asdict

from omegaconf import DictConfig

from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run
from nnassure.video.model import FlowLSTMSpec, save_flow_lstm
from nnassure.video.train import train_flow_lstm


def main(cfg: DictConfig) -> None:
    # Imported here so that the module (and --help) load even while the data module is missing.
    from nnassure.video.clips import load_video_dataset

    paths = ExperimentPaths.from_config(cfg)
    data = load_video_dataset(paths.video_clips)
    splits = {split: data.arrays(split) for split in ("train", "val", "test")}
    flows = splits["train"][0]
    c = cfg.video
    spec = FlowLSTMSpec(flows=int(flows.shape[1]), grid=int(flows.shape[3]), classes=len(data.classes),
                        conv_channels=int(c.conv_channels), features=int(c.features), hidden=int(c.hidden))
    with tracked_run(cfg, "video_train", "flow_lstm") as tracker:
        result = train_flow_lstm(splits["train"], splits["val"], spec, float(c.lr), float(c.weight_decay),
                                 int(c.batch_size), int(c.max_epochs), int(c.patience), seed=int(c.seed),
                                 test=splits["test"], description="train flow_lstm")
        for record in result.history:
            tracker.log(record)
        save_flow_lstm(result.model, paths.video_model_stem,
                       metadata={"accuracy": result.accuracy, "epochs": result.epochs,
                                 "best_epoch": result.best_epoch, "seconds": result.seconds,
                                 "classes": list(data.classes), "spec": asdict(spec), "optimizer": "adam",
                                 "lr": float(c.lr), "weight_decay": float(c.weight_decay),
                                 "batch_size": int(c.batch_size), "seed": int(c.seed)})
        tracker.summary({**{f"accuracy/{k}": v for k, v in result.accuracy.items()},
                         "epochs": result.epochs, "best_epoch": result.best_epoch, "seconds": result.seconds})


if __name__ == "__main__":
    run_stage("video_train", main)
