"""One inference file per (model, scenario) (Schwerdtner et al., Sec. 4): the logits of the model
on every perturbed sample of one scenario component, with the draw's parameters as coordinates.

Only logits are stored, no loss: the losses of the risk tensor are applied afterwards
(:mod:`nnassure.kri.tensor`), so a new loss needs no new inference, and adding a scenario runs
exactly one new inference per model. The file (netCDF via h5netcdf) is an xarray Dataset:

- dims ``sample``, ``draw``, ``class``; coords ``sample`` (int64 ids: positions among the first
  ``kri.samples`` test images), ``draw`` (0..d-1), ``class`` (class names);
- ``logits (sample, draw, class) float32``, ``clean_logits (sample, class) float32``,
  ``label (sample) int64``, ``param_<name> (sample, draw) float64`` for every drawn or fixed
  parameter of the kind, and for attacks ``perturbation_norm (sample, draw) float64`` (in the
  attack's norm, computed in float64);
- attrs ``format = "nnassure-kri-infer-1"``, ``variant``, ``scenario``, ``family``, ``kind``,
  ``draws``, ``seed``, ``samples`` and ``scenario_config`` (JSON of the checked scenario entry),
  which the tensor stage compares with the config to refuse a stale file, and ``model_sha256`` /
  ``data_sha256``, the SHA-256 of the model's ``.safetensors`` and of the image data file it was
  computed from, which the tensor stage compares with the current files (a retrained or replaced
  model is refused; empty when the caller did not give them).

Every logit is finite: a model that gives NaN or infinite logits on a perturbed image is refused
before anything is written, and so is a file holding one (the tensor's padding beyond a
scenario's draws comes from the draw counts, never from NaN logits).

Reproducibility. The perturbations and their parameters are recomputed exactly, bit for bit, from
(seed, scenario, sample, draw) and the clean image (:func:`nnassure.kri.scenarios.perturb_cell`).
The logits are not: the model runs on batches of ``batch_size`` images, and the batch size and
the thread count change the float32 summation order of the convolutions and matrix products, so a
cell recomputed alone gives logits that differ from the stored ones by a few float32 ulps of the
logits' magnitude (about 3e-7 relative; over all 1200 cells each of three (model, scenario) pairs
of the quick store: at most 1.9e-5 for NNet on brightness, logits up to 78, and 2.9e-3 for
DistilledT100 on fog, whose logits reach 1e4; no argmax changed and no cell was a near tie; a
reviewer saw 4e-4 elsewhere). A loss is a function of the argmax, so it recomputes exactly unless
the cell's top two logits are within that difference of each other (a near tie), where the
recomputed argmax may differ from the stored one. tests/test_kri_tensor.py
compares perturbations exactly, and losses exactly except at cells whose recomputed top-2 gap is
below the observed logit difference, which it skips and requires to be rare.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from torch import nn

from nnassure.errors import InputFileError
from nnassure.io import atomic_path
from nnassure.kri.kinds import KINDS
from nnassure.kri.model import predict_logits, to_model_input
from nnassure.kri.scenarios import perturb, scenario_draws

FORMAT = "nnassure-kri-infer-1"
ENGINE = "h5netcdf"
_ATTRS = ("variant", "scenario", "family", "kind", "draws", "seed", "samples", "scenario_config", "model_sha256",
          "data_sha256")


def _non_finite(array: np.ndarray, dims: Sequence[str]) -> str | None:
    """Where ``array`` first holds a NaN or an infinity (``dim index, ...``), or None."""
    bad = ~np.isfinite(np.asarray(array))
    if not bad.any():
        return None
    where = np.argwhere(bad)[0]
    count = int(bad.sum())
    return f"{count} non-finite value(s), the first {array[tuple(where)]} at " + \
        ", ".join(f"{dim} {int(i)}" for dim, i in zip(dims, where, strict=True))


def plain(entry: Any) -> Any:
    """A scenario entry (DictConfig, pydantic model or mapping) as plain JSON-able data."""
    if hasattr(entry, "model_dump"):
        return plain(entry.model_dump())
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(entry, DictConfig | ListConfig):
            return OmegaConf.to_container(entry, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if isinstance(entry, Mapping):
        return {str(k): plain(v) for k, v in entry.items()}
    if isinstance(entry, list | tuple):
        return [plain(v) for v in entry]
    return entry


def scenario_json(entry: Any) -> str:
    """The canonical JSON of a checked scenario entry (family, kind, params, draws)."""
    document = plain(entry)
    document = {k: document.get(k) for k in ("family", "kind", "params", "draws")}
    return json.dumps(document, sort_keys=True)


def infer_scenario(model: nn.Module, images_nhwc: np.ndarray, labels: np.ndarray, name: str,
                   scenario_cfg: Any, draws: int, seed: int, classes: Sequence[str], *, variant: str = "",
                   batch_size: int = 256, progress: bool | None = None, model_sha256: str = "",
                   data_sha256: str = "") -> xr.Dataset:
    """The inference file's Dataset of ``model`` on scenario ``name`` (Eq. 1's inner samples delta_{k,l}).

    ``draws`` is ``kri.draws``; the scenario's own ``draws`` overrides it, and an attack makes one.
    ``model_sha256`` / ``data_sha256`` (:func:`file_sha256` of the model's ``.safetensors`` and of
    the image file) are recorded for the tensor stage's staleness check. Also returns, in
    ``attrs["seconds"]``, the wall time of perturbation and inference. Non-finite logits raise
    :class:`InputFileError` (nothing is returned to write).
    """
    scenario = plain(scenario_cfg)
    kind_name = str(scenario["kind"])
    spec = KINDS[kind_name]
    n = len(images_nhwc)
    d = scenario_draws(scenario, draws)
    started = time.perf_counter()
    images_nhwc = np.asarray(images_nhwc, np.float32)
    clean = predict_logits(model, to_model_input(images_nhwc), batch_size)
    pert = perturb(name, scenario, images_nhwc, d, seed, model=model, classes=len(classes), progress=progress)
    flat = pert.images.reshape(n * d, *images_nhwc.shape[1:])
    logits = predict_logits(model, to_model_input(flat), batch_size).reshape(n, d, len(classes))
    seconds = time.perf_counter() - started
    for what, array, dims in (("clean images", clean, ("sample", "class")),
                              (f"scenario {name!r}", logits, ("sample", "draw", "class"))):
        problem = _non_finite(array, dims)
        if problem:
            raise InputFileError(f"model {variant or '(unnamed)'} gives non-finite logits on the {what}: {problem}; "
                                 "the model file is broken (retrain it)")
    data: dict[str, Any] = {
        "logits": (("sample", "draw", "class"), logits.astype(np.float32)),
        "clean_logits": (("sample", "class"), clean.astype(np.float32)),
        "label": (("sample",), np.asarray(labels, np.int64)),
    }
    for pname, values in pert.values.items():
        data[f"param_{pname}"] = (("sample", "draw"), values.astype(np.float64))
    if pert.norm is not None:
        data["perturbation_norm"] = (("sample", "draw"), pert.norm.astype(np.float64))
    attrs = {"format": FORMAT, "variant": variant, "scenario": name, "family": spec.family, "kind": kind_name,
             "draws": int(d), "seed": int(seed), "samples": int(n), "scenario_config": scenario_json(scenario),
             "model_sha256": str(model_sha256), "data_sha256": str(data_sha256), "seconds": float(seconds)}
    coords = {"sample": np.arange(n, dtype=np.int64), "draw": np.arange(d, dtype=np.int64),
              "class": np.asarray([str(c) for c in classes], dtype=str)}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def write_inference(ds: xr.Dataset, path: str | Path) -> None:
    """Write an inference Dataset as netCDF (h5netcdf), atomically: complete or not at all."""
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine=ENGINE)


def _problem(ds: xr.Dataset, variant: str | None, scenario: str | None) -> str | None:
    if ds.attrs.get("format") != FORMAT:
        return f"format is {ds.attrs.get('format')!r}; expected {FORMAT!r}"
    missing = [a for a in _ATTRS if a not in ds.attrs]
    if missing:
        return f"attribute {missing[0]!r} is missing"
    if variant is not None and ds.attrs["variant"] != variant:
        return f"it holds variant {ds.attrs['variant']!r}, not {variant!r}"
    if scenario is not None and ds.attrs["scenario"] != scenario:
        return f"it holds scenario {ds.attrs['scenario']!r}, not {scenario!r}"
    kind_name = ds.attrs["kind"]
    if kind_name not in KINDS:
        return f"unknown scenario kind {kind_name!r}"
    expected = {"logits": ("sample", "draw", "class"), "clean_logits": ("sample", "class"), "label": ("sample",)}
    expected |= {f"param_{p}": ("sample", "draw") for p in KINDS[kind_name].params}
    if KINDS[kind_name].adversarial:
        expected["perturbation_norm"] = ("sample", "draw")
    for var, dims in expected.items():
        if var not in ds.variables:
            return f"variable {var!r} is missing"
        if ds[var].dims != dims:
            return f"variable {var!r} has dims {ds[var].dims}; expected {dims}"
    if ds.sizes["draw"] != int(ds.attrs["draws"]) or ds.sizes["sample"] != int(ds.attrs["samples"]):
        return (f"its arrays have {ds.sizes['sample']} samples x {ds.sizes['draw']} draws; its attributes say "
                f"{ds.attrs['samples']} x {ds.attrs['draws']}")
    if ds["logits"].dtype != np.float32 or ds["label"].dtype != np.int64:
        return f"logits are {ds['logits'].dtype} and labels {ds['label'].dtype}; expected float32 and int64"
    for var in ("logits", "clean_logits"):
        problem = _non_finite(ds[var].values, ds[var].dims)
        if problem:
            return f"{var} hold {problem}"
    return None


def read_inference(path: str | Path, variant: str | None = None, scenario: str | None = None) -> xr.Dataset:
    """An inference file, loaded and checked; a missing, corrupt, truncated or mismatched file raises
    :class:`InputFileError` naming it."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: inference file not found (run the kri_infer stage first)")
    try:
        with xr.open_dataset(path, engine=ENGINE) as opened:
            ds = opened.load()
    except Exception as exc:  # h5py/h5netcdf raise OSError, ValueError, KeyError... for broken files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputFileError(f"{path}: not a readable inference file ({reason}); delete it and rerun "
                             "kri_infer") from None
    problem = _problem(ds, variant, scenario)
    if problem:
        raise InputFileError(f"{path}: not a valid inference file: {problem}")
    return ds


