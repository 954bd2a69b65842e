"""nnassure.config.compose: the experiments compose, and every bad value fails naming its key."""

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import ReadonlyConfigError

from nnassure.config import compose
from nnassure.errors import ConfigError


def test_default_composes():
    cfg = compose()
    assert cfg.grid.name == "quick"  # experiment=quick is the default
    assert cfg.dataset.name == "a"
    assert list(cfg.certify.norms) == ["linf", "l2"]
    assert cfg.certify.method in cfg.certify.methods
    assert OmegaConf.is_readonly(cfg)
    with pytest.raises(ReadonlyConfigError):
        cfg.train.lr = 1.0


@pytest.mark.parametrize(
    ("experiment", "grid_name", "n_samples", "methods"),
    [
        ("smoke", "smoke", 300, ["crown"]),
        ("quick", "quick", 1000, ["crown"]),
        ("paper", "paper", 1000, ["ibp", "crown", "alpha-crown"]),
    ],
)
def test_experiments_compose(experiment, grid_name, n_samples, methods):
    cfg = compose([f"experiment={experiment}"])
    assert cfg.grid.name == grid_name
    assert cfg.dataset.n_samples == n_samples
    assert list(cfg.certify.methods) == methods


def test_dataset_group_and_overrides():
    cfg = compose(["dataset=c", "train.cost_fn=10", "certify.eps=[0.5]", "report.fig2_eps=0.5",
                   "report.fig3_eps=0.5"])
    assert (cfg.dataset.name, cfg.dataset.n_samples, cfg.dataset.seed) == ("c", 10000, 13)
    assert cfg.dataset.minority_fraction == pytest.approx(0.0909)
    assert cfg.train.cost_fn == 10.0
    assert list(cfg.certify.eps) == [0.5]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("certify.eps=[-0.1]", "certify.eps"),
        ("certify.norms=[l3]", "certify.norms"),
        ("train.cost_fn=0", "train.cost_fn"),
        ("train.cost_fn=-1", "train.cost_fn"),
        ("train.cost_fn=nan", "train.cost_fn"),
        ("model.depth=5", "model.depth"),
        ("model.depth=0", "model.depth"),
        ("dataset=d", "dataset"),
        ("grid.datasets=[x]", "grid.datasets"),
        ("foo=1", "foo"),
        ("train.lr=abc", "train.lr"),
        ("certify.method=ibp", "certify.method"),  # not in certify.methods
        ("proven.models=[digits_swish_2x20]", "proven.models[0]"),
        ("proven.models=[mnist_relu_2x20]", "proven.models[0]"),
        ("proven.models=[digits_relu_9x20]", "proven.models[0]"),
        ("proven.gaussian_models=[digits_relu_7x7]", "proven.gaussian_models[0]"),
        ("proven.gammas=[1.0]", "proven.gammas[0]"),
        ("proven.gammas=[0]", "proven.gammas[0]"),
        ("proven.table2_samples=1000", "proven.table2_samples"),
        ("proven.eps_max=0.00001", "proven.eps_max"),
        ("proven.guess_factor=1", "proven.guess_factor"),
        ("proven.model=digits", "proven.model"),
        ("images.split=[0.5,0.5,0.5]", "images.split"),
        ("images.sign_classes=[stop,yield]", "images.sign_classes[1]"),
        ("images.signs_size=4", "images.signs_size"),
    ],
)
def test_bad_values_raise_config_error_naming_the_key(override, key):
    with pytest.raises(ConfigError) as info:
        compose([override])
    message = str(info.value)
    assert key in message
    assert "\n" not in message  # one-line message for the user
