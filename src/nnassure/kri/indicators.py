"""Key risk indicators from the risk tensor (Schwerdtner et al., Eq. 1, Eq. 2, Sec. 5), with
confidence intervals.

Every KRI is a mean over the test images of a per-image value:

- a scenario component k (a corruption): rho_k = (1 / n) sum_j (1 / d_k) sum_l R[i, j, k, l]
  (Eq. 1's Monte-Carlo estimate, the mean over that scenario's d_k draws per image; draws beyond
  d_k are NaN in the tensor and ignored);
- an attack k: rho_k = (1 / n) sum_j R_adv[i, j, k] (one perturbation per image, Sec. 4);
- a noise family F: the mean of its components' KRIs, each component weighted alike. The paper's
  rho_sc sums the losses over every draw of every sensor distribution; with equal draws per
  component that is this mean (up to the constant the paper leaves out), and with unequal draws it
  keeps a component with many draws from outweighing one with few;
- the final risk: the mean of the family KRIs (Sec. 5: "the mean value over all KRIs", at the
  level of the families, as Fig. 5 shows them), i.e. Eq. 2's convex combination with alpha_k =
  1 / (families * components of k's family);
- a deployment scenario: sum_k alpha_k rho_k with the weights of ``kri.deployments[name]`` (Eq. 2),
  checked again at use (every name a component of the tensor, weights >= 0 summing to 1).

Confidence intervals. The percentile bootstrap over test images: ``resamples`` resamples of the
sample ids with replacement (seeded), the *same* resample for every model, loss and component, so
a family, the final risk or a deployment risk (linear in the per-image values) is the same
combination of the components' replicates and keeps their correlation. Each resample is a vector
of counts, so the replicates are one matrix product (no (resamples, samples) copies of the data).

For comparing with PROVEN's certificates (which are conditional on the images): a Clopper-Pearson
interval on the pooled 0/1 draws of the certified images. Given the images, the pooled count is a
sum of binomials with per-image rates p_j (Poisson binomial with mean n d p-bar); its tails are
no heavier than those of Binomial(n d, p-bar) beyond the mean (Hoeffding 1956), so the exact
binomial interval covers p-bar = the mean of the images' class-change probabilities, which a
sound certified mean bound is never below.

Written by hand: the bootstrap is a few lines of NumPy (scipy.stats.bootstrap would resample each
statistic separately and lose the shared resample); the CP interval is scipy's beta quantiles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import beta

from nnassure.errors import ConfigError, InputFileError

LEVELS = ("component", "family", "final")


@dataclass(frozen=True)
class Components:
    """Per-image values of every component: ``values`` (loss, model, component, sample), float64."""

    values: np.ndarray
    losses: tuple[str, ...]
    models: tuple[str, ...]
    names: tuple[str, ...]
    families: tuple[str, ...]  # per component
    kinds: tuple[str, ...]  # per component
    samples: np.ndarray  # sample ids

    @property
    def family_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.families))

    def weights(self, level: str, name: str | None = None) -> np.ndarray:
        """Eq. 2's alpha over components for a component, a family or the final risk."""
        alpha = np.zeros(len(self.names))
        if level == "component":
            alpha[self.names.index(str(name))] = 1.0
        elif level == "family":
            members = np.array([f == name for f in self.families])
            if not members.any():
                raise ConfigError(f"unknown noise family {name!r}: the tensor has {', '.join(self.family_names)}")
            alpha[members] = 1.0 / members.sum()
        elif level == "final":
            for family in self.family_names:
                alpha += self.weights("family", family) / len(self.family_names)
        else:
            raise ValueError(f"unknown KRI level {level!r}; expected one of {', '.join(LEVELS)}")
        return alpha

    def deployment_weights(self, weights: Mapping[str, float], name: str = "deployment") -> np.ndarray:
        """alpha of a deployment scenario, refused unless every name is a component of the tensor
        and the weights are non-negative and sum to 1."""
        alpha = np.zeros(len(self.names))
        for component, weight in weights.items():
            if component not in self.names:
                raise ConfigError(f"kri.deployments.{name}.{component}: not a scenario of the risk tensor "
                                  f"({', '.join(self.names)})")
            if not weight >= 0:
                raise ConfigError(f"kri.deployments.{name}.{component}={weight!r}: expected a weight >= 0")
            alpha[self.names.index(component)] = float(weight)
        if abs(alpha.sum() - 1.0) > 1e-9:
            raise ConfigError(f"kri.deployments.{name}: weights sum to {alpha.sum():.12g}, expected 1")
        return alpha


