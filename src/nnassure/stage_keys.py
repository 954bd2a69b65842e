"""The config keys each stage reads, declared once for the Snakefile and the stage entry points.

Two uses keep the declaration honest:

- the Snakefile hashes the values of a stage's ``reads`` into the rule's ``params``, so Snakemake
  reruns a job exactly when one of the keys it reads changes (rerun trigger "params"), and no job
  reruns for a key it does not read;
- the entry point hands the stage a config that holds *only* its declared keys, so a stage that
  reads an undeclared key fails at once with a missing-key error instead of silently missing the
  reruns that key should trigger.

A key may name another key's value in braces: ``kri.scenarios.{kri.scenario}`` is the entry of the
scenario a job works on, so the job reruns when that entry changes and not when another scenario
is added or edited (``{...}`` nest: ``kri.capacities.{kri.variants.{kri.variant}.capacity}``).

``job`` keys are set per job from the rule's wildcards (``dataset=b train.cost_fn=10``); they name
the job's output files, so they are not hashed. ``EXECUTION_KEYS`` say where outputs go, how runs
are logged and how many threads are used; every stage may read them and they never trigger a rerun.

This module is imported by the Snakefile at parse time: it must stay free of torch and of the
stage modules.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from nnassure.errors import ConfigError

EXECUTION_KEYS = ("results_dir", "grid.name", "tracking", "threads", "resources", "sweep")


@dataclass(frozen=True)
class StageKeys:
    """``reads``: keys whose values decide the stage's outputs; ``job``: keys set from wildcards;
    ``by_hand``: keys that cannot change the outputs of a pipeline job, read only when the stage
    is run by hand without an input the pipeline always gives it, or only to refuse a value that
    would have no effect (so they are visible to the stage but never hashed); ``inputs``: the
    stages whose artifacts its jobs read (a sweep point that changes a stage reruns everything
    downstream of it, nnassure.sweep; tests/test_sweep.py checks this against the rules)."""

    reads: tuple[str, ...]
    job: tuple[str, ...] = ()
    by_hand: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()


_TRAINING_DATA = ("dataset.name",)
_ASSESS_INPUTS = ("assess.model", "assess.data", "assess.name", "assess.domain")
# What the architecture search chooses; fixed values are used only by a hand-run of train.
_SEARCHED = ("model", "train.lr", "train.weight_decay")
_IMAGE_DATA = ("images.digits_size", "images.signs_size", "images.signs_per_class", "images.sign_classes",
               "images.split", "images.seed")
_IMAGE_TRAINING = ("images.lr", "images.weight_decay", "images.batch_size", "images.max_epochs",
                   "images.patience", "images.seed")
# PROVEN's bisection on eps (worst case and probabilistic certificates alike).
_PROVEN_BISECTION = ("proven.gammas", "proven.eps_min", "proven.eps_max", "proven.bisection_tolerance",
                     "proven.guess_factor", "proven.batch_size", "proven.sigma_ratio")
_PROVEN_CERTIFY = (*_PROVEN_BISECTION, "proven.samples", "proven.table4_samples", "proven.gaussian_models",
                   "proven.table4_models", "proven.correlation_length", "proven.channel_correlation", "proven.seed")
# Which rows run and how each instance is built: every ensemble stage needs them to find its job.
_ENSEMBLE_ROWS = ("ensemble.benchmarks", "ensemble.rows")
_ENSEMBLE_INSTANCE = (*_ENSEMBLE_ROWS, "ensemble.signs_per_class", "ensemble.seed")
_ENSEMBLE_ARCHITECTURE = ("ensemble.depth", "ensemble.width", "ensemble.conv_filters", "ensemble.conv_kernel",
                          "ensemble.pool", "ensemble.conv_hidden")
_ENSEMBLE_SOLVE = ("ensemble.backends", "ensemble.table_backend", "ensemble.smt", "ensemble.time_limit",
                   "ensemble.smt_time_limit", "ensemble.bounds", "ensemble.margin", "ensemble.heuristic",
                   "ensemble.heuristic_starts", "ensemble.heuristic_steps", "ensemble.precheck")

# The clips and their flow, then the network on them.
_VIDEO_DATA = tuple(f"video.{k}" for k in ("motions", "clips_per_class", "frames", "size", "speed", "zoom",
                                           "noise", "split", "seed", "farneback", "flow_pool"))
_VIDEO_TRAINING = tuple(f"video.{k}" for k in ("conv_channels", "features", "hidden", "lr", "weight_decay",
                                               "batch_size", "max_epochs", "patience", "seed"))
_VIDEO_BOUNDS = tuple(f"video.{k}" for k in ("seed", "norm", "upper_iterations", "upper_gradient", "upper_step",
                                             "astar_iterations", "astar_seconds", "astar_batch", "astar_dims_per_flow",
                                             "tau_fraction",
                                             "lirpa_method", "lirpa_norms", "lirpa_tolerance",
                                             "manipulated_flows", "brightness", "margin", "farneback",
                                             "flow_pool"))

# The KRI family: one job per model (kri_train) and per (model, scenario) (kri_infer, kri_certify).
_KRI_VARIANT = "kri.variants.{kri.variant}"
_KRI_SCENARIO = "kri.scenarios.{kri.scenario}"

STAGES: dict[str, StageKeys] = {
    "data": StageKeys(reads=("dataset",), job=_TRAINING_DATA),
    "baselines": StageKeys(reads=("dataset.seed",), job=_TRAINING_DATA, inputs=("data",)),
    # The search reads model.*, train.lr and train.weight_decay only to refuse them: it chooses them.
    # One job per trial (Sec. 4.2's random search), then the selection of the winner.
    "search_trial": StageKeys(reads=("search", "train.cost_fp", "train.batch_size"),
                              job=(*_TRAINING_DATA, "train.cost_fn", "search.trial"), by_hand=_SEARCHED,
                              inputs=("data",)),
    "search": StageKeys(reads=("search", "train.cost_fp", "train.batch_size"),
                        job=(*_TRAINING_DATA, "train.cost_fn"), by_hand=_SEARCHED, inputs=("data", "search_trial")),
    # The pipeline trains the search winner (train.hparams_file); without it, by hand, the
    # architecture and optimiser come from model.* and train.lr / train.weight_decay.
    "train": StageKeys(reads=("train.cost_fp", "train.batch_size", "train.max_epochs", "train.patience",
                              "train.seed"),
                       job=(*_TRAINING_DATA, "train.cost_fn", "train.hparams_file"),
                       by_hand=_SEARCHED, inputs=("data", "search")),
    "certify": StageKeys(reads=("certify",), job=(*_TRAINING_DATA, "train.cost_fn"), inputs=("data", "train")),
    "report": StageKeys(reads=("grid.datasets", "grid.costs", "certify.method", "certify.methods",
                               "certify.norms", "certify.eps", "train.cost_fp", "report"),
                        inputs=("data", "baselines", "certify")),
    "images": StageKeys(reads=_IMAGE_DATA),
    "train_classifier": StageKeys(reads=_IMAGE_TRAINING, job=("proven.model",), inputs=("images",)),
    "proven": StageKeys(reads=_PROVEN_CERTIFY, job=("proven.model",), inputs=("images", "train_classifier")),
    # PROVEN's risks on the verified-classification models, at the fixed eps of certify.eps.
    "proven_verified": StageKeys(reads=("certify.eps", "proven.gammas", "proven.batch_size"),
                                 job=(*_TRAINING_DATA, "train.cost_fn"), inputs=("data", "train")),
    "report_proven": StageKeys(reads=("grid.datasets", "grid.costs", "certify.eps", "proven"),
                               inputs=("proven", "proven_verified")),
    "ensemble_data": StageKeys(reads=_ENSEMBLE_INSTANCE, job=("ensemble.instance",)),
    "ensemble_train": StageKeys(reads=(*_ENSEMBLE_INSTANCE, *_ENSEMBLE_ARCHITECTURE, "ensemble.max_epochs",
                                       "ensemble.min_accuracy_digits", "ensemble.min_accuracy_signs",
                                       "ensemble.training_attempts"),
                                job=("ensemble.instance", "ensemble.classifier"), inputs=("ensemble_data",)),
    "ensemble_row": StageKeys(reads=(*_ENSEMBLE_INSTANCE, *_ENSEMBLE_SOLVE), job=("ensemble.row",),
                              inputs=("ensemble_data", "ensemble_train")),
    "report_ensemble": StageKeys(reads=(*_ENSEMBLE_ROWS, "ensemble.time_limit", "ensemble.smt_time_limit",
                                        "ensemble.backends", "ensemble.table_backend", "ensemble.smt"),
                                 inputs=("ensemble_row",)),
    "video_data": StageKeys(reads=_VIDEO_DATA),
    "video_train": StageKeys(reads=_VIDEO_TRAINING, inputs=("video_data",)),
    # Brightness and the pixel-space check recompute Farneback, so the bounds read its keys too.
    "video_bounds": StageKeys(reads=_VIDEO_BOUNDS, job=("video.clip",), inputs=("video_data", "video_train")),
    "report_video": StageKeys(reads=("video.clips", "video.motions", "video.norm", "video.lirpa_norms",
                                     "video.manipulated_flows", "video.brightness", "video.upper_iterations",
                                     "video.astar_iterations"), inputs=("video_train", "video_bounds")),
    "kri_data": StageKeys(reads=("kri.data",)),
    "kri_train": StageKeys(reads=("kri.train", _KRI_VARIANT, "kri.capacities.{kri.variants.{kri.variant}.capacity}"),
                           job=("kri.variant",), inputs=("kri_data",)),
    "kri_infer": StageKeys(reads=(_KRI_SCENARIO, "kri.samples", "kri.draws", "kri.seed"),
                           job=("kri.variant", "kri.scenario"), inputs=("kri_data", "kri_train")),
    # Which scenarios are certified (kri.certify.scenarios) decides which jobs exist, not what one computes.
    "kri_certify": StageKeys(reads=(_KRI_SCENARIO, "kri.samples", "kri.seed", *(f"kri.certify.{k}" for k in (
                                 "samples", "method", "box_sigmas", "batch_size", "mc_draws"))),
                             job=("kri.variant", "kri.scenario"), inputs=("kri_data", "kri_train")),
    # The merge checks every inference file against the scenario it claims to be, and applies the losses.
    "kri_tensor": StageKeys(reads=("kri.models", "kri.scenarios", "kri.samples", "kri.draws", "kri.seed",
                                   "kri.losses", "kri.severity"),
                            inputs=("kri_data", "kri_train", "kri_infer")),
    "report_kri": StageKeys(reads=("kri.models", "kri.variants", "kri.capacities", "kri.scenarios", "kri.losses",
                                   "kri.severity", "kri.deployments", "kri.confidence", "kri.bootstrap",
                                   "kri.certify", "kri.report", "kri.samples", "kri.seed"),
                            inputs=("kri_train", "kri_tensor", "kri_certify")),
    # Assessing a model the pipeline did not train (nnassure.assess): the user's files are the
    # jobs' inputs, so a changed model, data or property file reruns what reads it.
    "assess_import": StageKeys(reads=_ASSESS_INPUTS + ("assess.tolerance", "assess.properties")),
    "assess_accuracy": StageKeys(reads=_ASSESS_INPUTS + ("assess.costs",), inputs=("assess_import",)),
    "assess_certify": StageKeys(reads=_ASSESS_INPUTS + ("assess.certify",), inputs=("assess_import",)),
    "assess_proven": StageKeys(reads=_ASSESS_INPUTS + ("assess.proven",), inputs=("assess_import",)),
    "assess_kri": StageKeys(reads=_ASSESS_INPUTS + ("assess.kri", "kri.scenarios", "kri.draws", "kri.seed"),
                            inputs=("assess_import",)),
    # One job per property file; the list only says where each file is, so it is not hashed.
    "vnnlib": StageKeys(reads=("assess.model", "assess.name", "assess.vnnlib"), job=("assess.property",),
                        by_hand=("assess.properties",), inputs=("assess_import",)),
    "report_assess": StageKeys(reads=("assess",), inputs=("assess_import", "assess_accuracy", "assess_certify",
                                                          "assess_proven", "assess_kri", "vnnlib")),
    # One per sweep: every point's headline numbers, from the point's reports (its inputs, listed by
    # the sweep's plan file).
    "sweep_summary": StageKeys(reads=()),
}


def stage_keys(stage: str) -> StageKeys:
    try:
        return STAGES[stage]
    except KeyError:
        raise ConfigError(f"unknown stage {stage!r}: expected one of {', '.join(sorted(STAGES))}") from None


_REFERENCE = re.compile(r"\{([^{}]+)\}")


def expand(cfg: DictConfig, keys: tuple[str, ...], stage: str, job: Mapping[str, object] | None = None
           ) -> tuple[str, ...]:
    """``keys`` with every ``{key}`` replaced by that key's value, taken from ``job`` (the job's
    wildcard values) when it is there, else from ``cfg``; innermost braces first."""
    job = job or {}
    expanded = []
    for key in keys:
        while (match := _REFERENCE.search(key)) is not None:
            name = match.group(1)
            value = job[name] if name in job else OmegaConf.select(cfg, name)
            if value is None:
                raise ConfigError(f"stage {stage} works on one {name.split('.')[-1]}: set {name}=<name>")
            key = key[: match.start()] + str(value) + key[match.end():]
        expanded.append(key)
    return tuple(expanded)


def _select(cfg: DictConfig, keys: tuple[str, ...]) -> dict:
    """A nested plain dict holding ``keys`` (dotted paths into ``cfg``) and nothing else."""
    selected: dict = {}
    for key in keys:
        value = OmegaConf.select(cfg, key, throw_on_missing=True)
        if value is None and not _has_key(cfg, key):
            raise ConfigError(f"stage key {key!r} is not a key of the config")
        node = selected
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    return selected


def _has_key(cfg: DictConfig, key: str) -> bool:
    *parents, leaf = key.split(".")
    node = OmegaConf.select(cfg, ".".join(parents)) if parents else cfg
    return OmegaConf.is_dict(node) and leaf in node


def project(cfg: DictConfig, stage: str) -> DictConfig:
    """``cfg`` reduced to what ``stage`` declares (its reads, job, by-hand and execution keys),
    read-only and in struct mode, so reading anything else raises."""
    keys = stage_keys(stage)
    reads = expand(cfg, keys.reads, stage)
    projected = OmegaConf.create(_select(cfg, (*reads, *keys.job, *keys.by_hand, *EXECUTION_KEYS)))
    OmegaConf.set_struct(projected, True)
    OmegaConf.set_readonly(projected, True)
    return projected


def digest(cfg: DictConfig, stage: str, job: Mapping[str, object] | None = None) -> str:
    """A short hash of the values of the keys ``stage`` reads (not its job or execution keys);
    ``job`` gives the job's wildcard values that ``{...}`` references in its keys resolve to."""
    text = json.dumps(_select(cfg, expand(cfg, stage_keys(stage).reads, stage, job)), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
