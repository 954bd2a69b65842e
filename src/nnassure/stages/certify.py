"""Certify stage: LiRPA verification of every sample of one model (Sec. 3.2)."""

from __future__ import annotations

from omegaconf import DictConfig

from nnassure.certify import certify_dataset
from nnassure.data import load_dataset
from nnassure.io import write_csv, write_parquet
from nnassure.models import load_model
from nnassure.paths import ExperimentPaths, format_cost
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run

# What each column of certify/<d>_c<cost>.parquet means, written into the file's schema (field
# metadata b"description") so that the file says it itself. The two verdicts are the point: both
# are sound, and they can disagree because CROWN's bounds are not monotone in eps (Sec. 3.2).
COLUMN_DESCRIPTIONS: dict[str, str] = {
    "sample_id": "Index of the sample in the data set (the data stage's sample_id).",
    "split": "train or val, the data stage's split; verified accuracy (Eqs. 3-4) counts both.",
    "x1": "First input coordinate of the sample, the centre of the eps-ball.",
    "x2": "Second input coordinate of the sample, the centre of the eps-ball.",
    "label": "True class, 0 or 1.",
    "prediction": "Class the network predicts at the centre: 1 iff the logit is >= 0.",
    "norm": "Norm of the ball of this row: linf or l2.",
    "eps": "Radius of the ball that this row's bounds and verdict are for (one of certify.eps).",
    "method": "Bound method of this row's lower and upper (ibp, crown or alpha-crown).",
    "lower": "Lower bound of the logit over the eps-ball, computed by method.",
    "upper": "Upper bound of the logit over the eps-ball, computed by method.",
    "verified": (
        "Per-eps verdict: True iff this row's bounds prove that every input of the eps-ball gets the label "
        "(the bound on the label's side of 0, rounding accounted for as nnassure.certify.verify says). True "
        "means the sample is robust at this eps, whatever certified_radius says; False means not proven, not "
        "that a counterexample exists. Tables 3-5 and Figs. 2-3 count this column."),
    "certified_radius": (
        "Largest eps at which the bisection on [0, certify.radius_max] (certify.radius_steps steps, "
        "certify.method's bounds) proved the sample: a lower bound of its true robust radius, not the radius "
        "itself. Bounds are not monotone in eps, so the sample may be verified at an eps above this value, and "
        "is then robust up to that eps too. 0 when no step proved anything (always for a misclassified sample); "
        "NaN on rows of other methods, and everywhere when certify.radius is false; the same on every eps row of "
        "one sample and norm."),
}


def main(cfg: DictConfig) -> None:
    paths = ExperimentPaths.from_config(cfg)
    name, cost = cfg.dataset.name, cfg.train.cost_fn
    frame = load_dataset(paths.dataset(name))
    model = load_model(paths.model_stem(name, cost)).model
    c = cfg.certify
    with tracked_run(cfg, "certify", f"{name}_c{format_cost(cost)}") as tracker:
        result = certify_dataset(
            model.verification_network(), frame, list(c.norms), list(c.eps), list(c.methods),
            radius_method=c.method, clip_to_domain=c.clip_to_domain, batch_size=c.batch_size,
            alpha_batch_size=c.alpha_batch_size, alpha_iterations=c.alpha_iterations,
            radius_max=c.radius_max, radius_steps=c.radius_steps, radius=c.radius,
        )
        write_parquet(result.samples, paths.certification(name, cost), COLUMN_DESCRIPTIONS)
        write_csv(result.summary, paths.certification_summary(name, cost), float_format="%.6f")
        tracker.log_table("verified_accuracy", result.summary)
        for row in result.summary.itertuples():
            tracker.summary({f"verified_accuracy/{row.method}/{row.norm}/eps={row.eps:g}": row.verified_accuracy})


if __name__ == "__main__":
    run_stage("certify", main)
