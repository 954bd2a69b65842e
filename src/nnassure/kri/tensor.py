"""The risk tensor (Schwerdtner et al., Sec. 4): R[loss, model, scenario, sample, draw] =
L_i(f(x_j + delta_{k,l})) for the corruption components and R_adv[loss, model, attack, sample] =
L_i(f(x_j + delta_{k,j})) for the attacks, merged from the per-(model, scenario) inference files.

The losses are computed from the stored logits only, so a new loss needs no new inference:

- ``class_change``: 1 if argmax f(x + delta) differs from argmax f(x) (the model's own clean
  prediction), else 0;
- ``misclassification``: 1 if argmax f(x + delta) differs from the label;
- ``severity``: cost[label, argmax f(x + delta)] from a class-by-class matrix (0 on the diagonal,
  ``kri.severity.default`` elsewhere, ``kri.severity.costs[true][predicted]`` overriding).

The tensor file (netCDF via h5netcdf, attrs ``format = "nnassure-kri-tensor-1"``): vars
``risk (loss, model, scenario, sample, draw) float64`` (NaN beyond a scenario's draws: the padding
is set from ``scenario_draws``, and a NaN logit within a scenario's draws is an error, never padding),
``risk_adv (loss, model, attack, sample) float64``, ``logits (model, scenario, sample, draw, class)``
and ``logits_adv (model, attack, sample, class)`` float32 (NaN beyond a scenario's draws),
``clean_logits (model, sample, class)``, ``label (sample)``, ``severity_cost (true_class,
predicted_class)``, ``perturbation_norm_adv (model, attack, sample) float64``; coords ``loss``,
``model``, ``scenario`` (with ``scenario_family``, ``scenario_kind``, ``scenario_draws``), ``attack``
(with ``attack_family``, ``attack_kind``, ``attack_norm``), ``sample``, ``draw``, ``class``,
``true_class``, ``predicted_class``. :func:`open_tensor` opens it lazily (sliced by name without
reading the rest) and checks it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from nnassure.errors import ConfigError, InputFileError
from nnassure.io import atomic_path
from nnassure.kri.infer import plain, scenario_json
from nnassure.kri.kinds import KINDS

FORMAT = "nnassure-kri-tensor-1"
ENGINE = "h5netcdf"


def _class_change(pred: np.ndarray, clean_pred: np.ndarray, label: np.ndarray, cost: np.ndarray) -> np.ndarray:
    return (pred != clean_pred).astype(np.float64)


def _misclassification(pred: np.ndarray, clean_pred: np.ndarray, label: np.ndarray, cost: np.ndarray) -> np.ndarray:
    return (pred != label).astype(np.float64)


def _severity(pred: np.ndarray, clean_pred: np.ndarray, label: np.ndarray, cost: np.ndarray) -> np.ndarray:
    return cost[label, pred].astype(np.float64)


# loss name -> L(predicted class, clean predicted class, label, cost matrix), elementwise on broadcast arrays
LOSSES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "class_change": _class_change,
    "misclassification": _misclassification,
    "severity": _severity,
}


def severity_matrix(severity_cfg: Any, classes: Sequence[str]) -> np.ndarray:
    """(K, K) cost[true, predicted]: 0 on the diagonal, ``default`` elsewhere, ``costs[true][predicted]`` overriding."""
    cfg = plain(severity_cfg)
    classes = [str(c) for c in classes]
    index = {c: i for i, c in enumerate(classes)}
    cost = np.full((len(classes), len(classes)), float(cfg.get("default", 1.0)), np.float64)
    for true, row in (cfg.get("costs") or {}).items():
        for predicted, value in row.items():
            for name in (true, predicted):
                if name not in index:
                    raise ConfigError(f"kri.severity.costs.{true}.{predicted}: class {name!r} is not a class of the "
                                      f"images ({', '.join(classes)})")
            if true == predicted:
                raise ConfigError(f"kri.severity.costs.{true}.{predicted}={value!r}: a correct reading costs 0")
            cost[index[true], index[predicted]] = float(value)
    np.fill_diagonal(cost, 0.0)
    return cost


def apply_losses(logits: np.ndarray, clean_logits: np.ndarray, label: np.ndarray, losses: Sequence[str],
                 cost: np.ndarray, sample_axis: int = 0, valid: np.ndarray | None = None) -> np.ndarray:
    """The losses of perturbed ``logits`` (..., class), stacked on a new first axis (loss, ...).

    ``clean_logits (sample, class)`` and ``label (sample,)`` are broadcast along ``sample_axis`` of
    ``logits``. ``valid`` (broadcastable to ``logits.shape[:-1]``, default all) marks the cells that
    exist; the others (draws beyond a scenario's draws) get NaN losses whatever their logits. A
    non-finite logit in a valid cell raises ValueError: it is never taken for padding.
    """
    logits = np.asarray(logits)
    valid = np.ones(logits.shape[:-1], bool) if valid is None else np.broadcast_to(valid, logits.shape[:-1])
    finite = np.isfinite(logits).all(axis=-1)
    if (valid & ~finite).any():
        where = tuple(int(i) for i in np.argwhere(valid & ~finite)[0])
        raise ValueError(f"non-finite logits at cell {where} (not padding: the cell is within its scenario's draws)")
    pred = np.argmax(np.where(valid[..., None], logits, 0.0), axis=-1)
    shape = [1] * pred.ndim
    shape[sample_axis] = -1
    clean_pred = np.argmax(np.asarray(clean_logits), axis=-1).reshape(shape)
    label = np.asarray(label, np.int64).reshape(shape)
    out = []
    for name in losses:
        if name not in LOSSES:
            raise ConfigError(f"kri.losses: unknown loss {name!r}: expected one of {', '.join(LOSSES)}")
        value = LOSSES[name](pred, clean_pred, label, cost)
        out.append(np.where(valid, np.broadcast_to(value, pred.shape), np.nan))
    return np.stack(out) if out else np.zeros((0, *pred.shape))


def merge_tensor(inferences: Mapping[tuple[str, str], xr.Dataset], scenarios: Mapping[str, Any],
                 losses: Sequence[str], severity: Any, classes: Sequence[str],
                 models: Sequence[str] | None = None) -> xr.Dataset:
    """The risk tensor of the inference datasets keyed by (variant, scenario).

    ``scenarios`` (name -> checked entry, in config order) decides the order; components of family
    ``adversarial`` go to the ``attack`` dimension, the others to ``scenario``. Every (model,
    scenario) pair must be present, and all files must agree on samples, labels and clean logits.
    """
    scenarios = {name: plain(entry) for name, entry in scenarios.items()}
    models = list(models) if models is not None else list(dict.fromkeys(v for v, _ in inferences))
    classes = [str(c) for c in classes]
    corr = [s for s, e in scenarios.items() if not KINDS[e["kind"]].adversarial]
    adv = [s for s, e in scenarios.items() if KINDS[e["kind"]].adversarial]
    for m in models:
        for s in scenarios:
            if (m, s) not in inferences:
                raise InputFileError(f"no inference of model {m!r} on scenario {s!r}; run kri_infer for it")
    first = inferences[(models[0], next(iter(scenarios)))]
    n = first.sizes["sample"]
    label = first["label"].values
    k = len(classes)
    for (m, s), ds in inferences.items():
        if m not in models or s not in scenarios:
            continue
        what = f"the inference of {m!r} on {s!r}"
        if [str(c) for c in ds["class"].values] != classes:
            raise InputFileError(f"{what} has classes {list(ds['class'].values)}; the images have {classes}")
        if ds.sizes["sample"] != n or not np.array_equal(ds["label"].values, label):
            raise InputFileError(f"{what} has other samples or labels than the other inferences; rerun kri_infer")
    draws = {s: int(inferences[(models[0], s)].sizes["draw"]) for s in corr}
    dmax = max(draws.values(), default=0)
    cost = severity_matrix(severity, classes)
    logits = np.full((len(models), len(corr), n, dmax, k), np.nan, np.float32)
    logits_adv = np.full((len(models), len(adv), n, k), np.nan, np.float32)
    norm_adv = np.full((len(models), len(adv), n), np.nan, np.float64)
    clean = np.empty((len(models), n, k), np.float32)
    for mi, m in enumerate(models):
        clean[mi] = inferences[(m, next(iter(scenarios)))]["clean_logits"].values
        for s in scenarios:
            other = inferences[(m, s)]["clean_logits"].values
            # the same model file on the same images: equal logits (up to a thread count's rounding)
            if not np.allclose(other, clean[mi], rtol=1e-4, atol=1e-4) or \
                    not np.array_equal(np.argmax(other, -1), np.argmax(clean[mi], -1)):
                raise InputFileError(f"the inference of {m!r} on {s!r} has other clean logits than the model's other "
                                     "inferences (the model changed since?); rerun kri_infer for it")
        for si, s in enumerate(corr):
            ds = inferences[(m, s)]
            if ds.sizes["draw"] != draws[s]:
                raise InputFileError(f"the inference of {m!r} on {s!r} has {ds.sizes['draw']} draws, another model's "
                                     f"{draws[s]}")
            logits[mi, si, :, :draws[s]] = ds["logits"].values
        for ai, s in enumerate(adv):
            ds = inferences[(m, s)]
            logits_adv[mi, ai] = ds["logits"].values[:, 0]
            norm_adv[mi, ai] = ds["perturbation_norm"].values[:, 0]
    # broadcast clean logits/labels over (model, scenario, sample, draw)
    risk = np.full((len(losses), len(models), len(corr), n, dmax), np.nan, np.float64)
    # the padding mask comes from the draw counts, never from NaN logits (which read_inference refuses)
    valid = (np.arange(dmax)[None, :] < np.asarray([draws[s] for s in corr], np.int64)[:, None])[:, None, :]
    for mi in range(len(models)):
        if corr:
            risk[:, mi] = apply_losses(logits[mi], clean[mi], label, losses, cost, sample_axis=1, valid=valid)
    risk_adv = np.full((len(losses), len(models), len(adv), n), np.nan, np.float64)
    for mi in range(len(models)):
        if adv:
            risk_adv[:, mi] = apply_losses(logits_adv[mi], clean[mi], label, losses, cost, sample_axis=1)
    coords = {
        "loss": np.asarray(list(losses), dtype=str), "model": np.asarray(models, dtype=str),
        "scenario": np.asarray(corr, dtype=str),
        "scenario_family": ("scenario", np.asarray([scenarios[s]["family"] for s in corr], dtype=str)),
        "scenario_kind": ("scenario", np.asarray([scenarios[s]["kind"] for s in corr], dtype=str)),
        "scenario_draws": ("scenario", np.asarray([draws[s] for s in corr], dtype=np.int64)),
        "attack": np.asarray(adv, dtype=str),
        "attack_family": ("attack", np.asarray([scenarios[s]["family"] for s in adv], dtype=str)),
        "attack_kind": ("attack", np.asarray([scenarios[s]["kind"] for s in adv], dtype=str)),
        "attack_norm": ("attack", np.asarray([KINDS[scenarios[s]["kind"]].norm for s in adv], dtype=str)),
        "sample": first["sample"].values.astype(np.int64), "draw": np.arange(dmax, dtype=np.int64),
        "class": np.asarray(classes, dtype=str), "true_class": np.asarray(classes, dtype=str),
        "predicted_class": np.asarray(classes, dtype=str),
    }
    data = {
        "risk": (("loss", "model", "scenario", "sample", "draw"), risk),
        "risk_adv": (("loss", "model", "attack", "sample"), risk_adv),
        "logits": (("model", "scenario", "sample", "draw", "class"), logits),
        "logits_adv": (("model", "attack", "sample", "class"), logits_adv),
        "perturbation_norm_adv": (("model", "attack", "sample"), norm_adv),
        "clean_logits": (("model", "sample", "class"), clean),
        "label": (("sample",), label.astype(np.int64)),
        "severity_cost": (("true_class", "predicted_class"), cost),
    }
    attrs = {"format": FORMAT, "seed": int(first.attrs["seed"]), "samples": int(n),
             "scenario_configs": json.dumps({s: json.loads(scenario_json(e)) for s, e in scenarios.items()},
                                           sort_keys=True)}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def write_tensor(ds: xr.Dataset, path: str | Path) -> None:
    """Write the tensor as netCDF (h5netcdf, zlib-compressed), atomically."""
    encoding = {v: {"zlib": True, "complevel": 4} for v in ds.data_vars if ds[v].size > 0}
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine=ENGINE, encoding=encoding)


_VARS = {"risk": ("loss", "model", "scenario", "sample", "draw"), "risk_adv": ("loss", "model", "attack", "sample"),
         "logits": ("model", "scenario", "sample", "draw", "class"),
         "logits_adv": ("model", "attack", "sample", "class"),
         "clean_logits": ("model", "sample", "class"), "label": ("sample",),
         "severity_cost": ("true_class", "predicted_class")}
_COORDS = ("loss", "model", "scenario", "scenario_family", "scenario_kind", "scenario_draws", "attack",
           "attack_family", "attack_kind", "sample", "draw", "class")


def open_tensor(path: str | Path) -> xr.Dataset:
    """The risk tensor, opened lazily (arrays are read when sliced); a missing, corrupt, half-written
    or foreign file raises :class:`InputFileError` naming it."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: risk tensor not found (run the kri_tensor stage first)")
    try:
        ds = xr.open_dataset(path, engine=ENGINE)
    except Exception as exc:  # h5py/h5netcdf raise OSError, ValueError... for broken files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputFileError(f"{path}: not a readable risk tensor ({reason}); delete it and rerun kri_tensor") from None
    problem = None
    if ds.attrs.get("format") != FORMAT:
        problem = f"format is {ds.attrs.get('format')!r}; expected {FORMAT!r}"
    else:
        for var, dims in _VARS.items():
            if var not in ds.variables:
                problem = f"variable {var!r} is missing"
                break
            if ds[var].dims != dims:
                problem = f"variable {var!r} has dims {ds[var].dims}; expected {dims}"
                break
        else:
            missing = [c for c in _COORDS if c not in ds.coords]
            if missing:
                problem = f"coordinate {missing[0]!r} is missing"
    if problem:
        ds.close()
        raise InputFileError(f"{path}: not a valid risk tensor: {problem}")
    return ds
