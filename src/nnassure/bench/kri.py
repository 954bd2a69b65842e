"""What the KRI family's risk tensor costs, and what adding a scenario costs, from the experiment's
own files.

``python -m nnassure.bench.kri [key=value ...] [--scenario NAME]`` reads the composed experiment's
KRI images, models, inference files, tensor and the benchmark files its jobs wrote (``make run``
makes them) and writes <results_dir>/bench/kri.md:

* inferences per second per scenario kind: every kri_infer job's cells (samples x draws, plus the
  clean images) over its wall time as the job measured it (Snakemake's benchmark file, process
  start-up included), beside the rate of perturbation and inference alone (the file's own
  ``seconds``);
* adding one scenario (Schwerdtner et al., Sec. 4: "scenario components can be added later"): a
  copy of ``--scenario`` under a new name (so its draws are new) is inferred for every model, then
  the tensor is merged again from the stored files plus the new ones. The target is that adding it
  costs its own inferences within 10 %: (inferences + merge) / inferences <= 1.10, measured in this
  process. Beside it, what recomputing the whole tensor costs: every kri_infer and the kri_tensor
  job of the run, from their benchmark files;
* the store: the tensor's size on disk and in memory, and the inference files'.

Nothing is written under the experiment's results: the new scenario's files go to a temporary
directory. Ratios are reported, never asserted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from nnassure.bench._common import bench_main, require
from nnassure.errors import ConfigError
from nnassure.paths import ExperimentPaths

TARGET_RATIO = 1.10


def _job_seconds(paths: ExperimentPaths, stage: str, job: str) -> float:
    tsv = require(paths.benchmarks / stage / f"{job}.tsv", f"the {stage} benchmark of {job}", stage)
    return float(pd.read_csv(tsv, sep="\t")["s"].iloc[0])


def inference_rates(cfg: DictConfig, paths: ExperimentPaths) -> pd.DataFrame:
    """Per (model, scenario) job: cells, job seconds, perturbation+inference seconds, and their rates."""
    from nnassure.kri.infer import read_inference

    rows = []
    for variant in cfg.kri.models:
        for name, scenario in cfg.kri.scenarios.items():
            path = require(paths.kri_inference(variant, name), "an inference file", "kri_infer")
            ds = read_inference(path, variant=str(variant), scenario=str(name))
            cells = int(ds.sizes["sample"]) * (int(ds.sizes["draw"]) + 1)
            job = _job_seconds(paths, "kri_infer", f"{variant}/{name}")
            rows.append({"model": str(variant), "scenario": str(name), "kind": str(scenario.kind), "cells": cells,
                         "job_s": job, "compute_s": float(ds.attrs["seconds"])})
    frame = pd.DataFrame(rows)
    frame["job_per_s"] = frame["cells"] / frame["job_s"]
    frame["compute_per_s"] = frame["cells"] / frame["compute_s"]
    return frame


def add_scenario(cfg: DictConfig, paths: ExperimentPaths, template: str) -> dict[str, float]:
    """Infer a copy of scenario ``template`` for every model and merge it into the stored tensor."""
    from nnassure.data.images import load_image_dataset
    from nnassure.kri.infer import infer_scenario, read_inference, write_inference
    from nnassure.kri.model import load_kri_model
    from nnassure.kri.tensor import merge_tensor, write_tensor

    k = cfg.kri
    if template not in k.scenarios:
        raise ConfigError(f"--scenario {template}: expected one of kri.scenarios ({', '.join(k.scenarios)})")
    name = f"{template}_added"
    data = load_image_dataset(require(paths.kri_images, "the KRI images", "kri_data"))
    images, labels = (a[: int(k.samples)] for a in data.arrays("test", flatten=False))
    scenarios = {**{str(s): v for s, v in k.scenarios.items()}, name: k.scenarios[template]}
    with tempfile.TemporaryDirectory(prefix="nnassure-bench-kri-") as scratch:
        own = 0.0
        added = {}
        for variant in k.models:
            stem = paths.kri_model_stem(variant)
            require(Path(f"{stem}.safetensors"), "a KRI model", "kri_train")
            model = load_kri_model(stem).model
            started = time.perf_counter()
            ds = infer_scenario(model, images, labels, name, k.scenarios[template], int(k.draws), int(k.seed),
                                data.classes, variant=str(variant), progress=False)
            path = Path(scratch) / f"{variant}.nc"
            write_inference(ds, path)
            own += time.perf_counter() - started
            added[str(variant)] = path
        started = time.perf_counter()
        inferences = {(str(v), str(s)): read_inference(paths.kri_inference(v, s), variant=str(v), scenario=str(s))
                      for v in k.models for s in k.scenarios}
        inferences.update({(v, name): read_inference(p, variant=v, scenario=name) for v, p in added.items()})
        tensor = merge_tensor(inferences, scenarios, list(k.losses), k.severity, data.classes,
                              models=[str(m) for m in k.models])
        write_tensor(tensor, Path(scratch) / "tensor.nc")
        merge = time.perf_counter() - started
    return {"own": own, "merge": merge, "models": len(k.models)}


def store_sizes(cfg: DictConfig, paths: ExperimentPaths) -> dict[str, float]:
    from nnassure.kri.tensor import open_tensor

    tensor = open_tensor(require(paths.kri_tensor, "the risk tensor", "kri_tensor"))
    files = [paths.kri_inference(v, s) for v in cfg.kri.models for s in cfg.kri.scenarios]
    return {"tensor_disk_mb": paths.kri_tensor.stat().st_size / 1e6,
            "tensor_memory_mb": sum(v.nbytes for v in tensor.variables.values()) / 1e6,
            "inference_files_mb": sum(f.stat().st_size for f in files) / 1e6, "inference_files": len(files)}


def _markdown(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, floatfmt=".3g")


def run(cfg: DictConfig, args: argparse.Namespace) -> str:
    paths = ExperimentPaths.from_config(cfg)
    rates = inference_rates(cfg, paths)
    by_kind = (rates.groupby("kind", sort=False)
               .agg(jobs=("cells", "size"), cells_per_job=("cells", "median"), job_s=("job_s", "median"),
                    compute_s=("compute_s", "median"), job_per_s=("job_per_s", "median"),
                    compute_per_s=("compute_per_s", "median"))
               .reset_index())
    added = add_scenario(cfg, paths, args.scenario)
    ratio = (added["own"] + added["merge"]) / added["own"]
    template_jobs = rates[rates["scenario"] == args.scenario]
    recompute = float(rates["job_s"].sum()) + _job_seconds(paths, "kri_tensor", "tensor")
    sizes = store_sizes(cfg, paths)
    verdict = "met" if ratio <= TARGET_RATIO else "not met"
    lines = [
        f"# KRI risk tensor: inference, adding a scenario, the store ({cfg.grid.name})",
        "",
        f"{len(cfg.kri.models)} models x {len(cfg.kri.scenarios)} scenario components, {int(cfg.kri.samples)} test "
        f"images, {int(cfg.kri.draws)} draws per corruption (one per attack); {int(cfg.threads)} torch thread(s).",
        "",
        "## Inferences per second, per kind (medians over models)",
        "",
        "A cell is one perturbed image (samples x draws, plus the clean images). `job` is the kri_infer job's wall "
        "time from its benchmark file, Python and torch start-up included; `compute` the perturbation and "
        "inference alone, as the job measured it.",
        "",
        _markdown(by_kind),
        "",
        "## Adding one scenario",
        "",
        f"A copy of `{args.scenario}` under a new name, inferred for each of the {added['models']} models in this "
        "process, then the tensor merged again from every stored inference file plus the new ones (written to a "
        "temporary directory).",
        "",
        _markdown(pd.DataFrame([{
            "own inferences s": added["own"], "merge s": added["merge"], "adding s": added["own"] + added["merge"],
            "adding / own": ratio, "target": f"<= {TARGET_RATIO:g}", "verdict": verdict}])),
        "",
        f"The run's own jobs for `{args.scenario}` took {template_jobs['job_s'].sum():.1f} s in all "
        f"({template_jobs['compute_s'].sum():.1f} s of it perturbation and inference); recomputing the whole tensor "
        f"(every kri_infer job and kri_tensor, from their benchmark files) took {recompute:.1f} s, "
        f"{recompute / max(added['own'] + added['merge'], 1e-9):.1f} times adding one scenario.",
        "",
        "## The store",
        "",
        _markdown(pd.DataFrame([sizes])),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nnassure.bench.kri", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="fog", help="the scenario whose copy is added (default fog)")
    bench_main("kri", parser, run, argv)


if __name__ == "__main__":
    main()
