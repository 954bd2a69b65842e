"""The kri config group: scenario components, deployment weights and the per-job digests that make
adding a scenario rerun only its own jobs."""

from __future__ import annotations

import copy

import pytest
from omegaconf import OmegaConf

from nnassure import stage_keys
from nnassure.config import compose, validate
from nnassure.errors import ConfigError
from nnassure.kri.kinds import KINDS, check_params

FOG2 = "+kri.scenarios.fog2={family:weather,kind:fog,params:{coefficient:[0.5,0.7]}}"


@pytest.fixture(scope="module")
def smoke() -> dict:
    return OmegaConf.to_container(compose(["experiment=smoke"]))


def _refused(data: dict, edit, message: str) -> None:
    data = copy.deepcopy(data)
    edit(data["kri"])
    with pytest.raises(ConfigError) as info:
        validate(data)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda k: k["scenarios"]["fog"].update(kind="mist"),
     "kri.scenarios.fog.kind: unknown scenario kind 'mist': expected one of brightness, "),
    (lambda k: k["scenarios"]["fog"].update(family="sensor"),
     "invalid config value kri.scenarios.fog.family='sensor': expected 'weather', the family of kind 'fog'"),
    (lambda k: k["scenarios"]["fog"].update(family="climate"),
     "invalid config value kri.scenarios.fog.family='climate': expected one of sensor, random_noise, weather, "
     "adversarial"),
    (lambda k: k["scenarios"]["fog"]["params"].update(density=1),
     "kri.scenarios.fog.params.density: unknown parameter of a fog scenario: expected coefficient, alpha"),
    (lambda k: k["scenarios"]["fog"]["params"].update(coefficient=[0.6, 0.2]),
     "kri.scenarios.fog.params.coefficient=[0.6, 0.2]: expected a range [lo, hi] with lo <= hi"),
    (lambda k: k["scenarios"]["fog"]["params"].update(coefficient=0.3),
     "kri.scenarios.fog.params.coefficient=0.3: expected a range [lo, hi]"),
    (lambda k: k["scenarios"]["gaussian"]["params"].update(sigma=-0.1),
     "kri.scenarios.gaussian.params.sigma=-0.1: expected a value in [0.0, 1.0]"),
    (lambda k: k["scenarios"]["fgsm"].update(draws=3),
     "invalid config value kri.scenarios.fgsm.draws=3: expected null or 1"),
    (lambda k: k["deployments"]["urban_rain"].update(fog=0.6),
     "invalid config value kri.deployments.urban_rain="),
    (lambda k: k["deployments"]["urban_rain"].update(fog=-0.5, brightness=1.3),
     "invalid config value kri.deployments.urban_rain.fog=-0.5: expected a finite number >= 0"),
    (lambda k: k["deployments"]["urban_rain"].update(snow=0.0),
     "invalid config value kri.deployments.urban_rain.snow=0.0: expected a weight of a scenario of kri.scenarios"),
    (lambda k: k["severity"]["costs"].update(stop={"yield": 3.0}),
     "invalid config value kri.severity.costs.stop.yield"),
    (lambda k: k["variants"]["GCE"].update(distillation_temperature=10.0),
     "invalid config value kri.variants.GCE.gce_alpha=0.2: expected null with distillation_temperature set"),
    (lambda k: k["variants"]["GCE"].update(distillation_temperature=1.0),
     "invalid config value kri.variants.GCE.distillation_temperature=1.0: expected a temperature > 1"),
    (lambda k: k["variants"]["NNet"].update(adversarial={"attack": "cw"}),
     "invalid config value kri.variants.NNet.adversarial.attack='cw': expected one of fgsm, pgd"),
    (lambda k: k["certify"].update(samples=1000),
     "invalid config value kri.certify.samples=1000: expected at most kri.samples (24)"),
    (lambda k: k["models"].append("NNet"), "invalid config value kri.models="),
    (lambda k: k["certify"].update(scenarios=["fog"]),
     "invalid config value kri.certify.scenarios[0]='fog': expected a certifiable scenario of kri.scenarios "
     "(gaussian)"),
])
def test_bad_kri_values_fail_in_one_line(smoke, edit, message):
    _refused(smoke, edit, message)


