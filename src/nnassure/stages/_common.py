"""What every stage entry point shares: compose, one-line errors, thread count."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf

from nnassure.config import compose
from nnassure.errors import NnassureError
from nnassure.stage_keys import project

USAGE = """usage: python -m nnassure.stages.{name} [key=value ...] [--cfg]

Runs the {name} stage with the Hydra config of conf/ (e.g. experiment=quick dataset=b
train.cost_fn=10). --cfg prints the config the stage reads and exits."""


def run_stage(name: str, main: Callable[[DictConfig], None], argv: list[str] | None = None) -> None:
    """Compose the config from ``argv`` and run ``main``; user errors end in one line, exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(USAGE.format(name=name))
        return
    show_config = "--cfg" in args
    overrides = [a for a in args if a != "--cfg"]
    try:
        # The stage sees only the keys it declares (nnassure.stage_keys), the ones whose changes
        # rerun it.
        cfg = project(compose(overrides), name)
        if show_config:
            print(OmegaConf.to_yaml(cfg))
            return
        import torch

        torch.set_num_threads(cfg.threads)
        started = time.perf_counter()
        main(cfg)
        print(f"nnassure {name}: done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    except NnassureError as exc:
        print(f"nnassure {name}: error: {exc}", file=sys.stderr)
        sys.exit(2)
