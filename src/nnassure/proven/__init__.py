"""PROVEN: probabilistic robustness certificates from CROWN's linear bounds (Weng et al.)."""

from nnassure.proven.bisection import (
    BisectionSettings,
    Criterion,
    RiskEvaluator,
    bisect_largest_eps,
    margin_specification,
    proven_eps,
    worst_case_eps,
)
from nnassure.proven.certificates import (
    CERTIFICATES,
    NOISE_CASES,
    certified_risk,
    classifier_risk,
    gaussian_risk,
    hoeffding_risk,
    mass_outside_box,
)
from nnassure.proven.noise import noise_std, sample_noise, spatial_correlation

__all__ = [
    "CERTIFICATES",
    "NOISE_CASES",
    "BisectionSettings",
    "Criterion",
    "RiskEvaluator",
    "bisect_largest_eps",
    "certified_risk",
    "classifier_risk",
    "gaussian_risk",
    "hoeffding_risk",
    "margin_specification",
    "mass_outside_box",
    "noise_std",
    "proven_eps",
    "sample_noise",
    "spatial_correlation",
    "worst_case_eps",
]
