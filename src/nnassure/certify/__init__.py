"""LiRPA verification of Sec. 3.2: bounds, verified samples, certified radii, counterexample hunts."""

from nnassure.certify.bounds import BoundEngine
from nnassure.certify.verify import CertificationResult, certified_radius, certify_dataset, is_verified

__all__ = ["BoundEngine", "CertificationResult", "certified_radius", "certify_dataset", "is_verified"]
