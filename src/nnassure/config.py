"""Structured Hydra configuration: the one source of parameters for every stage and the Snakefile.

The dataclasses below are registered in Hydra's ConfigStore as the schema of ``conf/``; OmegaConf
checks keys and types when the YAML is merged onto them, and :func:`validate` checks the values.
:func:`compose` is what both the stage entry points and the Snakefile call, so a bad value
fails at compose time wherever the config is built.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from nnassure.errors import ConfigError

DATASETS = ("a", "b", "c")
NORMS = ("linf", "l2")
METHODS = ("ibp", "crown", "alpha-crown")
TRACKING_MODES = ("offline", "disabled", "online")
MAX_DEPTH = 4
IMAGE_DATASETS = ("digits", "signs")
ACTIVATION_NAMES = ("relu", "tanh", "sigmoid", "arctan")
SIGN_CLASS_NAMES = ("give_way", "priority_road", "stop", "no_entry", "speed_limit", "ahead_only")
MODEL_ID = re.compile(r"(?P<dataset>[a-z]+)_(?P<activation>[a-z]+)_(?P<depth>[0-9]+)x(?P<width>[0-9]+)")


@dataclass(frozen=True)
class ModelId:
    """A PROVEN model named ``<dataset>_<activation>_<depth>x<width>``."""

    dataset: str
    activation: str
    depth: int
    width: int

    @property
    def name(self) -> str:
        return f"{self.dataset}_{self.activation}_{self.depth}x{self.width}"

    @property
    def architecture(self) -> str:
        return f"{self.depth}x[{self.width}]"


def parse_model_id(name: str, key: str = "proven.models") -> ModelId:
    """Parse and check a model name; raise :class:`ConfigError` naming ``key`` if it is invalid."""
    match = MODEL_ID.fullmatch(str(name))
    allowed = (f"<dataset>_<activation>_<depth>x<width> with dataset in {IMAGE_DATASETS}, activation in "
               f"{ACTIVATION_NAMES}, depth 1..8, width >= 1 (e.g. digits_relu_2x20)")
    if match is None:
        _fail(key, name, allowed)
    model = ModelId(match["dataset"], match["activation"], int(match["depth"]), int(match["width"]))
    if model.dataset not in IMAGE_DATASETS or model.activation not in ACTIVATION_NAMES \
            or not 1 <= model.depth <= 8 or model.width < 1:
        _fail(key, name, allowed)
    return model


@dataclass
class GridConfig:
    """The experiment grid the Snakefile expands: which data sets and costs are run."""

    name: str = "quick"
    datasets: list[str] = field(default_factory=lambda: ["a", "b", "c"])
    costs: list[float] = field(default_factory=lambda: [1.0, 10.0, 50.0])


@dataclass
class DatasetConfig:
    """A 2-D data set of the verified-classification paper (Sec. 1.1), generated offline."""

    name: str = "a"
    n_samples: int = 1000
    minority_fraction: float = 1 / 3
    margin: float = 0.004
    val_fraction: float = 0.2
    seed: int = 0


@dataclass
class ModelConfig:
    """MLP of Sec. 3.1: ``depth`` hidden ReLU layers of ``width`` units and one logit."""

    depth: int = 2
    width: int = 64
    dropout: float = 0.0


@dataclass
class TrainConfig:
    """Adam on the double-weighted BCE of Eqs. (1)-(2) with early stopping (Sec. 4.2)."""

    cost_fn: float = 1.0
    cost_fp: float = 1.0
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 32
    max_epochs: int = 200
    patience: int = 15
    seed: int = 0
    # Architecture-search result (JSON) whose winner is trained; None: use model.* and train.*.
    hparams_file: str | None = None


@dataclass
class SearchConfig:
    """Random architecture search of Sec. 4.2, selected by validation cost per sample."""

    n_trials: int = 8
    max_epochs: int = 60
    patience: int = 8
    depths: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    lrs: list[float] = field(default_factory=lambda: [3e-4, 1e-3, 2e-3])
    weight_decays: list[float] = field(default_factory=lambda: [0.0, 1e-4])
    dropouts: list[float] = field(default_factory=lambda: [0.0, 0.1])
    seed: int = 0


@dataclass
class CertifyConfig:
    """LiRPA verification of Sec. 3.2 and per-sample certified radii."""

    method: str = "crown"
    methods: list[str] = field(default_factory=lambda: ["crown"])
    norms: list[str] = field(default_factory=lambda: ["linf", "l2"])
    eps: list[float] = field(default_factory=lambda: [0.001, 0.01, 0.025])
    clip_to_domain: bool = False
    batch_size: int = 4096
    alpha_batch_size: int = 20
    alpha_iterations: int = 20
    radius_max: float = 0.5
    radius_steps: int = 16


@dataclass
class ImagesConfig:
    """Image data sets (sklearn's 8x8 digits; traffic signs rendered with OpenCV) and the training
    of multi-class MLPs on them (Adam, cross-entropy, early stopping on the validation split)."""

    digits_size: int = 8
    signs_size: int = 16
    signs_per_class: int = 400
    sign_classes: list[str] = field(default_factory=lambda: list(SIGN_CLASS_NAMES))
    split: list[float] = field(default_factory=lambda: [0.7, 0.1, 0.2])
    seed: int = 0
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    max_epochs: int = 100
    patience: int = 10


@dataclass
class ProvenConfig:
    """PROVEN (Weng et al.): largest eps certified in the worst case and at confidence gamma.

    Models are named ``<dataset>_<activation>_<depth>x<width>`` (e.g. ``digits_relu_2x20``).
    """

    models: list[str] = field(default_factory=lambda: ["digits_relu_2x20", "digits_tanh_2x20"])
    # Models also certified under Gaussian noise (Fig. 1) and resampled for Table 4.
    gaussian_models: list[str] = field(default_factory=lambda: ["digits_relu_2x20"])
    table4_models: list[str] = field(default_factory=lambda: ["digits_relu_2x20"])
    model: str | None = None  # the model one stage run works on (a Snakemake wildcard)
    gammas: list[float] = field(default_factory=lambda: [0.9999, 0.75, 0.5, 0.25, 0.05])
    samples: int = 100  # correctly classified test points per model (Gaussian certificates: these only)
    table4_samples: int = 300  # the pool Table 4's random trials draw from (table4_models only)
    table2_samples: int = 10  # Table 2 averages over 10 images
    table4_trials: int = 100
    table4_sizes: list[int] = field(default_factory=lambda: [10, 50, 100])
    eps_min: float = 1e-4
    eps_max: float = 0.5
    bisection_tolerance: float = 5e-4  # relative resolution of the bisection on eps
    guess_factor: float = 2.0  # PROVEN's bisection first tries guess_factor x the worst-case eps
    batch_size: int = 256
    sigma_ratio: float = 3.0  # Gaussian std = eps / sigma_ratio (3-sigma rule, Remark 3.4)
    correlation_length: float = 1.0  # pixels, for correlated Gaussian noise
    channel_correlation: float = 0.5
    seed: int = 0


@dataclass
class EnsembleConfig:
    """Robustness of classifier ensembles against randomized attacks (Gross et al.): the
    benchmark rows (conf/ensemble/benchmarks.yaml, the paper's appendix) and how they are solved."""

    benchmarks: list[Any] = field(default_factory=list)  # the 38 rows, validated by nnassure.ensemble.benchmarks
    rows: list[int] = field(default_factory=list)  # benchmark ids to run; empty = every row
    row: int | None = None  # the row one stage run works on (a Snakemake wildcard)
    instance: str | None = None  # the ensemble of one training run, e.g. mnist_0_1-8x8 (a wildcard)
    classifier: int | None = None  # which of its classifiers (1-based; a wildcard)
    backends: list[str] = field(default_factory=lambda: ["highs", "gurobi"])  # every row's MILP on each
    table_backend: str = "highs"  # MaxMILP, baselines and the tables' MILP column
    smt: bool = True  # Z3 on every row (Tables 1 and 4)
    time_limit: float = 7200.0  # seconds per solver call (the paper's 7200 s)
    smt_time_limit: float = 7200.0
    bounds: str = "lirpa"  # big-M constants: interval | lirpa (CROWN over the L1 ball, intersected)
    margin: float = 1e-4  # attacks must misclassify by this logit margin to survive float64
    # the classifiers (the paper gives no architecture; small, so that the MILPs stay solvable)
    depth: int = 2
    width: int = 10
    conv_filters: int = 2
    conv_kernel: int = 3
    pool: int = 2
    conv_hidden: int = 8
    max_epochs: int = 100
    signs_per_class: int = 300
    min_accuracy_digits: float = 0.9
    min_accuracy_signs: float = 0.8
    training_attempts: int = 5  # seeds tried per classifier to reach the accuracy bar
    seed: int = 0


@dataclass
class TrackingConfig:
    """Weights & Biases: ``offline`` (default, files under results/), ``disabled`` or ``online``."""

    mode: str = "offline"
    project: str = "nnassure"
    entity: str | None = None


@dataclass
class ReportConfig:
    fig2_dataset: str = "a"
    fig2_cost: float = 1.0
    fig2_eps: float = 0.025
    fig3_dataset: str = "b"
    fig3_eps: float = 0.01


@dataclass
class Config:
    grid: GridConfig = field(default_factory=GridConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    certify: CertifyConfig = field(default_factory=CertifyConfig)
    images: ImagesConfig = field(default_factory=ImagesConfig)
    proven: ProvenConfig = field(default_factory=ProvenConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    results_dir: str = "results"
    threads: int = 1


def register_configs() -> None:
    store = ConfigStore.instance()
    store.store(name="schema", node=Config)


def conf_dir() -> Path:
    """The ``conf/`` tree at the repository root (the package is installed in editable mode)."""
    return Path(__file__).resolve().parents[2] / "conf"


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"invalid config value {key}={value!r}: expected {allowed}")


def _check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(key, value, "one of " + ", ".join(choices))


def _check_positive(key: str, value: float, *, strict: bool = True) -> None:
    ok = value > 0 if strict else value >= 0
    if not ok or not math.isfinite(value):
        _fail(key, value, "a finite number " + ("> 0" if strict else ">= 0"))


def _check_fraction(key: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        _fail(key, value, "a number in [0, 1)")


def _check_depth(key: str, value: int) -> None:
    if not 1 <= value <= MAX_DEPTH:
        _fail(key, value, f"an integer in 1..{MAX_DEPTH}")


def validate(cfg: DictConfig) -> None:
    """Check every value of a composed config; raise :class:`ConfigError` naming the bad key."""
    for i, name in enumerate(cfg.grid.datasets):
        _check_choice(f"grid.datasets[{i}]", name, DATASETS)
    for i, cost in enumerate(cfg.grid.costs):
        _check_positive(f"grid.costs[{i}]", cost)
    if not cfg.grid.datasets or not cfg.grid.costs:
        _fail("grid", OmegaConf.to_container(cfg.grid), "non-empty lists grid.datasets and grid.costs")

    _check_choice("dataset.name", cfg.dataset.name, DATASETS)
    if cfg.dataset.n_samples < 20:
        _fail("dataset.n_samples", cfg.dataset.n_samples, "an integer >= 20")
    if not 0.0 < cfg.dataset.minority_fraction <= 0.5:
        _fail("dataset.minority_fraction", cfg.dataset.minority_fraction, "a number in (0, 0.5]")
    _check_positive("dataset.margin", cfg.dataset.margin, strict=False)
    if not 0.0 < cfg.dataset.val_fraction < 1.0:
        _fail("dataset.val_fraction", cfg.dataset.val_fraction, "a number in (0, 1)")

    _check_depth("model.depth", cfg.model.depth)
    if cfg.model.width < 1:
        _fail("model.width", cfg.model.width, "an integer >= 1")
    _check_fraction("model.dropout", cfg.model.dropout)

    _check_positive("train.cost_fn", cfg.train.cost_fn)
    _check_positive("train.cost_fp", cfg.train.cost_fp)
    _check_positive("train.lr", cfg.train.lr)
    _check_positive("train.weight_decay", cfg.train.weight_decay, strict=False)
    for key in ("batch_size", "max_epochs", "patience"):
        if cfg.train[key] < 1:
            _fail(f"train.{key}", cfg.train[key], "an integer >= 1")

    if cfg.search.n_trials < 1:
        _fail("search.n_trials", cfg.search.n_trials, "an integer >= 1")
    for key in ("max_epochs", "patience"):
        if cfg.search[key] < 1:
            _fail(f"search.{key}", cfg.search[key], "an integer >= 1")
    for key in ("depths", "widths", "lrs", "weight_decays", "dropouts"):
        if not cfg.search[key]:
            _fail(f"search.{key}", [], "a non-empty list")
    for i, depth in enumerate(cfg.search.depths):
        _check_depth(f"search.depths[{i}]", depth)
    for i, width in enumerate(cfg.search.widths):
        if width < 1:
            _fail(f"search.widths[{i}]", width, "an integer >= 1")
    for i, lr in enumerate(cfg.search.lrs):
        _check_positive(f"search.lrs[{i}]", lr)
    for i, wd in enumerate(cfg.search.weight_decays):
        _check_positive(f"search.weight_decays[{i}]", wd, strict=False)
    for i, p in enumerate(cfg.search.dropouts):
        _check_fraction(f"search.dropouts[{i}]", p)

    _check_choice("certify.method", cfg.certify.method, METHODS)
    for i, method in enumerate(cfg.certify.methods):
        _check_choice(f"certify.methods[{i}]", method, METHODS)
    if cfg.certify.method not in cfg.certify.methods:
        _fail("certify.method", cfg.certify.method, "one of certify.methods " + str(list(cfg.certify.methods)))
    for i, norm in enumerate(cfg.certify.norms):
        _check_choice(f"certify.norms[{i}]", norm, NORMS)
    for i, eps in enumerate(cfg.certify.eps):
        _check_positive(f"certify.eps[{i}]", eps)
    if not cfg.certify.eps or not cfg.certify.norms:
        _fail("certify", "empty", "non-empty lists certify.eps and certify.norms")
    _check_positive("certify.radius_max", cfg.certify.radius_max)
    for key in ("batch_size", "alpha_batch_size", "alpha_iterations", "radius_steps"):
        if cfg.certify[key] < 1:
            _fail(f"certify.{key}", cfg.certify[key], "an integer >= 1")

    _validate_images(cfg.images)
    _validate_proven(cfg.proven)
    _validate_ensemble(cfg.ensemble)
    _check_choice("tracking.mode", cfg.tracking.mode, TRACKING_MODES)
    _check_choice("report.fig2_dataset", cfg.report.fig2_dataset, DATASETS)
    _check_choice("report.fig3_dataset", cfg.report.fig3_dataset, DATASETS)
    if cfg.threads < 1:
        _fail("threads", cfg.threads, "an integer >= 1")


def _validate_images(images: DictConfig) -> None:
    if images.digits_size < 2:
        _fail("images.digits_size", images.digits_size, "an integer >= 2")
    if images.signs_size < 6:
        _fail("images.signs_size", images.signs_size, "an integer >= 6")
    if images.signs_per_class < 5:
        _fail("images.signs_per_class", images.signs_per_class, "an integer >= 5")
    if len(images.sign_classes) < 2:
        _fail("images.sign_classes", list(images.sign_classes), "at least 2 of " + ", ".join(SIGN_CLASS_NAMES))
    for i, name in enumerate(images.sign_classes):
        _check_choice(f"images.sign_classes[{i}]", name, SIGN_CLASS_NAMES)
    fractions = list(images.split)
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        _fail("images.split", fractions, "three positive fractions (train, val, test) summing to 1")
    _check_positive("images.lr", images.lr)
    _check_positive("images.weight_decay", images.weight_decay, strict=False)
    for key in ("batch_size", "max_epochs", "patience"):
        if images[key] < 1:
            _fail(f"images.{key}", images[key], "an integer >= 1")


def _validate_proven(proven: DictConfig) -> None:
    if not proven.models:
        _fail("proven.models", [], "a non-empty list of model names")
    names = [parse_model_id(m, f"proven.models[{i}]").name for i, m in enumerate(proven.models)]
    for key in ("gaussian_models", "table4_models"):
        for i, name in enumerate(proven[key]):
            if name not in names:
                _fail(f"proven.{key}[{i}]", name, "one of proven.models " + str(names))
    if proven.model is not None:
        parse_model_id(proven.model, "proven.model")
    if not proven.gammas:
        _fail("proven.gammas", [], "a non-empty list of confidences in (0, 1)")
    for i, gamma in enumerate(proven.gammas):
        if not 0.0 < gamma < 1.0:
            _fail(f"proven.gammas[{i}]", gamma, "a confidence in (0, 1)")
    for key in ("samples", "table4_samples", "table2_samples", "table4_trials", "batch_size"):
        if proven[key] < 1:
            _fail(f"proven.{key}", proven[key], "an integer >= 1")
    if proven.table2_samples > proven.samples:
        _fail("proven.table2_samples", proven.table2_samples, f"at most proven.samples ({proven.samples})")
    for i, size in enumerate(proven.table4_sizes):
        if size < 1:
            _fail(f"proven.table4_sizes[{i}]", size, "an integer >= 1")
    _check_positive("proven.eps_min", proven.eps_min)
    if not proven.eps_max > proven.eps_min:
        _fail("proven.eps_max", proven.eps_max, f"a number > proven.eps_min ({proven.eps_min})")
    _check_positive("proven.bisection_tolerance", proven.bisection_tolerance)
    if not proven.guess_factor > 1.0:
        _fail("proven.guess_factor", proven.guess_factor, "a number > 1")
    _check_positive("proven.sigma_ratio", proven.sigma_ratio)
    _check_positive("proven.correlation_length", proven.correlation_length)
    if not 0.0 <= proven.channel_correlation <= 1.0:
        _fail("proven.channel_correlation", proven.channel_correlation, "a number in [0, 1]")


def _validate_ensemble(ensemble: DictConfig) -> None:
    from nnassure.ensemble.benchmarks import parse_benchmarks
    from nnassure.ensemble.milp import BACKENDS as BACKENDS_CHOICES

    rows = parse_benchmarks(OmegaConf.to_container(ensemble.benchmarks), "ensemble.benchmarks")
    ids = [r.id for r in rows]
    for i, row in enumerate(ensemble.rows):
        if row not in ids:
            _fail(f"ensemble.rows[{i}]", row, f"a benchmark id of ensemble.benchmarks ({min(ids)}..{max(ids)})")
    if ensemble.row is not None and ensemble.row not in ids:
        _fail("ensemble.row", ensemble.row, "a benchmark id of ensemble.benchmarks")
    instances = sorted({r.instance for r in rows})
    if ensemble.instance is not None and ensemble.instance not in instances:
        _fail("ensemble.instance", ensemble.instance, "one of " + ", ".join(instances))
    if ensemble.classifier is not None and ensemble.classifier < 1:
        _fail("ensemble.classifier", ensemble.classifier, "an integer >= 1")
    if not ensemble.backends:
        _fail("ensemble.backends", [], "a non-empty list of MILP backends")
    for i, backend in enumerate(ensemble.backends):
        _check_choice(f"ensemble.backends[{i}]", backend, BACKENDS_CHOICES)
    _check_choice("ensemble.table_backend", ensemble.table_backend, BACKENDS_CHOICES)
    _check_choice("ensemble.bounds", ensemble.bounds, ("interval", "lirpa"))
    _check_positive("ensemble.time_limit", ensemble.time_limit)
    _check_positive("ensemble.smt_time_limit", ensemble.smt_time_limit)
    _check_positive("ensemble.margin", ensemble.margin, strict=False)
    for key in ("depth", "width", "conv_filters", "conv_kernel", "pool", "conv_hidden", "max_epochs",
                "signs_per_class", "training_attempts"):
        if ensemble[key] < 1:
            _fail(f"ensemble.{key}", ensemble[key], "an integer >= 1")
    _check_depth("ensemble.depth", ensemble.depth)
    for key in ("min_accuracy_digits", "min_accuracy_signs"):
        if not 0.0 <= ensemble[key] <= 1.0:
            _fail(f"ensemble.{key}", ensemble[key], "an accuracy in [0, 1]")


def compose(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Compose ``conf/config.yaml`` with Hydra overrides, validate it and return it read-only.

    Raises :class:`ConfigError` with a one-line message for an unknown key, a wrong type,
    an unknown config group option or an invalid value.
    """
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
            cfg = hydra_compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        message = str(exc)
        if exc.__cause__ is not None:
            message += f": {exc.__cause__}"
        message = " ".join(message.split()).split(" full_key:")[0]
        raise ConfigError(f"invalid configuration: {message}") from None
    finally:
        GlobalHydra.instance().clear()
    validate(cfg)
    OmegaConf.set_readonly(cfg, True)
    return cfg
