"""Where every artifact lives: results/<experiment>/<stage>/..., one directory per experiment so
that experiments never overwrite each other's files.

The Snakefile and the stage entry points both build paths here, so they always agree.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig


def format_cost(cost: float) -> str:
    """Cost as it appears in file names and Snakemake wildcards: 1.0 -> '1', 0.5 -> '0.5'."""
    return f"{float(cost):g}"


def _cost_name(cost: float | str) -> str:
    # Strings pass through so that Snakemake can build patterns with a "{cost}" wildcard.
    return cost if isinstance(cost, str) else format_cost(cost)


class ExperimentPaths:
    """Artifact paths of one experiment under ``results_dir``."""

    def __init__(self, results_dir: str | Path, experiment: str) -> None:
        self.root = Path(results_dir) / experiment

    @classmethod
    def from_config(cls, cfg: DictConfig) -> ExperimentPaths:
        return cls(cfg.results_dir, cfg.grid.name)

    def dataset(self, dataset: str) -> Path:
        return self.root / "data" / f"{dataset}.parquet"

    def baselines(self, dataset: str) -> Path:
        return self.root / "baselines" / f"{dataset}.csv"

    def search(self, dataset: str, cost: float | str) -> Path:
        return self.root / "search" / f"{dataset}_c{_cost_name(cost)}.json"

    def search_trials(self, dataset: str, cost: float | str) -> Path:
        return self.root / "search" / f"{dataset}_c{_cost_name(cost)}_trials.csv"

    def model_stem(self, dataset: str, cost: float | str) -> Path:
        return self.root / "models" / f"{dataset}_c{_cost_name(cost)}"

    def certification(self, dataset: str, cost: float | str) -> Path:
        return self.root / "certify" / f"{dataset}_c{_cost_name(cost)}.parquet"

    def certification_summary(self, dataset: str, cost: float | str) -> Path:
        return self.root / "certify" / f"{dataset}_c{_cost_name(cost)}_summary.csv"

    def image_dataset(self, dataset: str) -> Path:
        return self.root / "data" / f"{dataset}.npz"

    def classifier_stem(self, model: str) -> Path:
        """A multi-class image model (``<dataset>_<activation>_<depth>x<width>``)."""
        return self.root / "models" / "image" / model

    def proven(self, model: str) -> Path:
        return self.root / "proven" / f"{model}.parquet"

    def proven_verified(self, dataset: str, cost: float | str) -> Path:
        """PROVEN beside verified accuracy on a 2-D model of the verified-classification stage."""
        return self.root / "proven" / f"vc_{dataset}_c{_cost_name(cost)}.parquet"

    def ensemble_classifier_stem(self, instance: str, index: int) -> Path:
        """Classifier ``index`` (1-based) of an ensemble benchmark instance, e.g. mnist_0_1-8x8."""
        return self.root / "ensemble" / instance / f"c{index}"

    def ensemble_instance_data(self, instance: str) -> Path:
        """The data set of an ensemble instance (written by ensemble_data, read by ensemble_train and
        ensemble_row), e.g. ensemble/data/mnist_0_1-8x8.npz."""
        return self.root / "ensemble" / "data" / f"{instance}.npz"

    def ensemble_row(self, row: int | str) -> Path:
        return self.root / "ensemble" / "rows" / f"{row}.json"

    def ensemble_attacks(self, row: int | str) -> Path:
        return self.root / "ensemble" / "rows" / f"{row}.npz"

    @property
    def video_clips(self) -> Path:
        """The synthetic clips with their Farneback flow and the renderer's true motion (video_data)."""
        return self.root / "video" / "clips.npz"

    @property
    def video_model_stem(self) -> Path:
        """The CNN + LSTM on the flow sequence (video_train): ``.safetensors`` + ``.json``."""
        return self.root / "models" / "video" / "flow_lstm"

    def video_bounds(self, clip: int | str) -> Path:
        """Upper and lower bounds of the MSR of analysed test clip ``clip`` (0-based), a JSON summary."""
        return self.root / "video" / "bounds" / f"{clip}.json"

    def video_trace(self, clip: int | str) -> Path:
        """Every bound of clip ``clip`` per iteration, as Parquet."""
        return self.root / "video" / "bounds" / f"{clip}_trace.parquet"

    def video_flows(self, clip: int | str) -> Path:
        """Clip ``clip``'s frames, its flow and the adversarial flow behind its upper bound (``.npz``)."""
        return self.root / "video" / "bounds" / f"{clip}_flows.npz"

    @property
    def kri_images(self) -> Path:
        """The traffic-sign images of the KRI family (kri_data), an image data set ``.npz``."""
        return self.root / "kri" / "data" / "signs.npz"

    def kri_model_stem(self, variant: str) -> Path:
        """A model of the zoo (kri_train): ``.safetensors`` + ``.json``."""
        return self.root / "models" / "kri" / variant

    def kri_inference(self, variant: str, scenario: str) -> Path:
        """Logits of ``variant`` on every perturbed sample of ``scenario`` (kri_infer), netCDF."""
        return self.root / "kri" / "infer" / variant / f"{scenario}.nc"

    def kri_certificate(self, variant: str, scenario: str) -> Path:
        """PROVEN's certified class-change bounds of ``variant`` under ``scenario`` (kri_certify), Parquet."""
        return self.root / "kri" / "certify" / variant / f"{scenario}.parquet"

    @property
    def kri_tensor(self) -> Path:
        """The risk tensor R and R_adv of every model and scenario (kri_tensor), netCDF."""
        return self.root / "kri" / "tensor.nc"

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
