"""Shared fixtures: a tiny data set and seeded random ReLU MLPs (2 inputs, 1 logit)."""

import pytest
import torch
from torch import nn

from nnassure.data import generate_dataset, stratified_split


@pytest.fixture(scope="session")
def small_frame():
    """200 points of data set B (balanced) with a stratified 80/20 train/val split."""
    return stratified_split(generate_dataset("b", 200, 0.5, 0.004, 0), 0.2, 0)


def make_mlp(widths, seed=0):
    """nn.Sequential(Linear(2, w1), ReLU, ..., Linear(w_last, 1)) with seeded default init, in eval mode."""
    torch.manual_seed(seed)
    layers = []
    fan_in = 2
    for width in widths:
        layers += [nn.Linear(fan_in, width), nn.ReLU()]
        fan_in = width
    layers.append(nn.Linear(fan_in, 1))
    return nn.Sequential(*layers).eval()


@pytest.fixture(scope="session")
def random_mlp():
    """Factory: ``random_mlp([16, 8], seed=3)`` builds a seeded MLP with those hidden widths."""
    return make_mlp


@pytest.fixture
def search_trial_wiring(monkeypatch):
    """Until config.py, paths.py and stage_keys.py declare the search_trial stage (search.trial,
    ExperimentPaths.search_trial, STAGES["search_trial"]), stand-ins for what they will declare;
    once they do, this fixture changes nothing and the tests run on the real declarations."""
    from omegaconf import OmegaConf

    from nnassure import stage_keys
    from nnassure.config import SearchConfig
    from nnassure.paths import ExperimentPaths, _cost_name
    from nnassure.stages import _common

    if not hasattr(ExperimentPaths, "search_trial"):
        def search_trial(self, dataset, cost, trial):
            return self.root / "search" / "trials" / f"{dataset}_c{_cost_name(cost)}" / f"{trial}.json"

        monkeypatch.setattr(ExperimentPaths, "search_trial", search_trial, raising=False)
    if "search_trial" not in stage_keys.STAGES:
        search = stage_keys.STAGES["search"]
        monkeypatch.setitem(stage_keys.STAGES, "search_trial", stage_keys.StageKeys(
            reads=search.reads, job=(*search.job, "search.trial"), by_hand=search.by_hand))
    if "trial" not in SearchConfig.model_fields:
        real_compose = _common.compose

        def compose(overrides=()):
            trials = [o.split("=", 1)[1] for o in overrides if o.startswith("search.trial=")]
            cfg = real_compose([o for o in overrides if not o.startswith("search.trial=")])
            data = OmegaConf.to_container(cfg)
            data["search"]["trial"] = int(trials[-1]) if trials else None
            return OmegaConf.create(data)

        monkeypatch.setattr(_common, "compose", compose)
