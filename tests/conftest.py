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
