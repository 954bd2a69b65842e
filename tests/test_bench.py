"""``make bench``'s modules: inputs come from the composed experiment and a missing one stops the
benchmark in one line; the PROVEN target is judged on the cold ratio."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnassure.bench import certify, ensemble, kri, proven, resources, run, video


def _error(capsys: pytest.CaptureFixture[str], main: object, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nnassure bench.") and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize(("module", "extra", "missing"), [
    (certify, ["dataset=c", "train.cost_fn=1"], "data/c.parquet"),
    (proven, ["proven.model=digits_relu_1x16"], "data/digits.npz"),
    (ensemble, [], "ensemble/rows/25.json"),
    (video, [], "video/bounds/0.json"),
    (kri, [], "kri/infer/NNet/brightness.nc"),
    (resources, [], "benchmarks"),
    (run, [], "benchmarks"),
])
def test_a_missing_input_stops_a_benchmark_in_one_line(tmp_path: Path, capsys, module, extra, missing) -> None:
    out = tmp_path / "report.md"
    message = _error(capsys, module.main, ["experiment=smoke", f"results_dir={tmp_path}", *extra, "--out", str(out)])
    assert str(tmp_path / "smoke" / missing) in message and "not found" in message
    assert not out.exists()


def test_the_proven_benchmark_needs_a_model_and_refuses_stray_arguments(tmp_path: Path, capsys) -> None:
    message = _error(capsys, proven.main, ["experiment=smoke", f"results_dir={tmp_path}"])
    assert "proven.model" in message
    message = _error(capsys, proven.main, ["experiment=smoke", "digits_relu_1x16"])
    assert "unknown argument" in message and "digits_relu_1x16" in message


def test_the_proven_target_is_judged_on_the_cold_ratio() -> None:
    assert proven.verdict(worst_seconds=1.0, cold_seconds=1.2) == "met"
    assert proven.verdict(worst_seconds=1.0, cold_seconds=1.3) == "not met"  # however short the warm step


def test_the_ensemble_bench_shows_a_solver_error_as_an_error_not_a_timeout() -> None:
    from nnassure.bench.ensemble import _cell

    cell = _cell({"verdict": "error", "seconds": None, "backend": "highs", "note": "GurobiError: boom"})
    assert cell.startswith("ERR, error") and "TO" not in cell and "boom" in cell
    assert _cell({"verdict": "timeout", "seconds": 10.0, "backend": "highs"}) == "TO, timeout"


def test_the_float_cost_helpers_time_both_precisions_on_the_same_inputs() -> None:
    """Both engines run and a ratio is reported; the timings themselves are never asserted."""
    import numpy as np
    import torch

    from nnassure.proven.bisection import BisectionSettings

    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).eval()
    x = np.random.default_rng(0).uniform(0, 1, (50, 2)).astype(np.float32)
    cost = certify.float_cost(network, x, 0.01, "linf", batch_size=16, repeats=1)
    assert set(cost) == {"float32", "float64", "ratio"} and all(v > 0 for v in cost.values())
    classifier = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).eval()
    points = np.random.default_rng(1).uniform(0, 1, (10, 4)).astype(np.float32)
    with torch.no_grad():
        predicted = classifier(torch.as_tensor(points)).argmax(1).numpy()
    cost = proven.float_cost(classifier, points, predicted, 3, np.full(10, 0.01), BisectionSettings(batch_size=4), 1)
    assert set(cost) == {"float32", "float64", "ratio"} and all(v > 0 for v in cost.values())


def test_the_suggested_resources_are_the_measured_ones_with_headroom() -> None:
    # 1.5 x 400 MB = 600 MB, up to 750; 3 x 10 s is under a minute, at least 5
    assert resources.suggested(400, 10) == (750, 5)
    # 1.5 x 1250 MB = 1875 MB, up to 2000; 3 x 130.5 s = 6.5 min, up to 7
    assert resources.suggested(1250, 130.5) == (2000, 7)


def test_the_resources_report_flags_a_configured_value_below_a_measured_job(tmp_path: Path) -> None:
    from nnassure.config import compose

    configured = compose(["experiment=smoke"]).resources.certify
    seconds, rss = configured.runtime * 60 + 60, configured.mem_mb + 1000  # one job above both
    bench = tmp_path / "smoke" / "benchmarks" / "certify"
    bench.mkdir(parents=True)
    (bench / "a_c1.tsv").write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                                    f"{seconds}\t0:00:00\t{rss}\t1\t1\t1\t0\t0\t99.0\t1\n")
    resources.main(["experiment=smoke", f"results_dir={tmp_path}", "--out", str(tmp_path / "r.md")])
    row = next(line for line in (tmp_path / "r.md").read_text().splitlines() if line.startswith("| certify |"))
    assert row.endswith("| mem_mb, runtime |")
    assert f"| {resources.suggested(rss, seconds)[0]} | {resources.suggested(rss, seconds)[1]} |" in row
    assert "| data | 0 |" in (tmp_path / "r.md").read_text()


def _benchmark_file(path: Path, seconds: float, end: float) -> None:
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                    f"{seconds}\t0:00:00\t100\t1\t1\t1\t0\t0\t99.0\t{seconds * 0.9}\n")
    os.utime(path, (end, end))


def test_the_run_report_reads_wall_time_and_families_from_the_benchmark_files(tmp_path: Path) -> None:
    bench = tmp_path / "smoke" / "benchmarks"
    start = 1_000_000.0
    # data (shared by two families) 0-10 s, certify 10-70 s and 10-40 s on two cores, ensemble_row 40-100 s
    _benchmark_file(bench / "data" / "a.tsv", 10.0, start + 10)
    _benchmark_file(bench / "certify" / "a_c1.tsv", 60.0, start + 70)
    _benchmark_file(bench / "certify" / "b_c1.tsv", 30.0, start + 40)
    _benchmark_file(bench / "ensemble_row" / "3.tsv", 60.0, start + 100)
    out = tmp_path / "run.md"
    run.main(["experiment=smoke", f"results_dir={tmp_path}", "--budget", "1", "--out", str(out)])
    text = out.read_text()
    assert "**1 min 40.0 s** (budget 1 min: OVER)" in text  # first start 0 s, last end 100 s
    assert "| verified-classification | 2 | 1 min 30.0 s | 56% | 60.0 s | 1 min 00.0 s |" in text
    assert "| ensemble | 1 | 1 min 00.0 s | 38% | 60.0 s | 1 min 00.0 s |" in text
    assert "| shared | 1 |" in text
    run.main(["experiment=smoke", f"results_dir={tmp_path}", "--budget", "2", "--out", str(out)])
    assert "(budget 2 min: within)" in out.read_text()


def test_every_stage_but_the_sweep_summary_belongs_to_a_family_or_is_shared() -> None:
    from nnassure.bench.run import SHARED, stage_families
    from nnassure.stage_keys import STAGES

    families = stage_families()
    assert set(STAGES) - set(families) == {"sweep_summary"}
    assert families["data"] == SHARED and families["certify"] == "verified-classification"
    assert families["ensemble_row"] == "ensemble" and families["kri_infer"] == "kri"
    assert families["vnnlib"] == families["assess_import"] == "assess"


def test_warm_jobs_usage_records_count_in_cpu_time_and_memory(tmp_path: Path) -> None:
    bench, logs = tmp_path / "smoke" / "benchmarks", tmp_path / "smoke" / "logs"
    _benchmark_file(bench / "certify" / "a_c1.tsv", 10.0, 1_000_000.0)  # cpu 9 s, max RSS 100 MB (the launcher)
    (logs / "certify").mkdir(parents=True)
    (logs / "certify" / "a_c1.log.usage.json").write_text('{"cpu_seconds": 4.0, "max_rss_mb": 1500.0, "worker_pid": 1}')
    run.main(["experiment=smoke", f"results_dir={tmp_path}", "--out", str(tmp_path / "run.md")])
    row = next(line for line in (tmp_path / "run.md").read_text().splitlines() if line.startswith("| certify |"))
    assert row.endswith("| 13.0 s |")  # 9 s of the benchmark file + 4 s of the fork
    resources.main(["experiment=smoke", f"results_dir={tmp_path}", "--out", str(tmp_path / "r.md")])
    row = next(line for line in (tmp_path / "r.md").read_text().splitlines() if line.startswith("| certify |"))
    assert row.startswith("| certify | 1 | 1500 | 10.0 | warm |")


def test_the_vnnlib_benchmark_reports_rates_and_methods_on_generated_instances(tmp_path: Path) -> None:
    from nnassure.bench import vnnlib

    out = tmp_path / "vnnlib.md"
    vnnlib.main(["experiment=smoke", f"results_dir={tmp_path}", "--instances", "6", "--out", str(out)])
    text = out.read_text()
    assert "decided per second" in text and "| 4-16-16-3 |" in text.replace("    ", " ").replace("  ", " ")
    rows = [line for line in text.splitlines() if line.startswith("| 4-16-16-3")]
    assert len(rows) == 1 + 6  # the summary row and one per instance
    assert "error" not in "".join(r.split("|")[4] for r in rows[1:])  # no instance ended in an error

