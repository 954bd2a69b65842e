"""Key risk indicators (Schwerdtner et al., "Risk Assessment for Machine Learning Models").

The risk of deploying a classifier f in an environment (Eq. 1) is estimated by Monte Carlo over
test images x_j and perturbations delta_{k,l} of scenario components k, and stored in the risk
tensor R[loss, sample, scenario, draw] = L_i(f(x_j + delta_{k,l})) (Sec. 4), with
R_adv[loss, sample, attack] for attacks; KRIs are filtered and aggregated from it (Eq. 2).

Modules: ``kinds`` (the scenario kinds and their parameters; light, read when the config is
composed), ``model`` (the CNNs of the zoo), ``training`` (the robustifying measures of Table 1),
``scenarios`` (corruptions by albumentations, attacks by ART, seeded per cell), ``infer`` (one
(model, scenario) inference file), ``tensor`` (the merged tensor and the losses), ``indicators``
(Eq. 2, confidence intervals, deployment scenarios) and ``certified`` (PROVEN's bounds).

This package's ``__init__`` imports nothing, so that composing the config stays cheap.
"""
