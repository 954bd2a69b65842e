"""The catalog of every table and figure: torch-free, complete, and the files each stage writes."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from nnassure.config import compose
from nnassure.paths import ExperimentPaths
from nnassure.report import catalog
from nnassure.report.paper_numbers import PAPERS


def test_importing_the_catalog_does_not_import_torch():
    code = "import sys, nnassure.report.catalog; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_entry_has_a_family_paper_caption_and_source():
    ids = [e.id for e in catalog.ENTRIES]
    assert len(ids) == len(set(ids))
    for e in catalog.ENTRIES:
        assert e.family in catalog.FAMILIES and e.paper in PAPERS and e.kind in ("table", "figure")
        assert re.fullmatch(r"(vc|pv|en|vd|kr)_(table|fig)\w*", e.id) and e.id.split("_")[1].startswith(e.kind[:3])
        sentences = [s for s in re.split(r"(?<=[.;])\s+(?=[A-Z])", e.caption) if s]
        assert e.caption.endswith(".") and 1 <= len(sentences) <= 3, e.caption
        assert e.reproduces == "not in the paper" or re.match(r"(Table|Fig\.|Figure) \w+ \((Sec\.|Appendix)",
                                                              e.reproduces), e.reproduces
    assert {e.id for e in catalog.entries("ensemble")} == {f"en_table{n}" for n in range(1, 7)}
    assert [e.id for e in catalog.entries("video")] == ["vd_table1", "vd_fig4", "vd_fig5", "vd_fig7", "vd_fig8",
                                                        "vd_fig10"]
    assert [e.id for e in catalog.entries("kri")] == ["kr_table1", "kr_table2", "kr_table3", "kr_table4", "kr_fig2",
                                                      "kr_fig3", "kr_fig4", "kr_fig5"]
    assert {e.id for e in catalog.entries("kri") if e.compare} == {"kr_table1", "kr_fig2", "kr_fig3", "kr_fig4",
                                                                    "kr_fig5"}
    with pytest.raises(KeyError):
        catalog.entry("xx_table9")
    with pytest.raises(KeyError):
        catalog.entries("no-such-family")


def test_catalog_ids_are_the_ids_the_report_code_writes():
    from nnassure.report import ensemble, proven, tables

    assert set(ensemble.TABLES) == {e.id for e in catalog.entries("ensemble")}
    pv = {e.id for e in catalog.entries("proven")}
    assert set(proven.TABLE2) | {"pv_table3", "pv_table4", "pv_table5", "pv_fig1"} == pv
    vc_tables = {e.id for e in catalog.entries("verified-classification") if e.kind == "table"}
    assert vc_tables == {"vc_table1", *tables.TABLE_OF_DATASET.values()}


@pytest.mark.parametrize("overrides", [["experiment=smoke"], ["experiment=quick"], ["experiment=paper"],
                                       ["experiment=smoke", "grid.datasets=[b]", "proven.gaussian_models=[]"]])
def test_outputs_follow_the_config(overrides):
    cfg = compose(overrides)
    paths = ExperimentPaths.from_config(cfg)
    vc = catalog.outputs(cfg, "verified-classification")
    datasets = sorted(cfg.grid.datasets)
    expected_tables = ["vc_table1"] + [catalog.TABLE_OF_DATASET[d] for d in datasets]
    assert [k for k in vc if k.startswith("vc_table")] == expected_tables
    assert ("vc_fig2" in vc) == (cfg.report.fig2_dataset in datasets and cfg.report.fig2_cost in cfg.grid.costs)
    assert ("vc_fig3" in vc) == (cfg.report.fig3_dataset in datasets)
    assert vc["vc_table1"] == [paths.tables / f"vc_table1.{x}" for x in ("csv", "md", "tex", "compare.md")]
    assert vc["vc_fig1"] == [paths.figures / "vc_fig1.png", paths.figures / "vc_fig1.pdf"]
    proven = catalog.outputs(cfg, "proven")
    assert ("pv_fig1" in proven) == bool(cfg.proven.gaussian_models)
    if "pv_fig1" in proven:
        assert proven["pv_fig1"][-1] == paths.tables / "pv_fig1.compare.md"
    assert catalog.output_files(cfg, "vc_table4") == (vc.get("vc_table4") or [])
    assert len(catalog.family_files(cfg, "ensemble")) == 6 * 4
    video = catalog.outputs(cfg, "video")
    assert video["vd_table1"] == [paths.tables / f"vd_table1.{x}" for x in ("csv", "md", "tex", "compare.md")]
    assert video["vd_fig4"] == [paths.figures / "vd_fig4.png", paths.figures / "vd_fig4.pdf"]
    assert video["vd_fig7"][-1] == paths.tables / "vd_fig7.compare.md"


def test_the_old_entry_points_return_the_catalog_files():
    from nnassure.report.ensemble import ensemble_outputs
    from nnassure.report.outputs import report_outputs
    from nnassure.stages.report_proven import proven_outputs

    cfg = compose(["experiment=smoke"])
    assert report_outputs(cfg) == catalog.outputs(cfg, "verified-classification")
    assert proven_outputs(cfg) == catalog.family_files(cfg, "proven")
    assert ensemble_outputs(cfg) == catalog.family_files(cfg, "ensemble")
