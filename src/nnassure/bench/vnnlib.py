"""How fast VNN-LIB properties are decided, and by which method, on generated instances.

``python -m nnassure.bench.vnnlib [key=value ...] [--instances N]`` builds ReLU classifiers of a
few sizes (trained briefly on a synthetic 3-class problem, exported to ONNX and imported as a user's
model would be), and for each writes ``N`` local-robustness properties (VNN-COMP's usual kind:
around a test point, within an Linf box, some other class wins) at radii from very small to very
large, so that every method has instances to decide. Each is decided with ``assess.vnnlib``'s
settings (falsification, IBP, CROWN, alpha-CROWN, then the MILP). It writes
<results_dir>/bench/vnnlib.md: per size, instances decided per second and the share decided by
each method, and the verdicts. Every ``violated`` carries a counterexample checked by onnxruntime
(:func:`nnassure.assess.decide.checked_counterexample`); nothing is asserted here.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from nnassure.bench._common import bench_main

# (inputs, hidden widths): a small MLP, a wider one, a deeper one.
SIZES = ((4, (16, 16)), (8, (32, 32, 32)), (16, (64, 64)))
RADII = (0.001, 0.01, 0.03, 0.05, 0.1, 0.3)


def _classifier(inputs: int, widths: tuple[int, ...], seed: int):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    previous = inputs
    for width in widths:
        layers += [nn.Linear(previous, width), nn.ReLU()]
        previous = width
    network = nn.Sequential(*layers, nn.Linear(previous, 3))
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (600, inputs)).astype(np.float32)
    y = ((x[:, 0] > 0.5).astype(int) + (x[:, 1] > 0.5).astype(int)).astype(np.int64)
    optimizer = torch.optim.Adam(network.parameters(), 0.01)
    for _ in range(150):
        optimizer.zero_grad()
        nn.functional.cross_entropy(network(torch.as_tensor(x)), torch.as_tensor(y)).backward()
        optimizer.step()
    return network.eval(), x


def _property_text(centre: np.ndarray, radius: float, top: int, classes: int) -> str:
    lines = [f"(declare-const X_{i} Real)" for i in range(len(centre))]
    lines += [f"(declare-const Y_{j} Real)" for j in range(classes)]
    for i, value in enumerate(centre):
        lines += [f"(assert (>= X_{i} {float(value) - radius!r}))", f"(assert (<= X_{i} {float(value) + radius!r}))"]
    others = " ".join(f"(and (>= Y_{o} Y_{top}))" for o in range(classes) if o != top)
    lines.append(f"(assert (or {others}))")
    return "\n".join(lines) + "\n"


def run(cfg: DictConfig, instances: int) -> str:
    import torch

    from nnassure.assess.decide import METHODS, DecideSettings, decide
    from nnassure.assess.milp import graph_layers
    from nnassure.assess.model import load_onnx
    from nnassure.assess.vnnlib import read_vnnlib

    settings = DecideSettings.from_config(cfg.assess.vnnlib, int(cfg.threads))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for size, (inputs, widths) in enumerate(SIZES):
            network, x = _classifier(inputs, widths, seed=size)
            onnx_path = root / f"net{size}.onnx"
            torch.onnx.export(network, torch.zeros(1, inputs), str(onnx_path), input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "b"}, "y": {0: "b"}}, dynamo=False)
            model = load_onnx(onnx_path)
            layers = graph_layers(model.network, model.input_shape)
            label = f"{inputs}-{'-'.join(map(str, widths))}-3"
            for k in range(instances):
                centre = x[k]
                radius = RADII[k % len(RADII)]
                top = int(model.logits(centre[None]).argmax())
                path = root / f"net{size}_{k}.vnnlib"
                path.write_text(_property_text(centre, radius, top, 3))
                prop = read_vnnlib(path, inputs, 3)
                decision = decide(model, prop, settings, layers=layers)
                rows.append({"network": label, "instance": k, "radius": radius, "result": decision.result,
                             "decided_by": decision.decided_by or "-", "seconds": decision.seconds,
                             "checked": decision.counterexample is not None if decision.result == "violated"
                             else None})
    frame = pd.DataFrame(rows)
    summary = []
    for label, part in frame.groupby("network", sort=False):
        decided = part[part["result"].isin(["holds", "violated"])]
        entry = {"network": label, "instances": len(part), "decided": len(decided),
                 "seconds": part["seconds"].sum(),
                 "decided per second": len(decided) / max(part["seconds"].sum(), 1e-9)}
        for method in METHODS:
            entry[f"by {method}"] = f"{(decided['decided_by'] == method).mean():.0%}" if len(decided) else "-"
        for result in ("holds", "violated", "unknown", "timeout", "error"):
            entry[result] = int((part["result"] == result).sum())
        summary.append(entry)
    summary_frame = pd.DataFrame(summary)
    return "\n".join([
        "# VNN-LIB properties: instances decided per second, and by which method",
        "",
        f"Experiment `{cfg.grid.name}`; {instances} local-robustness properties per network (Linf boxes of radii "
        f"{', '.join(map(str, RADII))} around training points; some other class wins), decided with "
        f"methods {', '.join(settings.methods)}, {settings.time_limit:g} s per instance, MILP on "
        f"{settings.backend}, {cfg.threads} thread(s). Each network is a ReLU MLP trained for a few seconds on a "
        "synthetic 3-class problem, exported to ONNX and imported like a user's model.",
        "",
        "The share of each method is among the decided instances (holds or violated); a `violated` is decided "
        "by the method that found its counterexample (checked in onnxruntime), a `holds` by the method that "
        "closed its last case.",
        "",
        summary_frame.to_markdown(index=False, floatfmt=".3g"),
        "",
        "## Every instance",
        "",
        frame.to_markdown(index=False, floatfmt=".3g"),
        "",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nnassure.bench.vnnlib", description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=24, help="properties per network size")
    bench_main("vnnlib", parser, lambda cfg, args: run(cfg, args.instances), argv)


if __name__ == "__main__":
    main()
