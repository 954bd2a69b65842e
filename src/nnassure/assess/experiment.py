"""The assessment's computations, one function per stage (the stages only read and write files).

- :func:`resolve` (:func:`nnassure.assess.paths.resolve_assessment`): the model's name, its files
  and the property files of an ``assess`` config;
- :func:`load_checked`: the model and data, refused when they are not the files assess_import checked;
- :func:`clean_accuracy`: accuracy, cost (``costs[label][prediction]``) and the confusion matrix;
- :func:`certify_samples`: verified accuracy (Sec. 3.2 of the verified-classification paper,
  multi-class: a sample is verified at eps when the lower bound of y_label - y_o over its ball is
  > 0 for every other class o; a one-logit model keeps the pipeline's rule, class 1 iff the logit
  is >= 0) and the largest certified radius by bisection, per norm;
- :func:`proven_certificates`: PROVEN's Case (i) certificates (Weng et al., Eq. 6-8: the worst-case
  radius and, at each confidence gamma, the largest radius of uniform bounded noise whose
  Hoeffding bound on the misclassification probability is <= 1 - gamma), or the reason they do
  not apply;
- :func:`kri_components`: the KRI scenario components (corruptions and attacks) on RGB image
  inputs, per component the class-change and misclassification rates, or the reason they do not
  apply;
- :func:`vnncomp_result`: a decision in VNN-COMP's result-file format.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from nnassure.assess.data import AssessmentData, load_assessment_data
from nnassure.assess.model import AssessedModel, load_assessed_model
from nnassure.assess.paths import resolve_assessment as resolve
from nnassure.errors import InputFileError


def domain_of(assess: Any) -> tuple[float, float] | None:
    return None if assess.domain is None else (float(assess.domain[0]), float(assess.domain[1]))


def load_checked(assess: Any, manifest: dict[str, Any] | None = None) -> tuple[AssessedModel, AssessmentData]:
    """The model and its data; with ``manifest`` (assess_import's), refused unless every file has
    the hash recorded there (a file replaced after the import is not silently assessed)."""
    assessment = resolve(assess)
    model = load_assessed_model(assessment.model)
    data = load_assessment_data(assessment.data, model.input_shape, model.classes, domain_of(assess))
    if manifest is not None:
        from nnassure.io import file_sha256

        recorded = {**manifest["model"]["files"], str(assessment.data): manifest["data"]["sha256"]}
        for path, digest in recorded.items():
            if file_sha256(path) != digest:
                raise InputFileError(f"{path}: changed since assess_import checked it (SHA-256 differs); rerun the "
                                     "assessment")
    return model, data


def imported(cfg: Any) -> tuple[str, AssessedModel, AssessmentData]:
    """What a stage after assess_import works on: the model's name, and the model and data as
    :func:`load_checked` gives them against the import's manifest."""
    import json

    from nnassure.paths import ExperimentPaths

    name = resolve(cfg.assess).name
    manifest = json.loads(ExperimentPaths.from_config(cfg).assess_manifest(name).read_text())
    model, data = load_checked(cfg.assess, manifest)
    return name, model, data


def clean_accuracy(model: AssessedModel, data: AssessmentData, costs: Sequence[Sequence[float]] | None
                   ) -> tuple[dict[str, Any], pd.DataFrame]:
    """Accuracy, mean cost per sample and the confusion matrix (rows: label, columns: prediction)."""
    logits = model.logits(data.x)
    predictions = model.predict(logits)
    classes = model.classes
    matrix = np.asarray(costs, np.float64) if costs is not None else 1.0 - np.eye(classes)
    if matrix.shape != (classes, classes):
        raise InputFileError(f"assess.costs is {matrix.shape[0]}x{matrix.shape[1]}; the model has {classes} classes")
    confusion = np.zeros((classes, classes), np.int64)
    np.add.at(confusion, (data.labels, predictions), 1)
    per_sample = matrix[data.labels, predictions]
    summary = {"samples": len(data), "accuracy": float((predictions == data.labels).mean()),
               "mean_cost": float(per_sample.mean()), "confusion": confusion.tolist(),
               "costs": matrix.tolist(), "costs_given": costs is not None}
    frame = pd.DataFrame({"sample": np.arange(len(data)), "label": data.labels, "prediction": predictions,
                          "correct": predictions == data.labels, "cost": per_sample})
    return summary, frame


def _margin_spec(labels: np.ndarray, classes: int) -> torch.Tensor:
    """C (n, classes - 1, classes): rows e_label - e_o for every other class o."""
    spec = torch.zeros(len(labels), classes - 1, classes, dtype=torch.float64)
    for row, label in enumerate(labels):
        others = [o for o in range(classes) if o != label]
        spec[row, range(classes - 1), int(label)] = 1.0
        spec[row, range(classes - 1), others] = -1.0
    return spec


def verified_at(engine: Any, model: AssessedModel, x: np.ndarray, labels: np.ndarray, eps: np.ndarray, norm: str,
                method: str, domain: tuple[float, float] | None, batch_size: int) -> np.ndarray:
    """True where every input of the sample's eps-ball is classified as its label (sound bounds)."""
    out = np.zeros(len(x), bool)
    for start in range(0, len(x), batch_size):
        part = slice(start, start + batch_size)
        if model.outputs == 1:
            lower, upper = engine.bounds(x[part], eps[part], norm, method, domain)
            low, up = lower[:, 0].numpy(), upper[:, 0].numpy()
            out[part] = np.where(labels[part] == 1, low >= 0.0, up < 0.0)
        else:
            lower, _ = engine.bounds(x[part], eps[part], norm, method, domain,
                                     C=_margin_spec(labels[part], model.outputs))
            out[part] = (lower.numpy() > 0.0).all(axis=1)
    return out


def certify_samples(model: AssessedModel, data: AssessmentData, methods: Sequence[str], radius_method: str,
                    eps: dict[str, Sequence[float]], radius: bool, radius_max: dict[str, float], radius_steps: int,
                    domain: tuple[float, float] | None, batch_size: int, progress: bool = True
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-sample verdicts (one row per sample, norm, eps, method) and verified accuracy per
    (norm, method, eps); ``certified_radius`` on the rows of ``radius_method`` (NaN elsewhere).

    The radius is the largest bisection point on [0, radius_max] at which the sample was verified
    (so a sound certificate whatever the monotonicity of the bounds), 0 for a misclassified one.
    """
    from nnassure.certify.bounds import BoundEngine

    network, shape = model.bound_network()
    engine = BoundEngine(network, shape)
    x = np.asarray(data.x, np.float64).reshape(len(data.x), *shape)
    labels = data.labels
    predictions = model.predict(model.logits(data.x, dtype=torch.float64))
    correct = predictions == labels
    rows, summary = [], []
    jobs = [(norm, method, e) for norm in eps for method in methods for e in eps[norm]]
    bar = tqdm(total=len(jobs) + (len(eps) * (radius_steps + 1) if radius else 0), desc="assess certify",
               disable=not progress, leave=False)
    radii: dict[str, np.ndarray] = {}
    for norm in eps:
        if not radius:
            radii[norm] = np.full(len(x), np.nan)
            continue
        low, high = np.zeros(len(x)), np.full(len(x), float(radius_max[norm]))
        done = verified_at(engine, model, x, labels, high, norm, radius_method, domain, batch_size) & correct
        low[done] = high[done]
        bar.update()
        for _ in range(radius_steps):
            mid = (low + high) / 2
            ok = verified_at(engine, model, x, labels, mid, norm, radius_method, domain, batch_size) & ~done
            low, high = np.where(ok, mid, low), np.where(ok | done, high, mid)
            bar.update()
        radii[norm] = np.where(correct, low, 0.0)
    for norm, method, e in jobs:
        verified = verified_at(engine, model, x, labels, np.full(len(x), float(e)), norm, method, domain,
                               batch_size) & correct
        rows.append(pd.DataFrame({
            "sample": np.arange(len(x)), "label": labels, "prediction": predictions, "norm": norm,
            "eps": float(e), "method": method, "verified": verified,
            "certified_radius": radii[norm] if method == radius_method else np.nan}))
        summary.append({"norm": norm, "method": method, "eps": float(e), "verified_accuracy": float(verified.mean()),
                        "accuracy": float(correct.mean())})
        bar.update()
    bar.close()
    return pd.concat(rows, ignore_index=True), pd.DataFrame(summary)


def proven_not_applicable(model: AssessedModel) -> str | None:
    """Why PROVEN's certificates are not computed for ``model``, or None when they are."""
    unsupported = [a for a in model.activations if a not in ("relu", "tanh", "sigmoid")]
    if unsupported:
        return f"activation {unsupported[0]} has no linear relaxation in the bound engine PROVEN's bounds come from"
    if len(model.input_shape) != 1 and model.source == "native":
        return "a native model with a non-flat input"
    return None


def proven_certificates(model: AssessedModel, data: AssessmentData, samples: int, gammas: Sequence[float],
                        settings: Any, progress: bool = True) -> dict[str, Any]:
    """PROVEN's worst-case and Case (i) radii (Linf) of the first ``samples`` correctly classified
    points; ``{"skipped": reason}`` where they do not apply (:func:`proven_not_applicable`)."""
    reason = proven_not_applicable(model)
    if reason is not None:
        return {"skipped": reason}
    from nnassure.proven.experiment import certify_model

    predictions = model.predict(model.logits(data.x, dtype=torch.float64))
    chosen = np.flatnonzero(predictions == data.labels)[:samples]
    if not len(chosen):
        return {"skipped": "no sample of the data is classified correctly"}
    network, _ = model.bound_network()
    x = data.x[chosen].reshape(len(chosen), -1).astype(np.float64)
    relaxation = ["crown"]
    started = time.perf_counter()
    run = certify_model(network, x, predictions[chosen], model.outputs, relaxation, list(gammas), False, settings,
                        sample_ids=chosen, progress=progress)
    frame = run.samples
    means = frame.groupby(["certificate", "gamma"])["certified_eps"].mean().reset_index()
    return {"samples": [int(i) for i in chosen], "seconds": time.perf_counter() - started,
            "rows": frame.to_dict(orient="records"), "mean_certified_eps": means.to_dict(orient="records")}


def kri_not_applicable(model: AssessedModel, domain: tuple[float, float] | None) -> str | None:
    """Why the KRI scenarios do not apply to ``model``, or None: they perturb RGB images in [0, 1]."""
    shape = model.input_shape
    if len(shape) != 3 or shape[0] != 3 or min(shape[1:]) < 8:
        return (f"the model's input {tuple(shape)} is not an RGB image (3, H, W) with H, W >= 8, which the "
                "corruptions and attacks of the KRI scenarios perturb")
    if domain != (0.0, 1.0):
        return "the scenarios' parameters are for pixel values in [0, 1]: set assess.domain=[0,1]"
    return None


def kri_components(model: AssessedModel, data: AssessmentData, scenarios: dict[str, Any], samples: int, draws: int,
                   seed: int, domain: tuple[float, float] | None) -> dict[str, Any]:
    """Per KRI scenario component (Schwerdtner et al., Eq. 1 with the class-change and the
    misclassification loss): the share of perturbed draws of the first ``samples`` images whose
    class differs from the clean image's, and from the label. Estimates on these samples."""
    reason = kri_not_applicable(model, domain)
    if reason is not None:
        return {"skipped": reason}
    from nnassure.kri.infer import infer_scenario

    images = np.ascontiguousarray(data.x[:samples].transpose(0, 2, 3, 1))
    labels = data.labels[:samples]
    classes = [str(c) for c in range(model.classes)]
    network = model.network if model.outputs > 1 else None
    if network is None:
        return {"skipped": "a one-logit model: the KRI attacks need one logit per class"}
    rows = []
    for name, scenario in scenarios.items():
        started = time.perf_counter()
        ds = infer_scenario(network, images, labels, name, scenario, draws, seed, classes, progress=False)
        predicted = ds["logits"].argmax("class").values
        clean = ds["clean_logits"].argmax("class").values[:, None]
        rows.append({"scenario": name, "family": str(scenario["family"]), "kind": str(scenario["kind"]),
                     "draws": int(ds.sizes["draw"]), "samples": int(ds.sizes["sample"]),
                     "class_change": float((predicted != clean).mean()),
                     "misclassification": float((predicted != labels[:, None]).mean()),
                     "seconds": time.perf_counter() - started})
    return {"rows": rows}


def vnncomp_result(decision: Any) -> str:
    """VNN-COMP's result file: ``unsat``/``sat``/``unknown``/``timeout``/``error``, and for ``sat`` the
    counterexample as ``((X_0 v) ... (Y_0 v) ...)``."""
    from nnassure.assess.decide import VNNCOMP_RESULTS

    lines = [VNNCOMP_RESULTS[decision.result]]
    if decision.result == "violated":
        values = [f"(X_{i} {float(v)!r})" for i, v in enumerate(decision.counterexample)]
        values += [f"(Y_{j} {float(v)!r})" for j, v in enumerate(decision.output)]
        lines.append("(" + "\n ".join(values) + ")")
    return "\n".join(lines) + "\n"