def check_fresh(ds: xr.Dataset, path: str | Path, scenario_cfg: Any, draws: int, seed: int, samples: int) -> None:
    """Refuse an inference file made with another scenario entry, draws, seed or sample count."""
    expected = {"scenario_config": scenario_json(scenario_cfg), "draws": scenario_draws(plain(scenario_cfg), draws),
                "seed": int(seed), "samples": int(samples)}
    for key, value in expected.items():
        stored = ds.attrs.get(key)
        if key != "scenario_config":
            stored = int(stored)
        if stored != value:
            raise InputFileError(f"{path}: stale inference file: its {key} is {stored!r}, the config's is {value!r}; "
                                 "rerun kri_infer for it")


def check_inputs(ds: xr.Dataset, path: str | Path, model_file: str | Path, model_sha256: str,
                 data_file: str | Path, data_sha256: str) -> None:
    """Refuse an inference file computed from another model file or another image file than the
    current ones (their SHA-256 as recorded by kri_infer against ``model_sha256`` / ``data_sha256``)."""
    for key, file, current in (("model_sha256", model_file, model_sha256), ("data_sha256", data_file, data_sha256)):
        stored = str(ds.attrs.get(key, ""))
        if stored != current:
            recorded = f"sha256 {stored[:12]}" if stored else "no digest"
            raise InputFileError(f"{path}: stale inference file: it was computed from {file} with {recorded}, the "
                                 f"current file has sha256 {current[:12]} (retrained or replaced?); rerun kri_infer "
                                 "for it")
