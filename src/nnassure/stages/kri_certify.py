"""kri_certify stage: PROVEN's certified upper bound on the class-change probability of one model
under one certifiable scenario (Gaussian or uniform noise), per KRI sample
(:mod:`nnassure.kri.certified`).

The samples are the first ``kri.certify.samples`` of the KRI samples (the first ``kri.samples``
test images in stored order; sample id = position). Output: the Parquet file
``paths.kri_certificate(variant, scenario)`` with the columns of
:data:`nnassure.kri.certified.COLUMNS`, written atomically: the bound, the certificate's own
Monte Carlo (``kri.certify.mc_draws`` fresh draws per image, cells seeded with kri.seed + 2^32 so
they are not the risk tensor's) and the provenance the report checks (scenario entry, certify
settings, the model file's sha256). A scenario that is not certifiable is refused with one line.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from omegaconf import DictConfig, OmegaConf

from nnassure.errors import ConfigError, InputFileError
from nnassure.io import write_parquet
from nnassure.paths import ExperimentPaths
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def kri_samples(path: object, samples: int) -> np.ndarray:
    """The KRI samples: the first ``samples`` test images in stored order, NHWC float32."""
    from nnassure.data.images import load_image_dataset

    images, _ = load_image_dataset(path).arrays("test", flatten=False)
    if len(images) < samples:
        raise InputFileError(f"{path}: {len(images)} test images, fewer than kri.samples = {samples}")
    return images[:samples]


def main(cfg: DictConfig) -> None:
    from nnassure.kri.certified import (
        DESCRIPTIONS,
        MC_SEED_OFFSET,
        KriCertifier,
        NoiseModel,
        certifiable,
        certify_samples,
        certify_settings,
        model_digest,
        monte_carlo_changes,
    )
    from nnassure.kri.infer import plain, scenario_json
    from nnassure.kri.model import check_images, load_kri_model, predict_logits, to_model_input

    k = cfg.kri
    if k.variant is None or k.scenario is None:
        raise ConfigError("kri_certify works on one model and one scenario: set kri.variant=<name> kri.scenario=<name>")
    scenario = k.scenarios[k.scenario]
    if not certifiable(str(scenario.kind)):
        raise ConfigError(f"kri.scenario={k.scenario}: a {scenario.kind} scenario is not certifiable (PROVEN covers "
                          "gaussian and uniform noise)")
    noise = NoiseModel.of_scenario(str(scenario.kind), OmegaConf.to_container(scenario.params, resolve=True))
    paths = ExperimentPaths.from_config(cfg)
    images = kri_samples(paths.kri_images, int(k.samples))[: int(k.certify.samples)]
    stem = paths.kri_model_stem(str(k.variant))
    model = load_kri_model(stem).model
    check_images(model, images, str(paths.kri_images))
    inputs = to_model_input(images)
    predicted = predict_logits(model, inputs).argmax(1)
    with tracked_run(cfg, "kri_certify", f"{k.variant}/{k.scenario}") as tracker:
        started = time.perf_counter()
        certifier = KriCertifier(model, str(k.certify.method), int(k.certify.batch_size))
        frame = certify_samples(certifier, inputs, noise, [float(s) for s in k.certify.box_sigmas], predicted,
                                progress=True)
        seconds = time.perf_counter() - started
        draws, mc_seed = int(k.certify.mc_draws), int(k.seed) + MC_SEED_OFFSET
        changes, mc_seconds = monte_carlo_changes(model, str(k.scenario), plain(scenario), images, predicted, draws,
                                                  mc_seed, progress=True)
        frame = frame.assign(mc_changes=changes, mc_draws=np.full(len(frame), draws, np.int64),
                             mc_seed=np.full(len(frame), mc_seed, np.int64), mc_seconds=mc_seconds,
                             scenario_config=scenario_json(scenario),
                             certify_settings=certify_settings(plain(k.certify)),
                             model_sha256=model_digest(stem))
        tracker.summary({"bound/mean": float(frame["bound"].mean()), "seconds": seconds,
                         "mc/changes": int(changes.sum()), "mc/seconds": float(mc_seconds.sum())})
    write_parquet(frame, paths.kri_certificate(str(k.variant), str(k.scenario)), DESCRIPTIONS)
    print(f"kri_certify {k.variant}/{k.scenario}: {len(frame)} images, mean bound {frame['bound'].mean():.4f}, "
          f"{int((frame['bound'] < 1).sum())} below 1, {seconds:.1f} s; Monte Carlo {int(changes.sum())} class "
          f"changes in {draws * len(frame)} draws, {mc_seconds.sum():.1f} s", file=sys.stderr)


if __name__ == "__main__":
    run_stage("kri_certify", main)