def test_params_are_completed_with_the_kinds_defaults():
    assert check_params("pgd", {"eps": 0.01}, "k") == {"eps": 0.01, "step": 0.0075, "iterations": 10}
    cfg = compose(["experiment=smoke", FOG2])
    assert cfg.kri.scenarios.fog2.params == {"coefficient": [0.5, 0.7], "alpha": 0.08}


def test_every_kind_has_a_family_of_the_paper_and_valid_defaults():
    for name, kind in KINDS.items():
        assert kind.family in ("sensor", "random_noise", "weather", "adversarial")
        check_params(name, {}, f"kri.scenarios.{name}")
        assert (kind.norm is not None) == kind.adversarial
    assert {n for n, k in KINDS.items() if k.certifiable} == {"gaussian", "uniform"}


def test_a_job_digest_reads_only_its_own_variant_and_scenario():
    before = compose(["experiment=smoke"])
    after = compose(["experiment=smoke", FOG2])
    edited = compose(["experiment=smoke", "kri.scenarios.fog.params.alpha=0.1"])
    infer = {"kri.variant": "NNet", "kri.scenario": "brightness"}
    assert stage_keys.digest(before, "kri_infer", infer) == stage_keys.digest(after, "kri_infer", infer)
    assert stage_keys.digest(before, "kri_infer", infer) == stage_keys.digest(edited, "kri_infer", infer)
    fog = {"kri.variant": "NNet", "kri.scenario": "fog"}
    assert stage_keys.digest(before, "kri_infer", fog) != stage_keys.digest(edited, "kri_infer", fog)
    for stage in ("kri_data", "kri_train"):
        job = {"kri.variant": "GCE"}
        assert stage_keys.digest(before, stage, job) == stage_keys.digest(after, stage, job)
    assert stage_keys.digest(before, "kri_tensor") != stage_keys.digest(after, "kri_tensor")
    # a variant's digest follows its own entry and its capacity, not another variant's
    wider = compose(["experiment=smoke", "kri.capacities.large.hidden=256"])
    assert stage_keys.digest(before, "kri_train", {"kri.variant": "NNet"}) == stage_keys.digest(
        wider, "kri_train", {"kri.variant": "NNet"})
    assert stage_keys.digest(before, "kri_train", {"kri.variant": "NNetLarge"}) != stage_keys.digest(
        wider, "kri_train", {"kri.variant": "NNetLarge"})


def test_a_job_stage_run_by_hand_needs_its_wildcards():
    with pytest.raises(ConfigError, match=r"stage kri_infer works on one scenario: set kri.scenario=<name>"):
        stage_keys.project(compose(["experiment=smoke", "kri.variant=NNet"]), "kri_infer")
    projected = stage_keys.project(compose(["experiment=smoke", "kri.variant=NNet", "kri.scenario=fog"]),
                                   "kri_infer")
    assert list(projected.kri.scenarios) == ["fog"]
    with pytest.raises(Exception, match="brightness"):
        _ = projected.kri.scenarios.brightness


def test_a_key_an_entry_leaves_at_its_default_is_set_with_plus():
    with pytest.raises(ConfigError, match=r"^config key kri.scenarios.fog.draws is not set in conf/: add it with "
                                          r"\+kri.scenarios.fog.draws=<value>$"):
        compose(["experiment=smoke", "kri.scenarios.fog.draws=2"])
    with pytest.raises(ConfigError, match=r"^unknown config key kri.scenarios.fog.drawz: expected one of family, "):
        compose(["experiment=smoke", "kri.scenarios.fog.drawz=2"])
    assert compose(["experiment=smoke", "+kri.scenarios.fog.draws=2"]).kri.scenarios.fog.draws == 2
