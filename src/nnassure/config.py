"""The one source of parameters for every stage and the Snakefile: ``conf/`` composed by Hydra,
then checked against the pydantic schema below.

Hydra only composes (groups, experiments, command-line overrides); the schema then refuses
unknown keys, wrong types and values a key does not allow, each in one line naming the key
(:mod:`nnassure.config_errors`). Field constraints are declared on the types (``PositiveFloat``,
``Depth``, ``one_of(...)``, ...); checks that involve several keys are the ``model_validator``
of the section they belong to, or of :class:`Config` when they span sections. :func:`compose`
returns the validated values as a read-only DictConfig, so a bad value fails at compose time,
wherever the config is built.

Composing must stay cheap: the Snakefile composes at parse time and every stage job composes
once, so nothing here imports torch (``nnassure.ensemble`` imports its solver and network code
only on first use, so its benchmark rows and MILP backend names come without it),
Hydra's output is cached per process (:func:`_composed`), and :func:`compose_pipeline` gives the
Snakefile its config and the per-data-set ones without recomposing the ensemble rows.

Every key has an effect or is refused. The keys the architecture search chooses per trial,
:data:`SEARCHED_KEYS` (``train.lr``, ``train.weight_decay``, ``model.depth``, ``model.width``,
``model.dropout``), are read by the train stage only when ``train.hparams_file`` is null (a
hand-run of train on a fixed architecture); with ``train.hparams_file`` set the search winner's
values are trained, so these keys must then keep their defaults. The pipeline always trains the
search winner, so :func:`compose_pipeline` refuses them too, at parse time rather than in every
train job. ``train.batch_size`` applies to the search trials as well as to the final training,
so that the winner is trained the way it was selected. ``report.fig2_eps``/``fig3_eps`` must be
radii of ``certify.eps`` (another would draw an empty figure); a figure whose data set or cost
is outside the grid is left out of the report on purpose (a reduced grid), so that is allowed.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from nnassure.config_errors import fail, from_hydra, from_interpolation, from_override, from_validation, invalid
from nnassure.ensemble.backends import BACKENDS
from nnassure.ensemble.benchmarks import parse_benchmarks
from nnassure.errors import ConfigError
from nnassure.kri.kinds import FAMILIES as KRI_FAMILIES
from nnassure.kri.kinds import check_params, kind
from nnassure.model_id import ACTIVATION_NAMES, IMAGE_DATASETS, MODEL_ID, MODEL_ID_ALLOWED, ModelId, match_model_id
from nnassure.model_id import parse_model_id as parse_model_id

__all__ = [
    "ACTIVATION_NAMES", "DATASETS", "IMAGE_DATASETS", "MAX_DEPTH", "METHODS", "MODEL_ID", "NORMS",
    "SEARCHED_KEYS", "SIGN_CLASS_NAMES", "TRACKING_MODES", "Config", "ConfigError", "ModelId",
    "check_searched_keys", "compose", "compose_many", "compose_pipeline", "conf_dir", "parse_model_id",
    "register_configs", "validate",
]

DATASETS = ("a", "b", "c")
NORMS = ("linf", "l2")
METHODS = ("ibp", "crown", "alpha-crown")
TRACKING_MODES = ("offline", "disabled", "online")
BOUNDS = ("interval", "lirpa")
MAX_DEPTH = 4
SIGN_CLASS_NAMES = ("give_way", "priority_road", "stop", "no_entry", "speed_limit", "ahead_only")


# --- value types: what a key allows, said once -------------------------------------------------


def rule(allowed: str, ok: Callable[[Any], bool]) -> AfterValidator:
    """A constraint on a typed value; ``allowed`` is the "expected ..." of its error message."""

    def check(value: Any) -> Any:
        if not ok(value):
            raise invalid(allowed, value)
        return value

    return AfterValidator(check)


def one_of(choices: Sequence[str]) -> AfterValidator:
    return rule("one of " + ", ".join(choices), lambda v: v in choices)


def one_of_ints(choices: Sequence[int]) -> AfterValidator:
    return rule("one of " + ", ".join(map(str, choices)), lambda v: v in choices)


def at_least(minimum: int) -> AfterValidator:
    return rule(f"an integer >= {minimum}", lambda v: v >= minimum)


def non_empty(what: str = "a non-empty list") -> AfterValidator:
    return rule(what, lambda v: len(v) > 0)


def _number_as_text(value: Any) -> Any:
    # Hydra parses `grid.name=2024` as an int; a name or path given as a number is still text.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


Text = Annotated[str, BeforeValidator(_number_as_text)]
PositiveFloat = Annotated[float, rule("a finite number > 0", lambda v: math.isfinite(v) and v > 0)]
NonNegativeFloat = Annotated[float, rule("a finite number >= 0", lambda v: math.isfinite(v) and v >= 0)]
PositiveInt = Annotated[int, at_least(1)]
NonNegativeInt = Annotated[int, at_least(0)]
Depth = Annotated[int, rule(f"an integer in 1..{MAX_DEPTH}", lambda v: 1 <= v <= MAX_DEPTH)]
Dropout = Annotated[float, rule("a number in [0, 1)", lambda v: 0.0 <= v < 1.0)]
Accuracy = Annotated[float, rule("an accuracy in [0, 1]", lambda v: 0.0 <= v <= 1.0)]
Confidence = Annotated[float, rule("a confidence in (0, 1)", lambda v: 0.0 < v < 1.0)]
Dataset = Annotated[str, one_of(DATASETS)]
Method = Annotated[str, one_of(METHODS)]
ModelName = Annotated[str, rule(MODEL_ID_ALLOWED, lambda v: match_model_id(v) is not None)]
SignClass = Annotated[str, one_of(SIGN_CLASS_NAMES)]
Norm = Annotated[str, one_of(NORMS)]
Radii = Annotated[list[PositiveFloat], non_empty("a non-empty list of radii > 0")]


def _check_backend(value: str) -> str:
    if value not in BACKENDS:
        raise invalid("one of " + ", ".join(BACKENDS), value)
    return value


Backend = Annotated[str, AfterValidator(_check_backend)]


def _close_to_any(value: float, values: Sequence[float]) -> bool:
    # The report selects rows with np.isclose(eps, value); the same tolerance here.
    return any(abs(value - v) <= 1e-8 + 1e-5 * abs(v) for v in values)


# --- the schema --------------------------------------------------------------------------------


class Section(BaseModel):
    # strict: no silent conversions (true -> 1, 2.5 -> 2, "1" -> 1); ints are still accepted as
    # floats. forbid: a misspelt key is an error, not a silently ignored extra.
    model_config = ConfigDict(strict=True, extra="forbid")


class GridConfig(Section):
    """The experiment grid the Snakefile expands: which data sets and costs are run."""

    name: Text = "quick"
    datasets: Annotated[list[Dataset], non_empty("a non-empty list of " + ", ".join(DATASETS))] = \
        Field(default_factory=lambda: ["a", "b", "c"])
    costs: Annotated[list[PositiveFloat], non_empty("a non-empty list of costs > 0")] = \
        Field(default_factory=lambda: [1.0, 10.0, 50.0])


class DatasetConfig(Section):
    """A 2-D data set of the verified-classification paper (Sec. 1.1), generated offline."""

    name: Dataset = "a"
    n_samples: Annotated[int, at_least(20)] = 1000
    minority_fraction: Annotated[float, rule("a number in (0, 0.5]", lambda v: 0.0 < v <= 0.5)] = 1 / 3
    margin: NonNegativeFloat = 0.004
    val_fraction: Annotated[float, rule("a number in (0, 1)", lambda v: 0.0 < v < 1.0)] = 0.2
    seed: int = 0


class ModelConfig(Section):
    """MLP of Sec. 3.1: ``depth`` hidden ReLU layers of ``width`` units and one logit. Used by a
    hand-run of the train stage without ``train.hparams_file`` (see :data:`SEARCHED_KEYS`)."""

    depth: Depth = 2
    width: PositiveInt = 64
    dropout: Dropout = 0.0


class TrainConfig(Section):
    """Adam on the double-weighted BCE of Eqs. (1)-(2) with early stopping (Sec. 4.2).

    ``cost_fn``/``cost_fp`` also weight the search's trials and select its winner;
    ``batch_size`` is the batch size of the search trials and of the final training;
    ``lr``/``weight_decay`` apply only without ``hparams_file`` (see :data:`SEARCHED_KEYS`).
    """

    cost_fn: PositiveFloat = 1.0
    cost_fp: PositiveFloat = 1.0
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.0
    batch_size: PositiveInt = 32
    max_epochs: PositiveInt = 200
    patience: PositiveInt = 15
    seed: int = 0
    # Architecture-search result (JSON) whose winner is trained; None: use model.* and train.*.
    hparams_file: Text | None = None


class SearchConfig(Section):
    """Random architecture search of Sec. 4.2, selected by validation cost per sample."""

    n_trials: PositiveInt = 8
    max_epochs: PositiveInt = 60
    patience: PositiveInt = 8
    depths: Annotated[list[Depth], non_empty()] = Field(default_factory=lambda: [1, 2, 3, 4])
    widths: Annotated[list[PositiveInt], non_empty()] = Field(default_factory=lambda: [32, 64, 128, 256])
    lrs: Annotated[list[PositiveFloat], non_empty()] = Field(default_factory=lambda: [3e-4, 1e-3, 2e-3])
    weight_decays: Annotated[list[NonNegativeFloat], non_empty()] = Field(default_factory=lambda: [0.0, 1e-4])
    dropouts: Annotated[list[Dropout], non_empty()] = Field(default_factory=lambda: [0.0, 0.1])
    seed: int = 0
    trial: NonNegativeInt | None = None  # the trial one search_trial job runs (a Snakemake wildcard)


class CertifyConfig(Section):
    """LiRPA verification of Sec. 3.2 and per-sample certified radii."""

    method: Method = "crown"
    methods: Annotated[list[Method], non_empty()] = Field(default_factory=lambda: ["crown"])
    norms: Annotated[list[Annotated[str, one_of(NORMS)]], non_empty("a non-empty list of " + ", ".join(NORMS))] = \
        Field(default_factory=lambda: ["linf", "l2"])
    eps: Annotated[list[PositiveFloat], non_empty("a non-empty list of radii > 0")] = \
        Field(default_factory=lambda: [0.001, 0.01, 0.025])
    clip_to_domain: bool = False
    batch_size: PositiveInt = 4096
    alpha_batch_size: PositiveInt = 20
    alpha_iterations: PositiveInt = 20
    # The largest certified radius per sample (a bisection on [0, radius_max]); no table or figure
    # of the paper reads it (it is in certify/<d>_c<cost>.parquet), so a quick run may skip it.
    radius: bool = True
    radius_max: PositiveFloat = 0.5
    radius_steps: PositiveInt = 16

    @model_validator(mode="after")
    def _method_is_computed(self) -> CertifyConfig:
        if self.method not in self.methods:
            fail("certify.method", self.method, "one of certify.methods " + str(self.methods))
        return self


class ImagesConfig(Section):
    """Image data sets (sklearn's 8x8 digits; traffic signs rendered with OpenCV) and the training
    of multi-class MLPs on them (Adam, cross-entropy, early stopping on the validation split)."""

    digits_size: Annotated[int, at_least(2)] = 8
    signs_size: Annotated[int, at_least(6)] = 16
    signs_per_class: Annotated[int, at_least(5)] = 400
    sign_classes: Annotated[list[SignClass], rule("at least 2 of " + ", ".join(SIGN_CLASS_NAMES),
                                                  lambda v: len(v) >= 2)] = \
        Field(default_factory=lambda: list(SIGN_CLASS_NAMES))
    split: Annotated[list[float], rule("three positive fractions (train, val, test) summing to 1",
                                       lambda v: len(v) == 3 and all(f > 0 for f in v)
                                       and abs(sum(v) - 1) <= 1e-9)] = \
        Field(default_factory=lambda: [0.7, 0.1, 0.2])
    seed: int = 0
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.0
    batch_size: PositiveInt = 64
    max_epochs: PositiveInt = 100
    patience: PositiveInt = 10


class ProvenConfig(Section):
    """PROVEN (Weng et al.): largest eps certified in the worst case and at confidence gamma.

    Models are named ``<dataset>_<activation>_<depth>x<width>`` (e.g. ``digits_relu_2x20``).
    """

    models: Annotated[list[ModelName], non_empty("a non-empty list of model names")] = \
        Field(default_factory=lambda: ["digits_relu_2x20", "digits_tanh_2x20"])
    # Models also certified under Gaussian noise (Fig. 1) and resampled for Table 4.
    gaussian_models: list[str] = Field(default_factory=lambda: ["digits_relu_2x20"])
    table4_models: list[str] = Field(default_factory=lambda: ["digits_relu_2x20"])
    model: ModelName | None = None  # the model one stage run works on (a Snakemake wildcard)
    gammas: Annotated[list[Confidence], non_empty("a non-empty list of confidences in (0, 1)")] = \
        Field(default_factory=lambda: [0.9999, 0.75, 0.5, 0.25, 0.05])
    samples: PositiveInt = 100  # correctly classified test points per model (Gaussian certificates: these only)
    table4_samples: PositiveInt = 300  # the pool Table 4's random trials draw from (table4_models only)
    table2_samples: PositiveInt = 10  # Table 2 averages over 10 images
    table4_trials: PositiveInt = 100
    table4_sizes: list[PositiveInt] = Field(default_factory=lambda: [10, 50, 100])
    eps_min: PositiveFloat = 1e-4
    eps_max: PositiveFloat = 0.5
    bisection_tolerance: PositiveFloat = 5e-4  # relative resolution of the bisection on eps
    # PROVEN's bisection first tries guess_factor x the worst-case eps
    guess_factor: Annotated[float, rule("a number > 1", lambda v: v > 1.0)] = 2.0
    batch_size: PositiveInt = 256
    sigma_ratio: PositiveFloat = 3.0  # Gaussian std = eps / sigma_ratio (3-sigma rule, Remark 3.4)
    correlation_length: PositiveFloat = 1.0  # pixels, for correlated Gaussian noise
    channel_correlation: Annotated[float, rule("a number in [0, 1]", lambda v: 0.0 <= v <= 1.0)] = 0.5
    seed: int = 0

    @model_validator(mode="after")
    def _consistent(self) -> ProvenConfig:
        names = [parse_model_id(m).name for m in self.models]
        for key in ("gaussian_models", "table4_models"):
            for i, name in enumerate(getattr(self, key)):
                if name not in names:
                    fail(f"proven.{key}[{i}]", name, "one of proven.models " + str(names))
        if self.table2_samples > self.samples:
            fail("proven.table2_samples", self.table2_samples, f"at most proven.samples ({self.samples})")
        if not self.eps_max > self.eps_min:
            fail("proven.eps_max", self.eps_max, f"a number > proven.eps_min ({self.eps_min})")
        return self


class EnsembleConfig(Section):
    """Robustness of classifier ensembles against randomized attacks (Gross et al.): the
    benchmark rows (conf/ensemble/benchmarks.yaml, the paper's appendix) and how they are solved."""

    benchmarks: list[Any] = Field(default_factory=list)  # the 38 rows, checked by nnassure.ensemble.benchmarks
    rows: list[int] = Field(default_factory=list)  # benchmark ids to run; empty = every row
    row: int | None = None  # the row one stage run works on (a Snakemake wildcard)
    instance: str | None = None  # the ensemble of one training run, e.g. mnist_0_1-8x8 (a wildcard)
    classifier: PositiveInt | None = None  # which of its classifiers (1-based; a wildcard)
    backends: Annotated[list[Backend], non_empty("a non-empty list of MILP backends")] = \
        Field(default_factory=lambda: ["highs", "gurobi"])  # every row's MILP on each
    table_backend: Backend = "highs"  # MaxMILP, baselines and the tables' MILP column
    smt: bool = True  # Z3 on every row (Tables 1 and 4)
    time_limit: PositiveFloat = 7200.0  # seconds per solver call (the paper's 7200 s)
    smt_time_limit: PositiveFloat = 7200.0
    bounds: Annotated[str, one_of(BOUNDS)] = "lirpa"  # big-M constants: interval | lirpa (CROWN over the L1 ball)
    margin: NonNegativeFloat = 1e-4  # attacks must misclassify by this logit margin to survive float64
    heuristic: bool = True  # primal heuristic (gradient search under the L1 ball) before every MILP
    heuristic_starts: PositiveInt = 8  # per point and target set of classifiers
    heuristic_steps: PositiveInt = 40
    precheck: bool = True  # CROWN on every (classifier, point) pair: a bound on Val below alpha proves robustness
    # the classifiers (the paper gives no architecture; small, so that the MILPs stay solvable)
    depth: Depth = 2
    width: PositiveInt = 10
    conv_filters: PositiveInt = 2
    conv_kernel: PositiveInt = 3
    pool: PositiveInt = 2
    conv_hidden: PositiveInt = 8
    max_epochs: PositiveInt = 100
    signs_per_class: PositiveInt = 300
    min_accuracy_digits: Accuracy = 0.9
    min_accuracy_signs: Accuracy = 0.8
    training_attempts: PositiveInt = 5  # seeds tried per classifier to reach the accuracy bar
    seed: int = 0

    @model_validator(mode="after")
    def _rows_exist(self) -> EnsembleConfig:
        rows = parse_benchmarks(self.benchmarks, "ensemble.benchmarks")
        ids = [r.id for r in rows]
        for i, row in enumerate(self.rows):
            if row not in ids:
                fail(f"ensemble.rows[{i}]", row, f"a benchmark id of ensemble.benchmarks ({min(ids)}..{max(ids)})")
        if self.row is not None and self.row not in ids:
            fail("ensemble.row", self.row, "a benchmark id of ensemble.benchmarks")
        instances = sorted({r.instance for r in rows})
        if self.instance is not None and self.instance not in instances:
            fail("ensemble.instance", self.instance, "one of " + ", ".join(instances))
        return self


VIDEO_MOTIONS = ("left", "right", "up", "down", "zoom_in", "zoom_out")
VIDEO_NORMS = ("l1", "l2", "linf")
VIDEO_GRADIENTS = ("autograd", "finite-difference")


class FarnebackConfig(Section):
    """``cv2.calcOpticalFlowFarneback``'s parameters. The common ``0.5, 3, 15, 3, 5, 1.2`` are
    tuned for frames of hundreds of pixels: a 15-pixel window averages half of a 32-pixel frame.
    At 32x32 with 1-2 pixels of motion per frame a 7-pixel window (about one sprite width) keeps
    the flow local. OpenCV builds no pyramid level for frames this small (measured: levels 1-3
    give identical flow at 32, 48 and 64 pixels), so one level is configured and the flow is
    estimated at full resolution, which covers 1-2 pixels of motion; tests/test_video_data.py
    checks the flow of pure translations against the renderer's shift (worst 0.23 px)."""

    pyr_scale: Annotated[float, rule("a number in (0, 1)", lambda v: 0.0 < v < 1.0)] = 0.5
    levels: PositiveInt = 1
    winsize: Annotated[int, at_least(3)] = 7
    iterations: PositiveInt = 3
    poly_n: Annotated[int, one_of_ints((5, 7))] = 5
    poly_sigma: PositiveFloat = 1.1


class VideoConfig(Section):
    """Maximum safe radius of video clips w.r.t. their optical flow (Wu & Kwiatkowska): synthetic
    clips whose class is the motion, Farneback flow, a CNN + LSTM on the flow sequence, and the
    upper (gradient search) and lower (admissible A*, CROWN) bounds of the MSR per test clip."""

    # clips (video_data)
    motions: Annotated[list[Annotated[str, one_of(VIDEO_MOTIONS)]],
                       rule("at least 4 distinct motions of " + ", ".join(VIDEO_MOTIONS),
                            lambda v: len(v) >= 4 and len(set(v)) == len(v))] = \
        Field(default_factory=lambda: list(VIDEO_MOTIONS))
    clips_per_class: Annotated[int, at_least(5)] = 80
    frames: Annotated[int, at_least(3)] = 8
    size: Annotated[int, at_least(16)] = 32
    speed: Annotated[list[float], rule("[min, max] pixels per frame with 0 < min <= max",
                                       lambda v: len(v) == 2 and 0 < v[0] <= v[1])] = \
        Field(default_factory=lambda: [1.0, 2.0])
    zoom: Annotated[list[float], rule("[min, max] relative scale change per frame with 0 < min <= max",
                                      lambda v: len(v) == 2 and 0 < v[0] <= v[1])] = \
        Field(default_factory=lambda: [0.04, 0.08])
    noise: NonNegativeFloat = 0.03  # std of the per-frame pixel noise
    split: Annotated[list[float], rule("three positive fractions (train, val, test) summing to 1",
                                       lambda v: len(v) == 3 and all(f > 0 for f in v)
                                       and abs(sum(v) - 1) <= 1e-9)] = \
        Field(default_factory=lambda: [0.6, 0.2, 0.2])
    seed: int = 0
    # optical flow
    farneback: FarnebackConfig = Field(default_factory=FarnebackConfig)
    flow_pool: PositiveInt = 4  # average pooling of the flow to (size / flow_pool)^2 cells; 1 = none
    # model (video_train): per-step CNN, then an LSTM over the steps
    conv_channels: PositiveInt = 8
    features: PositiveInt = 32
    hidden: PositiveInt = 32
    lr: PositiveFloat = 3e-3
    weight_decay: NonNegativeFloat = 0.0
    batch_size: PositiveInt = 32
    max_epochs: PositiveInt = 60
    patience: PositiveInt = 8
    # bounds of the MSR, one job per analysed test clip (video_bounds)
    clips: PositiveInt = 6  # correctly classified test clips analysed (a seeded choice)
    clip: NonNegativeInt | None = None  # the clip one stage run works on (a Snakemake wildcard)
    norm: Annotated[str, one_of(VIDEO_NORMS)] = "l2"  # of the upper bound and A*
    upper_iterations: PositiveInt = 20
    upper_gradient: Annotated[str, one_of(VIDEO_GRADIENTS)] = "autograd"
    upper_step: PositiveFloat = 0.05  # relative step of the shrinking search (Eq. 8's epsilon)
    astar_iterations: PositiveInt = 1000
    astar_seconds: PositiveFloat = 30.0
    astar_batch: PositiveInt = 256  # grid points evaluated per forward pass
    # Player II's dimensions (Def. 7): the A* grid spans this many flow dimensions of each manipulated
    # flow, the most salient at the clip's flow (largest |d margin / d p|); its bound covers that subspace.
    astar_dims_per_flow: PositiveInt = 2
    tau_fraction: Annotated[float, rule("a number in (0, 1]", lambda v: 0.0 < v <= 1.0)] = 1.0  # of Eq. (5)'s tau
    lirpa_method: Annotated[str, one_of(("ibp", "crown"))] = "crown"
    lirpa_norms: Annotated[list[Annotated[str, one_of(VIDEO_NORMS)]], non_empty("a non-empty list of norms")] = \
        Field(default_factory=lambda: ["l2", "linf"])
    lirpa_tolerance: PositiveFloat = 0.01  # relative resolution of the bisection on eps
    manipulated_flows: Annotated[list[PositiveInt], non_empty("a non-empty list of flow counts")] = \
        Field(default_factory=lambda: [1, 2, 4, 7])  # Fig. 10: lower bounds with k manipulated flows
    brightness: Annotated[list[PositiveFloat], non_empty("a non-empty list of brightness changes")] = \
        Field(default_factory=lambda: [0.02, 0.05, 0.1, 0.2])  # Fig. 8: added to every pixel of a frame
    margin: NonNegativeFloat = 1e-6  # an adversarial flow must win by this logit margin in float64

    @model_validator(mode="after")
    def _consistent(self) -> VideoConfig:
        if self.size % self.flow_pool:
            fail("video.flow_pool", self.flow_pool, f"a divisor of video.size ({self.size})")
        for i, k in enumerate(self.manipulated_flows):
            if k > self.frames - 1:
                fail(f"video.manipulated_flows[{i}]", k, f"at most video.frames - 1 ({self.frames - 1}) flows")
        return self


KRI_LOSSES = ("class_change", "misclassification", "severity")
KRI_CERTIFY_METHODS = ("ibp", "crown")
KriName = Annotated[str, rule("a name of letters, digits and _ starting with a letter",
                              lambda v: re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", v) is not None)]
Fraction = Annotated[float, rule("a number in [0, 1]", lambda v: 0.0 <= v <= 1.0)]


class KriDataConfig(Section):
    """The traffic-sign images of the KRI family (nnassure.data.signs, the CIFAR stand-in), RGB."""

    image_size: Annotated[int, at_least(16)] = 32
    images_per_class: Annotated[int, at_least(10)] = 300
    split: Annotated[list[float], rule("three positive fractions (train, val, test) summing to 1",
                                       lambda v: len(v) == 3 and all(f > 0 for f in v)
                                       and abs(sum(v) - 1) <= 1e-9)] = \
        Field(default_factory=lambda: [0.7, 0.1, 0.2])
    seed: int = 0


class KriTrainConfig(Section):
    """What every model of the zoo shares: Adam, mini-batches, early stopping on validation accuracy."""

    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.0
    batch_size: PositiveInt = 64
    max_epochs: PositiveInt = 30
    patience: PositiveInt = 5
    seed: int = 0


class KriCapacityConfig(Section):
    """A CNN size: 3x3 convolutions with these channels (the first at stride 1, the others at
    stride 2), then a dense ReLU layer of ``hidden`` units and the logits."""

    channels: Annotated[list[PositiveInt], non_empty("a non-empty list of channel counts")]
    hidden: PositiveInt


class KriAdversarialTrainingConfig(Section):
    """Adversarial training: each batch is attacked (ART, white box on the current weights) and the
    loss is (1 - weight) * clean + weight * adversarial (Goodfellow et al.: FGSM, weight 0.5;
    Madry et al.: PGD, weight 1)."""

    attack: Annotated[str, one_of(("fgsm", "pgd"))]
    eps: Annotated[float, rule("a budget in (0, 1]", lambda v: 0.0 < v <= 1.0)] = 0.03
    step: PositiveFloat = 0.0075  # PGD step size
    iterations: PositiveInt = 7  # PGD steps
    weight: Fraction = 0.5


class KriVariantConfig(Section):
    """One model of the zoo (a row of Table 1): the capacity and the robustifying measures it is
    trained with; ``null`` leaves a measure out."""

    description: Text  # what differs, in words (Table 1's columns)
    capacity: KriName = "base"
    standard_augment: bool = False  # random shifts, scales and rotations (albumentations Affine)
    noise_sigma: PositiveFloat | None = None  # Gaussian-noise augmentation
    gce_alpha: PositiveFloat | None = None  # guided complement entropy loss with this guiding exponent
    parseval_beta: PositiveFloat | None = None  # Parseval retraction step after each update
    distillation_temperature: Annotated[float, rule("a temperature > 1", lambda v: v > 1)] | None = None
    adversarial: KriAdversarialTrainingConfig | None = None


class KriScenarioConfig(Section):
    """A scenario component: a named distribution of perturbations (nnassure.kri.kinds)."""

    family: Annotated[str, one_of(KRI_FAMILIES)]
    kind: Text
    params: dict[str, Any] = Field(default_factory=dict)
    draws: PositiveInt | None = None  # perturbations per sample; null: kri.draws (adversarial: 1)


class KriSeverityConfig(Section):
    """The severity loss: cost[true][predicted] of each misreading (0 for a correct reading, ``default``
    for a pair not listed)."""

    default: NonNegativeFloat = 1.0
    costs: dict[SignClass, dict[SignClass, NonNegativeFloat]] = Field(default_factory=dict)


class KriCertifyConfig(Section):
    """PROVEN's certified upper bound on the class-change probability for the certifiable scenarios
    (Gaussian and uniform noise), on the first ``samples`` perturbed test images."""

    # which scenarios to certify; null: every certifiable one. CROWN costs about a second per image,
    # and on noise far beyond what CROWN proves on the box (Gaussian sigma 0.08 on 32x32x3 images)
    # every bound is 1, so an experiment may certify only the components where a bound says something.
    scenarios: list[KriName] | None = None
    samples: PositiveInt = 50
    method: Annotated[str, one_of(KRI_CERTIFY_METHODS)] = "crown"
    # Gaussian noise is unbounded: the certificate holds inside a box of these many sigmas plus the
    # mass outside it; the smallest bound over these boxes is reported.
    box_sigmas: Annotated[list[PositiveFloat], non_empty("a non-empty list of box half-widths in sigmas")] = \
        Field(default_factory=lambda: [3.0, 4.0, 5.0])
    batch_size: PositiveInt = 1
    # the certificate's own Monte Carlo per image (fresh draws through the scenario): the risk tensor's
    # few draws rarely see a class change at faint noise, so its interval checks no bound
    mc_draws: PositiveInt = 2000


class KriReportConfig(Section):
    """Thresholds of the findings the report checks (paper-targets: augmentation lowers random and
    adversarial risk by similar amounts; a robustifying loss lowers adversarial risk only)."""

    similar_ratio: Annotated[float, rule("a ratio >= 1", lambda v: v >= 1)] = 3.0  # larger / smaller drop
    unchanged: NonNegativeFloat = 0.05  # a family's risk "stays about the same": |change| below this


class KriConfig(Section):
    """Key risk indicators (Schwerdtner et al.): a zoo of CNNs on traffic signs, scenario components
    of four noise families, the risk tensor of their losses (Sec. 4) and its aggregation (Eq. 2)."""

    data: KriDataConfig = Field(default_factory=KriDataConfig)
    train: KriTrainConfig = Field(default_factory=KriTrainConfig)
    capacities: dict[KriName, KriCapacityConfig] = Field(default_factory=dict)
    variants: dict[KriName, KriVariantConfig] = Field(default_factory=dict)
    models: Annotated[list[KriName], non_empty("a non-empty list of variant names")] = \
        Field(default_factory=lambda: ["NNet"])
    scenarios: dict[KriName, KriScenarioConfig] = Field(default_factory=dict)
    samples: PositiveInt = 200  # test images perturbed by every scenario
    draws: PositiveInt = 10  # perturbations per sample of a scenario that does not set its own
    seed: int = 0
    losses: Annotated[list[Annotated[str, one_of(KRI_LOSSES)]],
                      rule("distinct losses of " + ", ".join(KRI_LOSSES),
                           lambda v: len(v) > 0 and len(set(v)) == len(v))] = \
        Field(default_factory=lambda: list(KRI_LOSSES))
    severity: KriSeverityConfig = Field(default_factory=KriSeverityConfig)
    # deployment scenarios: name -> weights alpha_i over scenario components (Eq. 2)
    deployments: dict[KriName, dict[KriName, NonNegativeFloat]] = Field(default_factory=dict)
    confidence: Confidence = 0.95
    bootstrap: Annotated[int, at_least(100)] = 1000  # resamples of the test images per interval
    certify: KriCertifyConfig = Field(default_factory=KriCertifyConfig)
    report: KriReportConfig = Field(default_factory=KriReportConfig)
    # the model and scenario one stage run works on (Snakemake wildcards)
    variant: KriName | None = None
    scenario: KriName | None = None

    @model_validator(mode="after")
    def _consistent(self) -> KriConfig:
        for name, variant in self.variants.items():
            if variant.gce_alpha is not None and variant.distillation_temperature is not None:
                fail(f"kri.variants.{name}.gce_alpha", variant.gce_alpha, "null with distillation_temperature set "
                     "(distillation trains on soft labels with cross-entropy)")
            if variant.capacity not in self.capacities:
                fail(f"kri.variants.{name}.capacity", variant.capacity,
                     f"one of kri.capacities ({', '.join(self.capacities) or 'none defined'})")
        for i, name in enumerate(self.models):
            if name not in self.variants:
                fail(f"kri.models[{i}]", name, f"one of kri.variants ({', '.join(self.variants) or 'none defined'})")
        if len(set(self.models)) != len(self.models):
            fail("kri.models", self.models, "each variant at most once")
        if not self.scenarios:
            fail("kri.scenarios", {}, "at least one scenario")
        for name, scenario in self.scenarios.items():
            key = f"kri.scenarios.{name}"
            spec = kind(scenario.kind, f"{key}.kind")
            if spec.family != scenario.family:
                fail(f"{key}.family", scenario.family, f"{spec.family!r}, the family of kind {scenario.kind!r}")
            scenario.params = check_params(scenario.kind, scenario.params, key)
            if spec.adversarial and scenario.draws not in (None, 1):
                fail(f"{key}.draws", scenario.draws, "null or 1 (an attack makes one perturbation per sample)")
        for key, name, known in (("kri.variant", self.variant, self.variants),
                                 ("kri.scenario", self.scenario, self.scenarios)):
            if name is not None and name not in known:
                fail(key, name, f"one of {key}s ({', '.join(known)})")
        for i, name in enumerate(self.certify.scenarios or []):
            if name not in self.scenarios or not kind(self.scenarios[name].kind).certifiable:
                certifiable = [n for n, sc in self.scenarios.items() if kind(sc.kind).certifiable]
                fail(f"kri.certify.scenarios[{i}]", name, "a certifiable scenario of kri.scenarios "
                     f"({', '.join(certifiable) or 'none configured'})")
        if self.certify.samples > self.samples:
            fail("kri.certify.samples", self.certify.samples, f"at most kri.samples ({self.samples})")
        for name, weights in self.deployments.items():
            key = f"kri.deployments.{name}"
            if not weights:
                fail(key, weights, "weights over at least one scenario")
            for scenario in weights:
                if scenario not in self.scenarios:
                    fail(f"{key}.{scenario}", weights[scenario],
                         f"a weight of a scenario of kri.scenarios ({', '.join(self.scenarios)})")
            total = sum(weights.values())
            if abs(total - 1.0) > 1e-9:
                fail(key, weights, f"non-negative weights summing to 1 (they sum to {total:.12g})")
        return self


class AssessCertifyConfig(Section):
    """Verified accuracy and certified radii of the assessed model on the user's data (Sec. 3.2's
    LiRPA verification, multi-class: every other logit's margin bounded from below)."""

    method: Method = "crown"
    methods: Annotated[list[Method], non_empty()] = Field(default_factory=lambda: ["ibp", "crown"])
    # Radii are in the model's input units, which only the user knows: per norm, a list of eps.
    eps: dict[Norm, Radii] = Field(default_factory=lambda: {"linf": [0.001, 0.005, 0.01], "l2": [0.01, 0.05, 0.1]})
    radius: bool = True
    radius_max: dict[Norm, PositiveFloat] = Field(default_factory=lambda: {"linf": 0.1, "l2": 1.0})
    radius_steps: PositiveInt = 8
    batch_size: PositiveInt = 256

    @model_validator(mode="after")
    def _consistent(self) -> AssessCertifyConfig:
        if self.method not in self.methods:
            fail("assess.certify.method", self.method, "one of assess.certify.methods " + str(self.methods))
        if not self.eps:
            fail("assess.certify.eps", self.eps, "at least one norm (linf, l2) with its radii")
        for norm in self.eps:
            if norm not in self.radius_max:
                fail("assess.certify.radius_max", self.radius_max, f"a largest radius for every norm of "
                     f"assess.certify.eps ({norm} is missing)")
        return self


class AssessProvenConfig(Section):
    """PROVEN's probabilistic certificates (Weng et al., Case (i): bounded noise, Hoeffding) for the
    first ``samples`` correctly classified points of the user's data."""

    samples: PositiveInt = 10
    gammas: Annotated[list[Confidence], non_empty()] = Field(default_factory=lambda: [0.99, 0.5])
    eps_min: PositiveFloat = 1e-4
    eps_max: PositiveFloat = 1.0
    bisection_tolerance: PositiveFloat = 5e-3
    guess_factor: Annotated[float, rule("a number > 1", lambda v: v > 1)] = 2.0
    batch_size: PositiveInt = 64


class AssessVnnlibConfig(Section):
    """How each VNN-LIB property is decided (nnassure.assess.decide): falsification, IBP, CROWN,
    alpha-CROWN, then the exact MILP on ReLU networks, within ``time_limit`` seconds per instance."""

    methods: Annotated[list[Annotated[str, one_of(("falsify", "ibp", "crown", "alpha-crown", "milp"))]],
                       non_empty()] = Field(default_factory=lambda: ["falsify", "ibp", "crown", "alpha-crown", "milp"])
    time_limit: PositiveFloat = 60.0
    backend: Annotated[str, one_of(BACKENDS)] = "highs"
    samples: NonNegativeInt = 256
    starts: PositiveInt = 4
    pgd_steps: NonNegativeInt = 50
    seed: NonNegativeInt = 0


class AssessKriConfig(Section):
    """The KRI scenario components (Schwerdtner et al., Sec. 5: corruptions and attacks of
    ``kri.scenarios``) on the assessed model, for RGB image inputs in [0, 1]: per component, how
    often a perturbed image changes the model's class and is misclassified."""

    scenarios: list[Text] | None = None  # null: every component of kri.scenarios
    samples: PositiveInt = 50


class AssessConfig(Section):
    """A model the pipeline did not train (an ONNX file, or a native ``.safetensors`` + ``.json``),
    the user's data (``.npz`` with x/y, or Parquet with a label column) and VNN-LIB properties
    (files, or directories of ``*.vnnlib``). With ``model`` set, the run assesses that model and
    only that: its dependability report is the run's target."""

    model: Text | None = None
    data: Text | None = None
    properties: list[Text] = Field(default_factory=list)
    name: Text | None = None  # the model's name in results/<experiment>/assess/; its file name's stem by default
    # The converted model's logits must be within tolerance * (1 + max |logit|) of onnxruntime's.
    tolerance: PositiveFloat = 1e-4
    # The input domain [lo, hi] every value of the data must lie in, and that Linf balls are
    # clipped to (null: no domain, balls are not clipped).
    domain: list[float] | None = None
    # costs[label][prediction] of a classification (null: 1 for every error, so cost = error rate).
    costs: list[list[NonNegativeFloat]] | None = None
    certify: AssessCertifyConfig = Field(default_factory=AssessCertifyConfig)
    proven: AssessProvenConfig = Field(default_factory=AssessProvenConfig)
    vnnlib: AssessVnnlibConfig = Field(default_factory=AssessVnnlibConfig)
    kri: AssessKriConfig = Field(default_factory=AssessKriConfig)
    property: Text | None = None  # set per vnnlib job: the stem of the property it decides

    @model_validator(mode="after")
    def _complete(self) -> AssessConfig:
        if self.model is not None and self.data is None:
            fail("assess.data", None, "the data file (.npz or .parquet) the model is assessed on, with assess.model")
        if self.domain is not None and (len(self.domain) != 2 or not self.domain[0] < self.domain[1]):
            fail("assess.domain", self.domain, "[lo, hi] with lo < hi, or null")
        if self.costs is not None and (len(self.costs) < 2 or any(len(row) != len(self.costs) for row in self.costs)):
            fail("assess.costs", self.costs, "a square matrix costs[label][prediction] of at least 2 classes, or null")
        return self


class TrackingConfig(Section):
    """Weights & Biases: ``offline`` (default, files under results/), ``disabled`` or ``online``."""

    mode: Annotated[str, one_of(TRACKING_MODES)] = "offline"
    project: Text = "nnassure"
    entity: Text | None = None


class ReportConfig(Section):
    """What Figs. 2 and 3 of the report show. A figure whose data set (or, for Fig. 2, cost) is
    not in the grid is not drawn (see nnassure.report.outputs); its eps must be one that
    ``certify.eps`` certifies, or the figure would be empty."""

    fig2_dataset: Dataset = "a"
    fig2_cost: PositiveFloat = 1.0
    fig2_eps: PositiveFloat = 0.025
    fig3_dataset: Dataset = "b"
    fig3_eps: PositiveFloat = 0.01


class StageResources(Section):
    """What one job of a stage asks the scheduler for: ``threads`` (CPUs per task, also the torch
    and solver threads the job uses), ``mem_mb`` (memory in MB) and ``runtime`` (minutes of
    wall-clock time, SLURM's ``--time``). The local run schedules by the same numbers
    (``--resources mem_mb=...``)."""

    threads: PositiveInt = 1
    mem_mb: PositiveInt = 2000
    runtime: PositiveInt = 30


class SweepConfig(Section):
    """Where a job of a sweep point writes (set by the Snakefile, never by hand): the sweep's
    ``name``, the ``point`` and the stages the point runs itself (``own``); every other stage's
    artifacts are the experiment's own, shared by all points (nnassure.sweep). A job of the whole
    sweep (its summary) has a ``name`` and no ``point``."""

    name: Text | None = None
    point: Text | None = None
    own: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> SweepConfig:
        if self.point is not None and self.name is None:
            fail("sweep.name", None, "the sweep's name when sweep.point is set")
        return self


class Config(Section):
    grid: GridConfig = Field(default_factory=GridConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    certify: CertifyConfig = Field(default_factory=CertifyConfig)
    images: ImagesConfig = Field(default_factory=ImagesConfig)
    proven: ProvenConfig = Field(default_factory=ProvenConfig)
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig)
    video: VideoConfig = Field(default_factory=VideoConfig)
    kri: KriConfig = Field(default_factory=KriConfig)
    assess: AssessConfig = Field(default_factory=AssessConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    # stage name -> the resources of each of its jobs (conf/resources/default.yaml; an experiment
    # overrides the stages whose jobs it makes longer or larger)
    resources: dict[str, StageResources] = Field(default_factory=dict)
    sweep: SweepConfig = Field(default_factory=SweepConfig)
    results_dir: Text = "results"
    threads: PositiveInt = 1

    @model_validator(mode="after")
    def _across_sections(self) -> Config:
        from nnassure.stage_keys import STAGES

        for name in self.resources:
            if name not in STAGES:
                fail(f"resources.{name}", self.resources[name].model_dump(),
                     f"resources of a stage ({', '.join(sorted(STAGES))})")
        missing = [name for name in STAGES if name not in self.resources]
        if missing:
            fail(f"resources.{missing[0]}", None, "the threads, mem_mb and runtime of its jobs: every stage has an "
                 "entry (conf/resources/default.yaml)")
        for i, name in enumerate(self.sweep.own):
            if name not in STAGES:
                fail(f"sweep.own[{i}]", name, f"a stage ({', '.join(sorted(STAGES))})")
        if self.assess.kri.scenarios is not None:
            for i, name in enumerate(self.assess.kri.scenarios):
                if name not in self.kri.scenarios:
                    fail(f"assess.kri.scenarios[{i}]", name,
                         f"a component of kri.scenarios ({', '.join(self.kri.scenarios)})")
        for key in ("fig2_eps", "fig3_eps"):
            eps = getattr(self.report, key)
            if not _close_to_any(eps, self.certify.eps):
                fail(f"report.{key}", eps, f"one of certify.eps {self.certify.eps} (the radii that are certified)")
        if self.train.hparams_file is not None:
            check_searched_keys(self, "when train.hparams_file is set (the search winner's value is trained)")
        return self


# Keys the architecture search chooses per trial, with the search key each is drawn from. The
# train stage reads them only when it trains a fixed architecture (train.hparams_file null).
# "Not set" means "at the schema default", so conf/model/mlp.yaml and conf/train/default.yaml
# must hold these same defaults (tests/test_config.py composes them with train.hparams_file).
SEARCHED_KEYS = {
    "train.lr": "search.lrs",
    "train.weight_decay": "search.weight_decays",
    "model.depth": "search.depths",
    "model.width": "search.widths",
    "model.dropout": "search.dropouts",
}


def _default(key: str) -> Any:
    section, name = key.split(".")
    return Config.model_fields[section].annotation.model_fields[name].default  # type: ignore[union-attr]


def check_searched_keys(cfg: Config | DictConfig, setting: str) -> None:
    """Refuse a non-default value of a :data:`SEARCHED_KEYS` key in a ``setting`` where the
    search's choice is used instead, so that setting it cannot silently do nothing."""
    for key, searched in SEARCHED_KEYS.items():
        section, name = key.split(".")
        value, default = getattr(getattr(cfg, section), name), _default(key)
        if value != default:
            fail(key, value, f"its default {default!r} {setting}; the search chooses it from {searched}")


def _schema_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """Every key's default, as plain data (built without running the validators: the default
    ensemble has no benchmark rows, which the full check would refuse)."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        factory = info.default_factory
        if isinstance(factory, type) and issubclass(factory, BaseModel):
            out[name] = _schema_defaults(factory)
        else:
            out[name] = factory() if factory is not None else info.default  # type: ignore[call-arg]
    return out


def register_configs() -> None:
    """Store the defaults of every key as the ``schema`` entry of conf/config.yaml's defaults
    list: Hydra then knows every key (``foo=1`` is refused, ``report.fig2_eps=...`` can be set
    although no YAML file has a report section), and the types are left to :func:`validate`."""
    ConfigStore.instance().store(name="schema", node=_schema_defaults(Config))


def conf_dir() -> Path:
    """The ``conf/`` tree at the repository root (the package is installed in editable mode)."""
    return Path(__file__).resolve().parents[2] / "conf"


def validate(cfg: DictConfig | dict[str, Any]) -> Config:
    """Check every key and value of a composed config; raise :class:`ConfigError` naming the bad key."""
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, Config) from None


def _read_only(config: Config) -> DictConfig:
    cfg = OmegaConf.create(config.model_dump())
    OmegaConf.set_struct(cfg, True)
    OmegaConf.set_readonly(cfg, True)
    return cfg


@contextmanager
def _hydra() -> Iterator[None]:
    """Hydra initialized on conf/ for the composes inside (initializing costs about as much as a
    small compose, so several composes share one)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
            yield
    except (HydraException, OmegaConfBaseException) as exc:
        raise from_hydra(exc) from None
    finally:
        GlobalHydra.instance().clear()


def _compose_data(overrides: Sequence[str]) -> dict[str, Any]:
    """The composed config as plain data (inside :func:`_hydra`)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        cfg = hydra_compose(config_name="config", overrides=list(overrides))
        return OmegaConf.to_container(cfg, resolve=False)  # type: ignore[return-value]
    except (HydraException, OmegaConfBaseException) as exc:
        raise from_hydra(exc, Config) from None


# Composed configs of this process by (conf/ files' state, overrides). Hydra re-reads and
# re-merges every YAML file on each compose (a few tenths of a second, mostly the benchmark
# rows); the stages, tests and benchmarks compose the same overrides again and again. The
# key includes every conf/ file's size and modification time, so an edit is seen. The values
# are unresolved (interpolations kept), as Hydra has them before it applies key overrides.
_COMPOSED: dict[tuple[Any, ...], dict[str, Any]] = {}
_COMPOSED_MAX = 64


def _conf_state() -> tuple[Any, ...]:
    root = conf_dir()
    return (str(root), *sorted((str(p.relative_to(root)), p.stat().st_mtime_ns, p.stat().st_size)
                               for p in root.rglob("*.yaml")))


def _split_overrides(overrides: Sequence[str]) -> tuple[tuple[str, ...], list[Any]] | None:
    """The overrides that choose config groups (as given) and the parsed key overrides, or None
    when Hydra must see them all (a sweep, a package, a ``hydra`` key or an unparsable line).

    Hydra composes the defaults list from the group overrides alone and applies the key
    overrides afterwards, in order, to the struct-mode result
    (``ConfigLoaderImpl._apply_overrides_to_config``); :func:`_composed` does the same with a
    cached composition of the group overrides, so jobs that differ only in keys such as
    ``dataset=b train.cost_fn=10`` pay for one Hydra composition between them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    root = conf_dir()
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException:
        return None
    groups, keys = [], []
    for line, override in zip(overrides, parsed, strict=True):
        name = override.key_or_group
        if (override.is_sweep_override() or override.package is not None
                or re.match(r"hydra($|[./])", name) is not None):
            return None
        # Hydra's own test (defaults_list.Overrides): a group as written (``kri/scenarios``,
        # never ``kri.scenarios``), and a dict value is a key override even on a group's name.
        if (root / name).is_dir() and not isinstance(override.value(), dict):
            groups.append(line)
        else:
            keys.append(override)
    return tuple(groups), keys


def _apply_key_overrides(base: dict[str, Any], overrides: list[Any]) -> dict[str, Any]:
    """``base`` with Hydra's key overrides applied exactly as Hydra applies them (struct mode)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    cfg = OmegaConf.create(base)
    OmegaConf.set_struct(cfg, True)
    for override in overrides:  # one at a time, to name the one that fails
        try:
            ConfigLoaderImpl._apply_overrides_to_config([override], cfg)
        except (HydraException, OmegaConfBaseException):
            raise  # Hydra's own errors, which the whole compose reports in its words
        except ValueError as exc:  # Hydra lets through e.g. int("x") of ``certify.eps.x=0.5``
            raise from_override(override.input_line, exc) from None
    return OmegaConf.to_container(cfg, resolve=False)  # type: ignore[return-value]


def _composed(override_lists: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """The composed data of each list of overrides (fresh copies, interpolations resolved).

    Hydra composes the group overrides of each list (once per distinct set, cached); its key
    overrides are then applied to a copy. A list Hydra must see whole (:func:`_split_overrides`
    gives None), whose groups Hydra refuses or whose key overrides fail to apply, is composed
    by Hydra whole, so that a bad override is reported by Hydra's own error."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    state = _conf_state()
    splits = {tuple(o): _split_overrides(o) for o in override_lists}
    bases = list(dict.fromkeys((state, split[0]) for split in splits.values() if split is not None))
    # Taken out of the cache first: making room for the missing ones may evict them.
    found = {key: _COMPOSED[key] for key in bases if key in _COMPOSED}
    failed: set[tuple[Any, ...]] = set()
    _compose_into(found, [key for key in bases if key not in found], failed)
    results: dict[tuple[str, ...], dict[str, Any]] = {}
    whole = []
    for overrides, split in splits.items():
        base = None if split is None else (state, split[0])
        if base is not None and base not in failed:
            try:
                results[overrides] = _apply_key_overrides(found[base], split[1])
                continue
            except (HydraException, OmegaConfBaseException):
                pass
        whole.append((state, overrides))
    # In the lists' order, so that of two bad lists the first one's error is the one raised.
    _compose_into(found, whole)
    results.update({key[1]: found[key] for key in whole})
    return [_resolved(results[tuple(o)]) for o in override_lists]


def _compose_into(found: dict[tuple[Any, ...], dict[str, Any]], keys: Sequence[tuple[Any, ...]],
                  failed: set[tuple[Any, ...]] | None = None) -> None:
    """Compose each (state, overrides) key with Hydra, initialized once, into ``found`` and the
    cache. A key Hydra refuses raises its error, or goes into ``failed`` when that is given."""
    if not keys:
        return
    with _hydra():
        for key in keys:
            try:
                found[key] = _compose_data(key[1])
            except ConfigError:
                if failed is None:
                    raise
                failed.add(key)
                continue
            if len(_COMPOSED) >= _COMPOSED_MAX:
                del _COMPOSED[next(iter(_COMPOSED))]
            _COMPOSED[key] = found[key]


def _resolved(data: dict[str, Any]) -> dict[str, Any]:
    """A fresh copy of ``data`` with its interpolations resolved (a plain deep copy without any)."""
    from omegaconf.errors import OmegaConfBaseException

    if "${" not in repr(data):
        return copy.deepcopy(data)
    try:
        return OmegaConf.to_container(OmegaConf.create(data), resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:  # e.g. ${nope}, or ${hydra:...} outside a Hydra app
        raise from_interpolation(exc) from None


def warm(overrides: Sequence[str]) -> None:
    """Compose the group overrides of ``overrides`` into this process's cache, so that a process
    forked afterwards composes ``overrides`` without Hydra (:mod:`nnassure.warmstart` calls this
    before it forks a job). Errors are left to the job's own compose, which reports them."""
    from hydra.errors import HydraException

    split = _split_overrides(overrides)
    if split is None:
        return
    key = (_conf_state(), split[0])
    if key not in _COMPOSED:
        try:
            _compose_into({}, [key])
        except (ConfigError, HydraException):
            pass


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``conf/config.yaml`` with Hydra overrides, validate it and return it read-only.

    Raises :class:`ConfigError` with a one-line message for an unknown key, a wrong type,
    an unknown config group option or an invalid value.
    """
    return compose_many([overrides])[0]


def compose_many(override_lists: Sequence[Sequence[str]]) -> list[DictConfig]:
    """:func:`compose` of each list of overrides, with Hydra initialized once."""
    return [_read_only(validate(data)) for data in _composed(override_lists)]


def _touches(override: str, group: str) -> bool:
    key = override.split("=", 1)[0].lstrip("~+")
    return re.match(rf"{re.escape(group)}($|[./@])", key) is not None


def compose_pipeline(overrides: Sequence[str]) -> tuple[DictConfig, dict[str, DictConfig]]:
    """The pipeline's config and, for each data set of its ``grid.datasets``, the config with
    ``dataset=<d>`` added (what the data jobs of the Snakefile compose).

    Also refuses the :data:`SEARCHED_KEYS` at non-default values, since every train job of the
    pipeline trains the search winner. The per-data-set composes skip the ``ensemble`` group,
    the bulk of composing (38 benchmark rows of YAML), and take that section from the first
    compose: the dataset group writes only under ``dataset`` and no YAML interpolates across
    sections, so the choice of data set cannot change it (tests/test_config.py compares with
    full composes). When an override touches ``ensemble`` every compose is a full one, since
    the override may refer to what the group defines (e.g. a benchmark row).
    """
    overrides = list(overrides)
    (data,) = _composed([overrides])
    config = validate(data)
    check_searched_keys(config, "in the pipeline, which trains the search winner")
    skip_ensemble = not any(_touches(o, "ensemble") for o in overrides)
    names = list(config.grid.datasets)
    variants = _composed([overrides + [f"dataset={name}"] + (["~ensemble"] if skip_ensemble else [])
                          for name in names])
    per_dataset = {}
    for name, variant in zip(names, variants, strict=True):
        if skip_ensemble:
            variant["ensemble"] = data["ensemble"]
        per_dataset[name] = _read_only(validate(variant))
    return _read_only(config), per_dataset