def components(tensor: xr.Dataset, models: Sequence[str] | None = None,
               samples: Sequence[int] | None = None) -> Components:
    """The per-image component values of the tensor (corruptions first, then attacks), for the
    given models (default: all) and sample ids (default: all). Reads only those slices."""
    models = list(tensor["model"].values if models is None else models)
    missing = sorted(set(models) - {str(m) for m in tensor["model"].values})
    if missing:
        have = ", ".join(map(str, tensor["model"].values))
        raise InputFileError(f"risk tensor has no model {missing[0]!r} (it has {have}): run kri_tensor again")
    select = {"model": models} if samples is None else {"model": models, "sample": list(samples)}
    parts, names, families, kinds = [], [], [], []
    if "risk" in tensor and tensor.sizes.get("scenario", 0):
        risk = tensor["risk"].sel(select).transpose("loss", "model", "scenario", "sample", "draw").values
        with np.errstate(invalid="ignore"):
            counts = np.isfinite(risk).sum(-1)
            per_sample = np.where(counts > 0, np.nansum(risk, -1) / np.maximum(counts, 1), np.nan)
        parts.append(per_sample)
        names += [str(s) for s in tensor["scenario"].values]
        families += [str(f) for f in tensor["scenario_family"].values]
        kinds += [str(f) for f in tensor["scenario_kind"].values]
    if "risk_adv" in tensor and tensor.sizes.get("attack", 0):
        parts.append(tensor["risk_adv"].sel(select).transpose("loss", "model", "attack", "sample").values)
        names += [str(s) for s in tensor["attack"].values]
        families += [str(f) for f in tensor["attack_family"].values]
        kinds += [str(f) for f in tensor["attack_kind"].values]
    if not parts:
        raise InputFileError("risk tensor has no scenario and no attack")
    values = np.concatenate(parts, axis=2).astype(np.float64)
    if not np.isfinite(values).all():
        raise InputFileError("risk tensor has a sample with no finite draw of some scenario")
    ids = np.asarray(tensor["sample"].values if samples is None else samples, np.int64)
    return Components(values, tuple(str(v) for v in tensor["loss"].values), tuple(map(str, models)), tuple(names),
                      tuple(families), tuple(kinds), ids)


def bootstrap_counts(samples: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, samples) counts of each sample id in each resample (with replacement)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, samples, size=(resamples, samples))
    counts = np.zeros((resamples, samples))
    np.add.at(counts, (np.arange(resamples)[:, None], idx), 1.0)
    return counts


@dataclass(frozen=True)
class Replicates:
    """Component KRIs (loss, model, component) and their bootstrap replicates (..., resamples)."""

    comps: Components
    estimate: np.ndarray
    replicates: np.ndarray
    confidence: float

    def combine(self, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Estimate and percentile CI (loss, model) of sum_k alpha_k rho_k."""
        estimate = np.einsum("lmk,k->lm", self.estimate, alpha)
        reps = np.einsum("lmkb,k->lmb", self.replicates, alpha)
        tail = (1.0 - self.confidence) / 2.0
        low, high = np.quantile(reps, [tail, 1.0 - tail], axis=-1)
        return estimate, low, high


def replicates(comps: Components, resamples: int, confidence: float, seed: int = 0) -> Replicates:
    n = comps.values.shape[-1]
    counts = bootstrap_counts(n, resamples, seed) / n
    estimate = comps.values.mean(-1)
    reps = np.einsum("lmks,bs->lmkb", comps.values, counts)
    return Replicates(comps, estimate, reps, float(confidence))


def kri_frame(reps: Replicates) -> pd.DataFrame:
    """Every KRI (component, family, final) per loss and model with its bootstrap CI: columns
    loss, model, level, name, family, kri, ci_low, ci_high."""
    comps = reps.comps
    rows = []
    targets = [("component", name, fam) for name, fam in zip(comps.names, comps.families, strict=True)]
    targets += [("family", fam, fam) for fam in comps.family_names] + [("final", "final", "")]
    for level, name, family in targets:
        estimate, low, high = reps.combine(comps.weights(level, name))
        for i, loss in enumerate(comps.losses):
            for j, model in enumerate(comps.models):
                rows.append({"loss": loss, "model": model, "level": level, "name": name, "family": family,
                             "kri": float(estimate[i, j]), "ci_low": float(low[i, j]), "ci_high": float(high[i, j])})
    return pd.DataFrame(rows)


def deployment_frame(reps: Replicates, deployments: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """Deployment risks (Eq. 2) per deployment, loss and model with their bootstrap CI."""
    rows = []
    for name, weights in deployments.items():
        estimate, low, high = reps.combine(reps.comps.deployment_weights(weights, name))
        for i, loss in enumerate(reps.comps.losses):
            for j, model in enumerate(reps.comps.models):
                rows.append({"deployment": name, "loss": loss, "model": model, "risk": float(estimate[i, j]),
                             "ci_low": float(low[i, j]), "ci_high": float(high[i, j])})
    return pd.DataFrame(rows, columns=["deployment", "loss", "model", "risk", "ci_low", "ci_high"])


def clopper_pearson(successes: int, trials: int, confidence: float) -> tuple[float, float]:
    """The exact (Clopper-Pearson) two-sided interval of a binomial proportion."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials > 0, got {successes} of {trials}")
    tail = (1.0 - confidence) / 2.0
    low = 0.0 if successes == 0 else float(beta.ppf(tail, successes, trials - successes + 1))
    high = 1.0 if successes == trials else float(beta.ppf(1.0 - tail, successes + 1, trials - successes))
    return low, high


def pooled_draws(tensor: xr.Dataset, model: str, scenario: str, samples: Sequence[int],
                 loss: str = "class_change") -> tuple[int, int]:
    """(count of 1s, number of draws) of a 0/1 loss over the draws of ``samples`` under a scenario."""
    cells = tensor["risk"].sel(loss=loss, model=model, scenario=scenario, sample=list(samples)).values
    cells = cells[np.isfinite(cells)]
    if not np.isin(cells, (0.0, 1.0)).all():
        raise ValueError(f"loss {loss} is not 0/1: no binomial interval")
    return int(cells.sum()), int(cells.size)
