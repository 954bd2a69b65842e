"""Every table and figure the report stages write, for the five paper families: its id, the
paper it reproduces, a caption, and its output files for a composed config.

This module imports neither torch nor the report code (only omegaconf and nnassure.paths), so the
Snakefile and the Snakemake report can read it cheaply. The report stages write exactly the files
:func:`outputs` lists; each stage checks that afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from omegaconf import DictConfig

from nnassure.paths import ExperimentPaths

Family = Literal["verified-classification", "proven", "ensemble", "video", "kri"]
FAMILIES: tuple[str, ...] = ("verified-classification", "proven", "ensemble", "video", "kri")
# the paper behind each family (also the stem of its numbers in report/paper/<paper>.yaml)
PAPER_OF_FAMILY = {"verified-classification": "verified-classification-lirpa",
                   "proven": "proven-probabilistic-certificates",
                   "ensemble": "ensemble-robustness-milp",
                   "video": "video-robustness-optical-flow",
                   "kri": "risk-assessment-kri-tensor"}
STAGE_OF_FAMILY = {"verified-classification": "report", "proven": "report_proven", "ensemble": "report_ensemble",
                   "video": "report_video", "kri": "report_kri"}
TABLE_OF_DATASET = {"a": "vc_table3", "b": "vc_table4", "c": "vc_table5"}
TABLE_EXTENSIONS = ("csv", "md", "tex")
FIGURE_EXTENSIONS = ("png", "pdf")


def _always(cfg: DictConfig) -> bool:
    return True


@dataclass(frozen=True)
class CatalogEntry:
    id: str  # e.g. vc_table1, pv_fig1, en_table3, vd_fig7
    family: Family
    kind: Literal["table", "figure"]
    reproduces: str  # the paper's table or figure and section, or "not in the paper"
    caption: str  # what it shows, in one to three sentences
    compare: bool = True  # a <id>.compare.md (our numbers beside the paper's, findings) is written
    produced_by: Callable[[DictConfig], bool] = _always  # whether this config produces it

    @property
    def paper(self) -> str:
        return PAPER_OF_FAMILY[self.family]

    @property
    def stage(self) -> str:
        return STAGE_OF_FAMILY[self.family]

    def produced(self, cfg: DictConfig) -> bool:
        return bool(self.produced_by(cfg))

    def files(self, cfg: DictConfig) -> list[Path]:
        """The files written for this entry (whether or not ``cfg`` produces it)."""
        paths = ExperimentPaths.from_config(cfg)
        if self.kind == "table":
            files = [paths.tables / f"{self.id}.{ext}" for ext in TABLE_EXTENSIONS]
        else:
            files = [paths.figures / f"{self.id}.{ext}" for ext in FIGURE_EXTENSIONS]
        if self.compare:
            files.append(paths.tables / f"{self.id}.compare.md")
        return files


def _dataset(dataset: str) -> Callable[[DictConfig], bool]:
    return lambda cfg: dataset in cfg.grid.datasets


def _fig2(cfg: DictConfig) -> bool:
    return cfg.report.fig2_dataset in cfg.grid.datasets and float(cfg.report.fig2_cost) in [
        float(c) for c in cfg.grid.costs]


def _fig3(cfg: DictConfig) -> bool:
    return cfg.report.fig3_dataset in cfg.grid.datasets


def _gaussian(cfg: DictConfig) -> bool:
    return bool(cfg.proven.gaussian_models)


_VC_DATASET_CAPTION = ("Data set {d}: verified accuracy on the full data per cost c10 in the grid and eps, for "
                       "both norms (Linf and L2; the paper shows one), and train and validation accuracy, F1 and "
                       "cost per sample.")
_PV_TABLE2 = {"a": "ReLU with fixed slopes (Fast-Lin)", "b": "ReLU with adaptive slopes (CROWN)", "c": "tanh",
              "d": "sigmoid", "e": "arctan"}
_EN = {
    "1": ("Table 1 (Sec. 6.2)", "SMT (Z3) versus MILP on the rows of the paper's main-text excerpt: time and "
          "Val(A, P), \"robust\" or a timeout per method."),
    "2": ("Table 2 (Sec. 6.2)", "MILP (feasibility) versus MaxMILP (max-sum objective) on the main-text excerpt: "
          "time and Val(A, P), \"*\" where the solver proved its objective optimal."),
    "3": ("Table 3 (Sec. 6.2)", "Uniform attacker, best deterministic attacker and MaxMILP: Val(A, P) of each on "
          "the main-text excerpt."),
    "4": ("Table 4 (Appendix A)", "SMT versus MILP on all 38 benchmark rows."),
    "5": ("Table 5 (Appendix A)", "MILP versus MaxMILP on the 35 rows of the appendix table."),
    "6": ("Table 6 (Appendix A)", "Uniform attacker, best deterministic attacker and MaxMILP on the 22 rows of the "
          "appendix table."),
}

ENTRIES: tuple[CatalogEntry, ...] = (
    CatalogEntry("vc_table1", "verified-classification", "table", "Table 1 (Sec. 2.1)",
                 "Baselines LR, NB, SVM (RBF kernel) and gradient boosting: train and validation accuracy and "
                 "macro F1 on each data set of the grid."),
    *(CatalogEntry(table, "verified-classification", "table", f"Table {table[-1]} (Sec. 4.3)",
                   _VC_DATASET_CAPTION.format(d=dataset.upper()), produced_by=_dataset(dataset))
      for dataset, table in TABLE_OF_DATASET.items()),
    CatalogEntry("vc_fig1", "verified-classification", "figure", "Fig. 1 (Sec. 1.1)",
                 "The 2-D data sets of the grid, class 0 green and class 1 red.", compare=False),
    CatalogEntry("vc_fig2", "verified-classification", "figure", "Fig. 2 (Sec. 3.2)",
                 "Verified samples of one data set and cost (report.fig2_*): Linf boxes and L2 circles of radius "
                 "eps around every verified sample, unverified samples as crosses. Verified is the per-eps verdict "
                 "that Tables 3-5 count, not certified_radius: a sample verified at eps is drawn verified even "
                 "where the bisection's radius is smaller.", compare=False,
                 produced_by=_fig2),
    CatalogEntry("vc_fig3", "verified-classification", "figure", "Fig. 3 (Sec. 4.3)",
                 "Validation predictions of one data set (report.fig3_*) for each cost c10, verified or not at "
                 "one eps (the per-eps verdict of Tables 3-5), with the safety-critical misclassifications "
                 "(label 1 predicted 0) marked.",
                 compare=False, produced_by=_fig3),
    *(CatalogEntry(f"pv_table2{part}", "proven", "table", f"Table 2{part} (Sec. 4)",
                   f"Largest eps certified for {name} MLPs: worst case (100%) and PROVEN (Case (i), bounded "
                   "noise) at each configured gamma, with the improvement at the highest gamma; digits stand in "
                   "for MNIST, rendered traffic signs for CIFAR. A mean is over the certified samples only, "
                   "\"m (k/n)\" when k of n are and \"not certified\" when none is; the improvement is over the "
                   "samples both certify.")
      for part, name in _PV_TABLE2.items()),
    CatalogEntry("pv_table3", "proven", "table", "Table 3 (Sec. 4)",
                 "Summary of Tables 2a-2e: PROVEN's improvement over the worst case at the highest gamma, per "
                 "architecture (rows) and activation/relaxation (columns), \"not certified\" where PROVEN "
                 "certifies no sample of the model."),
    CatalogEntry("pv_table4", "proven", "table", "Table 4 (Sec. 4)",
                 "Random trials of k samples: mean and std over trials of the average worst-case eps, PROVEN eps "
                 "and improvement (CROWN bounds), per configured model and k. A trial averages its certified "
                 "samples (the mean row gives the fraction certified when below 100%), \"not certified\" when "
                 "no trial certifies any."),
    CatalogEntry("pv_table5", "proven", "table", "not in the paper",
                 "PROVEN on the 2-D models of the verified-classification grid: accuracy, worst-case verified "
                 "accuracy and PROVEN-certified accuracy per data set, cost and eps."),
    CatalogEntry("pv_fig1", "proven", "figure", "Figure 1 (Sec. 4)",
                 "Improvement over the worst-case eps versus gamma for bounded noise and Gaussian noise "
                 "(independent and correlated; the paper's approximation and the rigorous bound), over the samples "
                 "each curve and the worst case both certify. A gamma at which a curve certifies no sample (the "
                 "rigorous bound at 99.99% under the 3-sigma rule) has no point but an x at the bottom, and a "
                 "hollow point averages only some of the samples.",
                 produced_by=_gaussian),
    *(CatalogEntry(f"en_table{n}", "ensemble", "table", reproduces, caption) for n, (reproduces, caption)
      in _EN.items()),
    CatalogEntry("vd_table1", "video", "table", "not in the paper",
                 "Per analysed test clip: true and predicted motion, the upper bound of the maximum safe radius "
                 "w.r.t. the flow (gradient search; a found adversarial flow and its class, or \"none found\"), "
                 "the A* lower bound on its subspace, the CROWN-certified lower bounds (L2, Linf), the gap and "
                 "the seconds of each bound, and whether the adversarial flow survives as a pixel-space attack. "
                 "The CROWN bounds are proven by bound propagation, the A* bound holds as far as its Lipschitz "
                 "constant does (Sec. 3.3) and the upper bound is an adversarial flow found and checked; \"ERR\" "
                 "marks a bound that failed. "
                 "The paper prints no table; the compare file sets its Sec. 6 numbers beside ours."),
    CatalogEntry("vd_fig4", "video", "figure", "Fig. 4 (Sec. 6.1)",
                 "The frames of one clip and the Farneback optical flow between each adjacent pair, as arrows on "
                 "the frame, magnitude and direction. Nothing here is proven: it shows the input the network "
                 "reads.", compare=False),
    CatalogEntry("vd_fig5", "video", "figure", "Fig. 5 (Sec. 6.1)",
                 "The clip with the smallest relative upper bound: magnitude and direction of its original flow, "
                 "of the adversarial perturbation and of the perturbed flow, on the flows the perturbation changes "
                 "most. The perturbed flow is checked (the network classifies it into another motion), not proven "
                 "minimal.", compare=False),
    CatalogEntry("vd_fig7", "video", "figure", "Fig. 7 (Sec. 6.2)",
                 "Converging bounds over iterations, every clip faint and one clip bold: the upper bound of the "
                 "gradient search, the A* lower bound and the CROWN-certified lower bound, each on its own axis "
                 "as in the paper. Every CROWN point is proven (A*'s as far as its Lipschitz constant holds) and every "
                 "upper-bound point is an adversarial flow found; monotone curves are true by construction "
                 "(running minimum and maximum)."),
    CatalogEntry("vd_fig8", "video", "figure", "Fig. 8 (Sec. 6.3)",
                 "Brightness: (a) one frame brightened by each listed delta and its flow; (b) the change of the "
                 "flow against the pixel distance beside the certified radius; (c) the brightness lower bound per "
                 "delta. Safety is checked at the listed deltas (each brightened clip classified, its flow inside "
                 "the certified ball), not proven over a brightness interval."),
    CatalogEntry("vd_fig10", "video", "figure", "Fig. 10 (Sec. 6.4)",
                 "Lower bounds of the maximum safe radius against the number k of manipulated flows (A* and "
                 "CROWN-certified, per clip) and the A* lower bound over iterations for each k on one clip. Every "
                 "point is a lower bound for manipulations of those k flows (CROWN's proven, A*'s as far as its "
                 "Lipschitz constant holds); the claim that fewer flows "
                 "converge faster is a finding on these numbers."),
    CatalogEntry("kr_table1", "kri", "table", "Table 1 (Sec. 5)",
                 "The model zoo: each variant, what differs from the baseline (capacity, augmentation, loss, "
                 "regularisation, distillation, adversarial training), its clean test accuracy and its training "
                 "time. Measured on our traffic-sign CNNs, not the paper's CIFAR-10 ResNets."),
    CatalogEntry("kr_table2", "kri", "table", "not in the paper",
                 "The numbers behind Figs. 2-5, per model and loss: each scenario component's Monte-Carlo risk "
                 "(Eq. 1), each noise family's and the final risk (Eq. 2), with a bootstrap confidence interval over "
                 "the test images. Estimates, not bounds.", compare=False),
    CatalogEntry("kr_table3", "kri", "table", "not in the paper",
                 "Where PROVEN applies (Gaussian and uniform noise), its certified upper bound on the class-change "
                 "probability beside the Monte-Carlo estimate on the same images and its confidence interval. The "
                 "bound is proven for the noise distribution (no sampling is involved); the estimate is sampled, "
                 "so a bound below the interval would be a bug.", compare=False),
    CatalogEntry("kr_table4", "kri", "table", "not in the paper",
                 "The risk of each model in each deployment scenario of the config: Eq. 2's weighted sum of the "
                 "scenario components' KRIs, with a bootstrap confidence interval.", compare=False),
    CatalogEntry("kr_fig2", "kri", "figure", "Fig. 2 (Sec. 5)",
                 "Class-change risk under brightness perturbations per model, with confidence intervals: the "
                 "brightness KRI. Monte-Carlo estimates."),
    CatalogEntry("kr_fig3", "kri", "figure", "Fig. 3 (Sec. 5)",
                 "The effect of data augmentation (noise, standard image augmentations, adversarial examples) per "
                 "noise family: the family KRIs of each augmented model beside the model trained without it."),
    CatalogEntry("kr_fig4", "kri", "figure", "Fig. 4 (Sec. 5)",
                 "The effect of the loss function per noise family: guided complement entropy against "
                 "cross-entropy on otherwise equal models."),
    CatalogEntry("kr_fig5", "kri", "figure", "Fig. 5 (Sec. 5)",
                 "The final risk of each model (the mean of its family KRIs, Eq. 2), with confidence intervals: "
                 "the basis for choosing the model of least risk."),
)
_BY_ID = {e.id: e for e in ENTRIES}


def entry(table_id: str) -> CatalogEntry:
    """The catalog entry of one table or figure id."""
    if table_id not in _BY_ID:
        raise KeyError(f"no table or figure {table_id!r} in the catalog")
    return _BY_ID[table_id]


def entries(family: str | None = None) -> list[CatalogEntry]:
    """Every entry, or those of one family (in the order the stages write them)."""
    if family is not None and family not in FAMILIES:
        raise KeyError(f"unknown family {family!r}; expected one of {', '.join(FAMILIES)}")
    return [e for e in ENTRIES if family is None or e.family == family]


def output_files(cfg: DictConfig, table_id: str) -> list[Path]:
    """The files of one id for ``cfg``; empty when this config does not produce it."""
    e = entry(table_id)
    return e.files(cfg) if e.produced(cfg) else []


def outputs(cfg: DictConfig, family: str | None = None) -> dict[str, list[Path]]:
    """Files by id of everything ``cfg`` produces (of one family, or of all of them)."""
    return {e.id: e.files(cfg) for e in entries(family) if e.produced(cfg)}


def family_files(cfg: DictConfig, family: str) -> list[Path]:
    """Every file one family's report stage writes for ``cfg``, flat."""
    return [path for files in outputs(cfg, family).values() for path in files]
