"""The papers' printed numbers: one format, one loader with a schema check, shipped as package data."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest
import yaml

from nnassure.report.paper_numbers import PAPERS, PaperDataError, paper_numbers, paper_table, parse_paper_numbers

ROOT = Path(__file__).resolve().parents[1]

GOOD = {"paper": "A. Author, A Paper",
        "tables": {"table1": {"source": "Table 1 (Sec. 2)", "key": ["model"], "values": "number",
                              "columns": ["model", "accuracy", "f1"],
                              "rows": [["LR", 0.67, 0.81], ["GB", 0.96, None]]}}}


def test_every_paper_loads_with_its_tables():
    tables = {p: set(paper_numbers(p).tables) for p in PAPERS}
    assert tables["verified-classification-lirpa"] == {"table1", "table3", "table4", "table5"}
    assert tables["proven-probabilistic-certificates"] == {"table2a", "table2b", "table2c", "table2d", "table2e",
                                                            "table3", "table4"}
    assert tables["ensemble-robustness-milp"] == {f"table{n}" for n in range(1, 7)} | {"settings"}
    assert tables["video-robustness-optical-flow"] == {"fig7", "fig7_class", "fig5", "fig8", "efficiency"}
    for p in PAPERS:
        for t in paper_numbers(p).tables.values():
            assert t.source.startswith(("Table", "Fig", "Sec.")), t.source


def test_printed_values_spot_checks():
    vc = paper_table("verified-classification-lirpa", "table3")
    row = vc[(vc["c10"] == 50) & (vc["metric"] == "verified_accuracy") & (vc["eps"] == 0.025)]
    assert row["value"].tolist() == [0.585]
    base = paper_table("verified-classification-lirpa", "table1").set_index(["dataset", "split", "metric"])
    assert base.loc[("b", "val", "accuracy"), "GB"] == 0.984
    pv = paper_table("proven-probabilistic-certificates", "table2b").set_index("model")
    assert pv.loc["MNIST 2x[20]", "improvement_pct"] == 78.9 and pv.loc["CIFAR 7x[1024]", "proven_99.99"] == 0.00209
    t4 = paper_table("proven-probabilistic-certificates", "table4")
    a = t4[(t4["part"] == "a") & (t4["statistic"] == "std")].sort_values("samples")
    assert a["improvement_pct"].tolist() == [1.12, 0.57, 0.43]
    en = paper_table("ensemble-robustness-milp", "table5").set_index("id")
    assert en.loc[2, "maxmilp_val"] == "1.00*" and en.loc[23, "milp_time"] == "-TO-"
    assert len(paper_table("ensemble-robustness-milp", "table4")) == 38
    fig7 = paper_table("video-robustness-optical-flow", "fig7").set_index("bound")
    assert fig7.loc["upper", "value"] == 5670.31 and fig7.loc["lower", "iterations"] == 1000
    assert paper_table("video-robustness-optical-flow", "fig8")["value"].tolist() == [548.68]


def test_the_paper_numbers_have_one_home():
    # The benchmark rows are experiment inputs; the paper's results for them live only here.
    conf = yaml.safe_load((ROOT / "conf" / "ensemble" / "benchmarks.yaml").read_text())["benchmarks"]
    assert not any("paper" in row for row in conf)
    assert {row["id"] for row in conf} == set(paper_table("ensemble-robustness-milp", "table4")["id"])


def test_package_data_is_declared_and_present():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "paper/*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["nnassure.report"]
    folder = ROOT / "src" / "nnassure" / "report" / "paper"
    assert sorted(p.stem for p in folder.glob("*.yaml")) == sorted(PAPERS)


def test_a_good_document_parses():
    numbers = parse_paper_numbers(GOOD, "test")
    frame = numbers.table("table1")
    assert list(frame.columns) == ["model", "accuracy", "f1"] and frame["f1"].isna().tolist() == [False, True]
    frame.loc[0, "accuracy"] = 0.0  # a copy: the loaded numbers stay as printed
    assert numbers.table("table1").loc[0, "accuracy"] == 0.67
    with pytest.raises(KeyError, match="no table"):
        numbers.table("table9")


def broken(change):
    document = copy.deepcopy(GOOD)
    change(document["tables"]["table1"])
    return document


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t["rows"].append(["NB", 0.75]), "expected 3 cells"),
    (lambda t: t["rows"].append(["NB", "0.75", 0.71]), "accuracy = '0.75' is not a number"),
    (lambda t: t["rows"].append(["NB", True, 0.71]), "is not a number"),
    (lambda t: t["rows"].append(["LR", 0.5, 0.5]), "same key"),
    (lambda t: t.pop("source"), "expected exactly the keys"),
    (lambda t: t.update(extra=1), "expected exactly the keys"),
    (lambda t: t.update(key=["name"]), "key"),
    (lambda t: t.update(values="text"), "values must be one of"),
    (lambda t: t.update(columns=["model", "model", "f1"]), "distinct"),
    (lambda t: t.update(rows=[]), "non-empty"),
])
def test_schema_violations_name_the_table_and_row(change, message):
    with pytest.raises(PaperDataError, match=message) as info:
        parse_paper_numbers(broken(change), "test")
    assert "test: table table1" in str(info.value)


def test_string_tables_reject_numbers():
    document = copy.deepcopy(GOOD)
    document["tables"]["table1"]["values"] = "string"
    with pytest.raises(PaperDataError, match="is not a string"):
        parse_paper_numbers(document, "test")


def test_a_document_without_tables_is_rejected():
    with pytest.raises(PaperDataError, match="exactly the keys"):
        parse_paper_numbers({"tables": {}}, "test")
    with pytest.raises(KeyError, match="unknown paper"):
        paper_numbers("no-such-paper")
