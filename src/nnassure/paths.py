"""Where every artifact lives: results/<experiment>/<stage>/..., one directory per experiment so
that experiments never overwrite each other's files.

The Snakefile and the stage entry points both build paths here, so they always agree.

A sweep point (nnassure.sweep) has its own root, results/<experiment>/sweeps/<sweep>/<point>/,
for the stages it runs itself (``own``: those whose keys it changes and everything downstream);
the artifacts of every other stage are the experiment's, shared by all points. So each artifact
says which stage writes it (:meth:`ExperimentPaths.of`), and a point's job reads an unchanged
upstream artifact where the experiment keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from omegaconf import DictConfig


def format_cost(cost: float) -> str:
    """Cost as it appears in file names and Snakemake wildcards: 1.0 -> '1', 0.5 -> '0.5'."""
    return f"{float(cost):g}"


def _cost_name(cost: float | str) -> str:
    # Strings pass through so that Snakemake can build patterns with a "{cost}" wildcard.
    return cost if isinstance(cost, str) else format_cost(cost)


class ExperimentPaths:
    """Artifact paths of one experiment under ``results_dir``, or of one point of a sweep of it."""

    def __init__(self, results_dir: str | Path, experiment: str, sweep: str | None = None,
                 point: str | None = None, own: Iterable[str] = ()) -> None:
        self.experiment_root = Path(results_dir) / experiment
        self.point = point
        self.own = frozenset(own) if point is not None else frozenset()
        # logs, benchmarks, W&B runs, tables and figures always belong to the job's own root
        self.root = self.experiment_root if point is None else self.sweep_root(sweep) / point

    @classmethod
    def from_config(cls, cfg: DictConfig) -> ExperimentPaths:
        sweep = cfg.sweep if "sweep" in cfg else None
        if sweep is None or sweep.point is None:
            return cls(cfg.results_dir, cfg.grid.name)
        return cls(cfg.results_dir, cfg.grid.name, sweep.name, sweep.point, sweep.own)

    def of(self, stage: str) -> Path:
        """The root holding the artifacts of ``stage``: the point's if it runs the stage itself."""
        return self.root if self.point is None or stage in self.own else self.experiment_root

    def sweep_root(self, sweep: str) -> Path:
        """Everything of one sweep: a directory per point, the plan and the summary."""
        return self.experiment_root / "sweeps" / sweep

    def sweep_plan(self, sweep: str) -> Path:
        """The sweep's points, their keys and overrides, and the report files each point's summary
        reads (written by the Snakefile when it plans the sweep)."""
        return self.sweep_root(sweep) / "plan.json"

    def sweep_summary(self, sweep: str) -> Path:
        """One row per point: its keys and headline numbers (``.csv``; ``.md`` beside it)."""
        return self.sweep_root(sweep) / "summary.csv"

    def dataset(self, dataset: str) -> Path:
        return self.of("data") / "data" / f"{dataset}.parquet"

    def baselines(self, dataset: str) -> Path:
        return self.of("baselines") / "baselines" / f"{dataset}.csv"

    def search(self, dataset: str, cost: float | str) -> Path:
        return self.of("search") / "search" / f"{dataset}_c{_cost_name(cost)}.json"

    def search_trial(self, dataset: str, cost: float | str, trial: int | str) -> Path:
        """One trial of the architecture search (search_trial), JSON."""
        return self.of("search_trial") / "search" / "trials" / f"{dataset}_c{_cost_name(cost)}" / f"{trial}.json"

    def search_trials(self, dataset: str, cost: float | str) -> Path:
        return self.of("search") / "search" / f"{dataset}_c{_cost_name(cost)}_trials.csv"

    def model_stem(self, dataset: str, cost: float | str) -> Path:
        return self.of("train") / "models" / f"{dataset}_c{_cost_name(cost)}"

    def certification(self, dataset: str, cost: float | str) -> Path:
        return self.of("certify") / "certify" / f"{dataset}_c{_cost_name(cost)}.parquet"

    def certification_summary(self, dataset: str, cost: float | str) -> Path:
        return self.of("certify") / "certify" / f"{dataset}_c{_cost_name(cost)}_summary.csv"

    def image_dataset(self, dataset: str) -> Path:
        return self.of("images") / "data" / f"{dataset}.npz"

    def classifier_stem(self, model: str) -> Path:
        """A multi-class image model (``<dataset>_<activation>_<depth>x<width>``)."""
        return self.of("train_classifier") / "models" / "image" / model

    def proven(self, model: str) -> Path:
        return self.of("proven") / "proven" / f"{model}.parquet"

    def proven_verified(self, dataset: str, cost: float | str) -> Path:
        """PROVEN beside verified accuracy on a 2-D model of the verified-classification stage."""
        return self.of("proven_verified") / "proven" / f"vc_{dataset}_c{_cost_name(cost)}.parquet"

    def ensemble_classifier_stem(self, instance: str, index: int) -> Path:
        """Classifier ``index`` (1-based) of an ensemble benchmark instance, e.g. mnist_0_1-8x8."""
        return self.of("ensemble_train") / "ensemble" / instance / f"c{index}"

    def ensemble_instance_data(self, instance: str) -> Path:
        """The data set of an ensemble instance (written by ensemble_data, read by ensemble_train and
        ensemble_row), e.g. ensemble/data/mnist_0_1-8x8.npz."""
        return self.of("ensemble_data") / "ensemble" / "data" / f"{instance}.npz"

    def ensemble_row(self, row: int | str) -> Path:
        return self.of("ensemble_row") / "ensemble" / "rows" / f"{row}.json"

    def ensemble_attacks(self, row: int | str) -> Path:
        return self.of("ensemble_row") / "ensemble" / "rows" / f"{row}.npz"

    @property
    def video_clips(self) -> Path:
        """The synthetic clips with their Farneback flow and the renderer's true motion (video_data)."""
        return self.of("video_data") / "video" / "clips.npz"

    @property
    def video_model_stem(self) -> Path:
        """The CNN + LSTM on the flow sequence (video_train): ``.safetensors`` + ``.json``."""
        return self.of("video_train") / "models" / "video" / "flow_lstm"

    def video_bounds(self, clip: int | str) -> Path:
        """Upper and lower bounds of the MSR of analysed test clip ``clip`` (0-based), a JSON summary."""
        return self.of("video_bounds") / "video" / "bounds" / f"{clip}.json"

    def video_trace(self, clip: int | str) -> Path:
        """Every bound of clip ``clip`` per iteration, as Parquet."""
        return self.of("video_bounds") / "video" / "bounds" / f"{clip}_trace.parquet"

    def video_flows(self, clip: int | str) -> Path:
        """Clip ``clip``'s frames, its flow and the adversarial flow behind its upper bound (``.npz``)."""
        return self.of("video_bounds") / "video" / "bounds" / f"{clip}_flows.npz"

    @property
    def kri_images(self) -> Path:
        """The traffic-sign images of the KRI family (kri_data), an image data set ``.npz``."""
        return self.of("kri_data") / "kri" / "data" / "signs.npz"

    def kri_model_stem(self, variant: str) -> Path:
        """A model of the zoo (kri_train): ``.safetensors`` + ``.json``."""
        return self.of("kri_train") / "models" / "kri" / variant

    def kri_inference(self, variant: str, scenario: str) -> Path:
        """Logits of ``variant`` on every perturbed sample of ``scenario`` (kri_infer), netCDF."""
        return self.of("kri_infer") / "kri" / "infer" / variant / f"{scenario}.nc"

    def kri_certificate(self, variant: str, scenario: str) -> Path:
        """PROVEN's certified class-change bounds of ``variant`` under ``scenario`` (kri_certify), Parquet."""
        return self.of("kri_certify") / "kri" / "certify" / variant / f"{scenario}.parquet"

    @property
    def kri_tensor(self) -> Path:
        """The risk tensor R and R_adv of every model and scenario (kri_tensor), netCDF."""
        return self.of("kri_tensor") / "kri" / "tensor.nc"

    def assess_manifest(self, name: str) -> Path:
        """What was imported for an assessed model (assess_import): hashes, shapes, operators, the
        agreement with onnxruntime and the data's summary, JSON."""
        return self.of("assess_import") / "assess" / name / "import.json"

    def assess_accuracy(self, name: str) -> Path:
        """Clean accuracy and cost of an assessed model (assess_accuracy), JSON; per-sample rows beside."""
        return self.of("assess_accuracy") / "assess" / name / "accuracy.json"

    def assess_certification(self, name: str) -> Path:
        """Per-sample verdicts and certified radii of an assessed model (assess_certify), Parquet."""
        return self.of("assess_certify") / "assess" / name / "certify.parquet"

    def assess_proven(self, name: str) -> Path:
        """PROVEN's certificates of an assessed model (assess_proven), JSON (with the reason when skipped)."""
        return self.of("assess_proven") / "assess" / name / "proven.json"

    def assess_kri(self, name: str) -> Path:
        """The KRI scenario components on an assessed model (assess_kri), JSON (the reason when skipped)."""
        return self.of("assess_kri") / "assess" / name / "kri.json"

    def vnnlib_result(self, name: str, prop: str) -> Path:
        """The verdict on one VNN-LIB property (vnnlib), JSON; VNN-COMP's result file beside it (.txt)."""
        return self.of("vnnlib") / "assess" / name / "vnnlib" / f"{prop}.json"

    def assess_report(self, name: str) -> Path:
        """The dependability report of an assessed model (report_assess), one HTML page."""
        return self.of("report_assess") / "assess" / name / "report" / "index.html"

    @property
    def tables(self) -> Path:
        return self.root / "tables"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def benchmarks(self) -> Path:
        return self.root / "benchmarks"

    @property
    def wandb(self) -> Path:
        return self.root / "wandb"
