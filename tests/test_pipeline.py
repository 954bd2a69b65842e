"""End to end: `snakemake` on experiment=smoke in a temporary directory."""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
pytestmark = pytest.mark.slow


ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def command(workdir: Path, *args: str, overrides: str = "", targets: tuple[str, ...] = ()) -> list[str]:
    # Targets come before "--config", which takes every word after it.
    return [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2", *targets,
            "--config", "experiment=smoke", f"overrides=tracking=disabled {overrides}".strip(), *args]


def snakemake(workdir: Path, *args: str, overrides: str = "", targets: tuple[str, ...] = ()
              ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command(workdir, *args, overrides=overrides, targets=targets), capture_output=True,
                            text=True, env=ENV, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def planned_jobs(workdir: Path, overrides: str = "", targets: tuple[str, ...] = ()) -> dict[str, int]:
    """The dry run's job counts per rule."""
    text = snakemake(workdir, "-n", "--quiet", "rules", overrides=overrides, targets=targets)
    lines = (text.stdout + text.stderr).splitlines()
    return {parts[0]: int(parts[1]) for parts in map(str.split, lines)
            if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "all")}


# smoke_run (tests/conftest.py): the smoke run these tests check, shared with tests/test_slurm.py.


def test_every_table_and_figure_is_written(smoke_run: Path) -> None:
    for table in ("vc_table1", "vc_table3", "vc_table4", "vc_table5"):
        for ext in ("csv", "md", "tex", "compare.md"):
            assert (smoke_run / "tables" / f"{table}.{ext}").stat().st_size > 0
    for figure in ("vc_fig1", "vc_fig2", "vc_fig3"):
        for ext in ("png", "pdf"):
            assert (smoke_run / "figures" / f"{figure}.{ext}").stat().st_size > 0
    for table in ("pv_table2a", "pv_table2b", "pv_table2c", "pv_table2d", "pv_table2e", "pv_table3", "pv_table4",
                  "pv_table5"):
        for ext in ("csv", "md", "tex", "compare.md"):
            assert (smoke_run / "tables" / f"{table}.{ext}").stat().st_size > 0
    for ext in ("png", "pdf"):
        assert (smoke_run / "figures" / f"pv_fig1.{ext}").stat().st_size > 0
    for table in ("en_table1", "en_table2", "en_table3", "en_table4", "en_table5", "en_table6"):
        for ext in ("csv", "md", "tex", "compare.md"):
            assert (smoke_run / "tables" / f"{table}.{ext}").exists()
    for ext in ("csv", "md", "tex", "compare.md"):
        assert (smoke_run / "tables" / f"vd_table1.{ext}").stat().st_size > 0
    for figure in ("vd_fig4", "vd_fig5", "vd_fig7", "vd_fig8", "vd_fig10"):
        for ext in ("png", "pdf"):
            assert (smoke_run / "figures" / f"{figure}.{ext}").stat().st_size > 0
    for table in ("kr_table1", "kr_table2", "kr_table3", "kr_table4"):
        for ext in ("csv", "md", "tex"):
            assert (smoke_run / "tables" / f"{table}.{ext}").stat().st_size > 0
    for figure in ("kr_fig2", "kr_fig3", "kr_fig4", "kr_fig5"):
        for ext in ("png", "pdf"):
            assert (smoke_run / "figures" / f"{figure}.{ext}").stat().st_size > 0
    for compared in ("kr_table1", "kr_fig2", "kr_fig3", "kr_fig4", "kr_fig5"):
        assert (smoke_run / "tables" / f"{compared}.compare.md").stat().st_size > 0
    assert (smoke_run / "logs" / "train" / "a_c10.log").exists()
    assert (smoke_run / "benchmarks" / "certify" / "a_c10.tsv").exists()


def test_dataset_tables_have_the_grid_and_invariants(smoke_run: Path) -> None:
    for table in ("vc_table3", "vc_table4", "vc_table5"):
        long = pd.read_csv(smoke_run / "tables" / f"{table}.csv", keep_default_na=False, na_values=[""])
        verified = long[long["metric"] == "verified_accuracy"]
        # 2 costs x 2 norms x 3 eps in the smoke grid
        assert len(verified) == 12
        assert set(verified["norm"]) == {"linf", "l2"}
        accuracy = long[(long["metric"] == "accuracy") & (long["section"] == "full")].set_index("cost_fn")["value"]
        for (cost, _norm), group in verified.groupby(["cost_fn", "norm"]):
            values = group.sort_values("eps")["value"].to_numpy()
            assert np.all(np.diff(values) <= 1e-12), f"{table}: verified accuracy rises with eps"
            assert np.all(values <= accuracy[cost] + 1e-12), f"{table}: verified accuracy above accuracy"
        assert set(long["section"]) == {"full", "train", "val"}


def test_per_sample_results_are_consistent(smoke_run: Path) -> None:
    samples = pd.read_parquet(smoke_run / "certify" / "b_c1.parquet")
    expected = ["sample_id", "split", "x1", "x2", "label", "prediction", "norm", "eps", "method", "lower",
                "upper", "verified", "certified_radius"]
    assert list(samples.columns) == expected
    assert (samples["lower"] <= samples["upper"]).all()
    verified = samples[samples["verified"]]
    assert (verified["label"] == verified["prediction"]).all()
    # The bisection's radius is a lower bound of the robust radius; bounds are not monotone in eps,
    # so a sample verified at eps may have a smaller radius. Both are per (sample, norm).
    radii = samples[samples["certified_radius"].notna()]  # NaN on rows of other methods
    assert (radii["certified_radius"] >= 0).all()
    assert (radii.groupby(["sample_id", "norm"])["certified_radius"].nunique() == 1).all()
    assert (radii.loc[radii["label"] != radii["prediction"], "certified_radius"] == 0).all()


def test_proven_results_and_tables_keep_their_invariants(smoke_run: Path) -> None:
    samples = pd.read_parquet(smoke_run / "proven" / "digits_relu_1x16.parquet")
    for column in ("sample", "model", "activation", "relaxation", "noise", "certificate", "gamma", "worst_case_eps",
                   "certified_eps", "certified_probability"):
        assert column in samples.columns
    assert set(samples["relaxation"]) == {"fast-lin", "crown"}
    assert samples["sample"].nunique() == 16  # a Table 4 model: proven.table4_samples
    certified = samples[samples["certified_eps"] > 0]
    assert (certified["certified_probability"] >= certified["gamma"] - 1e-12).all()
    # PROVEN's bounded-noise radius is never below the worst-case one; larger gamma, smaller radius.
    bounded = samples[samples["certificate"] == "hoeffding"]
    assert (bounded["certified_eps"] >= bounded["worst_case_eps"]).all()
    for _, group in bounded.groupby(["relaxation", "sample"]):
        eps = group.sort_values("gamma")["certified_eps"].to_numpy()
        assert np.all(np.diff(eps) <= 1e-12)
    table = pd.read_csv(smoke_run / "tables" / "pv_table2b.csv")
    assert set(table["model"]) == {"digits_relu_1x16"}
    assert len(table) == 6  # worst case + 5 gammas
    assert set(pd.read_csv(smoke_run / "tables" / "pv_table2e.csv")["model"]) == {"signs_arctan_1x16"}
    assert pd.read_csv(smoke_run / "tables" / "pv_table2d.csv").empty  # no sigmoid model in smoke
    verified = pd.read_csv(smoke_run / "tables" / "pv_table5.csv")
    assert (verified["verified_accuracy"] <= verified["proven_accuracy"] + 1e-12).all()
    assert (verified["proven_accuracy"] <= verified["accuracy"] + 1e-12).all()


def test_ensemble_rows_are_machine_readable_and_their_attacks_recheck(smoke_run: Path) -> None:
    import hashlib
    import json

    from nnassure.ensemble import attack_value, network_layers
    from nnassure.models import load_model

    for row in (25, 26):  # conf/experiment/smoke.yaml
        document = json.loads((smoke_run / "ensemble" / "rows" / f"{row}.json").read_text())
        assert document["format"] == "nnassure.ensemble-row/1"
        benchmark = document["benchmark"]
        assert benchmark["id"] == row and benchmark["instance"] == "mnist_7_8-6x6"
        assert set(document["methods"]) == {"milp_highs", "milp_gurobi", "maxmilp", "smt", "baselines"}
        classifiers = []
        for entry in document["classifiers"]:
            path = smoke_run.parents[1] / entry["file"]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
            model = load_model(path.with_suffix(""))
            assert model.metadata["test_accuracy"] >= 0.9
            classifiers.append(network_layers(model.model))
        assert len(classifiers) == benchmark["classifiers"]
        arrays = np.load(smoke_run / "ensemble" / "rows" / document["attacks_file"])
        points, labels = arrays["points"], arrays["labels"]
        assert points.shape == (benchmark["points"], 36) and list(labels) == document["points"]["labels"]
        for name, record in document["methods"].items():
            if record["verdict"] == "attack":
                deltas, probabilities = arrays[f"{name}_deltas"], arrays[f"{name}_probabilities"]
                assert np.abs(deltas).sum(axis=-1).max() <= benchmark["eps"] * (1 + 1e-12)
                value = attack_value(classifiers, points, labels, deltas, probabilities)
                assert value >= benchmark["alpha"] - 1e-9 and value == pytest.approx(record["value"])
            elif record["verdict"] == "robust":
                # the pre-check's bound on Val covers every randomized attack; the MILP's proof does
                # when |A| >= |C| or alpha = 1
                expected = (record.get("decided_by") == "precheck" or benchmark["alpha"] >= 1
                            or benchmark["attacks"] >= benchmark["classifiers"])
                assert record["complete"] == expected
        # both MILP backends give the same verdict on these small rows
        assert document["methods"]["milp_highs"]["verdict"] == document["methods"]["milp_gurobi"]["verdict"]
    table = pd.read_csv(smoke_run / "tables" / "en_table4.csv")
    assert set(table["id"]) == {25, 26}


def test_video_bounds_are_ordered_and_their_adversarial_flows_recheck(smoke_run: Path) -> None:
    import json

    import torch

    from nnassure.video.model import load_flow_lstm

    model = load_flow_lstm(smoke_run / "models" / "video" / "flow_lstm").model.double()
    for clip in (0, 1):
        summary = json.loads((smoke_run / "video" / "bounds" / f"{clip}.json").read_text())
        assert summary["true_class"] == summary["predicted_class"]
        upper, astar = summary["upper"]["distance"], summary["astar"]
        lirpa = summary["lirpa"]["l2"]["radius"]
        assert upper is not None and 0 < lirpa <= upper  # both bound the whole flow ball's MSR
        if astar["subspace_upper"] is not None:  # both bound the MSR within A*'s subspace
            assert astar["lower"] <= astar["subspace_upper"]
            assert summary["lirpa"]["subspace"]["radius"] <= astar["subspace_upper"]
        arrays = np.load(smoke_run / "video" / "bounds" / f"{clip}_flows.npz")
        assert bool(arrays["has_adversarial"])
        flow, adversarial = (torch.as_tensor(arrays[k], dtype=torch.float64) for k in ("flow", "adversarial"))
        with torch.no_grad():
            logits = model(adversarial[None])[0]
        assert summary["classes"][int(logits.argmax())] == summary["upper"]["adversarial_class"]
        assert float((adversarial - flow).norm()) == pytest.approx(upper, rel=1e-9)
        trace = pd.read_parquet(smoke_run / "video" / "bounds" / f"{clip}_trace.parquet")
        for bound, part in trace.groupby(["bound", "flows"]):
            values = part.sort_values("iteration")["value"].dropna().to_numpy()
            steps = np.diff(values)
            assert (steps <= 0).all() if "upper" in bound[0] else (steps >= 0).all(), bound


def test_kri_tensor_cells_recompute_from_the_model_and_the_seed(smoke_run: Path) -> None:
    """The smoke run's risk tensor: random cells of every scenario and model equal a recomputation
    from the stored model, the test image and the cell's seed; attacks kept their budgets (float64);
    every certificate is at or above its Monte-Carlo interval (kr_table3)."""
    import torch

    from nnassure.config import compose
    from nnassure.data.images import load_image_dataset
    from nnassure.kri.model import load_kri_model, to_model_input
    from nnassure.kri.scenarios import perturb_cell
    from nnassure.kri.tensor import open_tensor

    cfg = compose(["experiment=smoke"])
    k = cfg.kri
    tensor = open_tensor(smoke_run / "kri" / "tensor.nc")
    assert list(tensor["model"].values) == list(k.models)
    assert sorted([*tensor["scenario"].values, *tensor["attack"].values]) == sorted(k.scenarios)
    images = load_image_dataset(smoke_run / "kri" / "data" / "signs.npz").arrays("test", flatten=False)[0]
    images = images[: int(k.samples)]
    rng = np.random.default_rng(0)
    for model_name in k.models:
        model = load_kri_model(smoke_run / "models" / "kri" / model_name).model
        for name in k.scenarios:
            scenario = k.scenarios[name]
            attack = scenario.family == "adversarial"
            sample = int(rng.integers(len(images)))
            draw = 0 if attack else int(rng.integers(int(scenario.draws or k.draws)))
            cell = perturb_cell(name, scenario, images[sample], sample, draw, int(k.seed), model=model,
                                classes=int(tensor.sizes["class"]))
            with torch.no_grad():
                logits = model(torch.as_tensor(to_model_input(cell.images[0]))).numpy()[0]
            where = {"model": model_name, "sample": sample}
            if attack:
                stored = tensor["logits_adv"].sel(attack=name, **where).values
                norm = float(tensor["perturbation_norm_adv"].sel(attack=name, **where))
                assert norm <= float(scenario.params.eps), (model_name, name, norm)
            else:
                stored = tensor["logits"].sel(scenario=name, draw=draw, **where).values
            np.testing.assert_allclose(stored, logits, atol=1e-5, err_msg=f"{model_name} {name} {sample} {draw}")
            clean = tensor["clean_logits"].sel(**where).values
            risk = tensor["risk_adv"].sel(attack=name, **where) if attack else \
                tensor["risk"].sel(scenario=name, draw=draw, **where)
            assert float(risk.sel(loss="class_change")) == float(np.argmax(stored) != np.argmax(clean))
    norms = tensor["perturbation_norm_adv"].values
    eps = np.array([float(k.scenarios[str(a)].params.eps) for a in tensor["attack"].values])
    assert (norms <= eps[None, :, None]).all()
    table3 = pd.read_csv(smoke_run / "tables" / "kr_table3.csv")
    assert len(table3) == len(k.models) * len(k.certify.scenarios)
    assert (table3["certified_bound"] >= table3["cp_low"]).all() and (table3["certified_bound"] <= 1).all()


def test_the_kri_benchmark_adds_a_scenario_without_touching_the_results(smoke_run: Path, tmp_path: Path) -> None:
    from nnassure.bench import kri

    before = {p: p.stat().st_mtime_ns for p in (smoke_run / "kri").rglob("*")}
    out = tmp_path / "kri.md"
    kri.main(["experiment=smoke", f"results_dir={smoke_run.parent}", "tracking=disabled", "--out", str(out)])
    report = out.read_text()
    assert "## Adding one scenario" in report and "adding / own" in report
    assert re.search(r"\| (met|not met) +\|", report), report
    assert {p: p.stat().st_mtime_ns for p in (smoke_run / "kri").rglob("*")} == before


def test_rerun_does_nothing_and_a_deleted_model_is_remade_only_when_asked_for(smoke_run: Path) -> None:
    workdir = smoke_run.parents[1]
    dry = snakemake(workdir, "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    model = smoke_run / "models" / "b_c10.safetensors"
    original = model.read_bytes()
    model.unlink()
    # rule all names the reports: an intermediate file that is gone is not needed while what was
    # made from it is up to date. Asked for, it is remade by its own job only.
    assert planned_jobs(workdir) == {}
    assert planned_jobs(workdir, targets=(str(model.relative_to(workdir)),)) == {"train": 1}
    snakemake(workdir, targets=(str(model.relative_to(workdir)),))
    # Training is seeded, so the model comes back byte for byte; Snakemake compares the checksums
    # of small inputs, so nothing made from it reruns.
    assert model.read_bytes() == original
    assert planned_jobs(workdir) == {}


# One key of each family, set on the command line: the dry run plans exactly the jobs whose stage
# reads the key, and what consumes their outputs.
@pytest.mark.parametrize(("override", "expected"), [
    ("certify.radius_steps=5", {"certify": 6, "report": 1}),
    ("search.seed=1", {"search_trial": 12, "search": 6, "train": 6, "certify": 6, "proven_verified": 6, "report": 1,
                       "report_proven": 1}),
    ("proven.table4_trials=5", {"report_proven": 1}),
    ("images.lr=0.002", {"train_classifier": 3, "proven": 3, "report_proven": 1}),
    ("ensemble.time_limit=4", {"ensemble_row": 2, "report_ensemble": 1}),
    ("ensemble.max_epochs=31", {"ensemble_train": 3, "ensemble_row": 2, "report_ensemble": 1}),
    ("video.astar_iterations=50", {"video_bounds": 2, "report_video": 1}),
    ("video.lr=0.004", {"video_train": 1, "video_bounds": 2, "report_video": 1}),
    ("kri.certify.samples=4", {"kri_certify": 3, "report_kri": 1}),
    ("kri.train.max_epochs=5", {"kri_train": 3, "kri_infer": 12, "kri_certify": 3, "kri_tensor": 1, "report_kri": 1}),
    ("kri.variants.GCE.gce_alpha=0.3", {"kri_train": 1, "kri_infer": 4, "kri_certify": 1, "kri_tensor": 1,
                                        "report_kri": 1}),
    ("kri.severity.default=2", {"kri_tensor": 1, "report_kri": 1}),
    # Adding a scenario component: one inference job per model and the merge; nothing else reruns.
    ("+kri.scenarios.fog2={family:weather,kind:fog,params:{coefficient:[0.5,0.7]}}",
     {"kri_infer": 3, "kri_tensor": 1, "report_kri": 1}),
    # A certified one adds its certificate jobs too, and the certificates already made stay.
    ("+kri.scenarios.noise2={family:random_noise,kind:uniform,params:{amplitude:0.01}} "
     "kri.certify.scenarios=[gaussian,noise2]", {"kri_infer": 3, "kri_certify": 3, "kri_tensor": 1, "report_kri": 1}),
    ("tracking.project=elsewhere", {}),
])
def test_changing_one_key_reruns_exactly_the_jobs_that_read_it(smoke_run: Path, override: str,
                                                               expected: dict[str, int]) -> None:
    assert planned_jobs(smoke_run.parents[1], overrides=override) == expected


def test_adding_a_scenario_runs_only_its_inferences_and_keeps_every_stored_file(smoke_run: Path,
                                                                               tmp_path: Path) -> None:
    """Schwerdtner et al., Sec. 4: scenario components can be added later. On a copy of the smoke
    run, adding one runs its kri_infer job per model, the merge and the report; every inference,
    model and certificate already stored stays byte for byte and is not rewritten."""
    workdir = tmp_path / "run"
    shutil.copytree(smoke_run.parents[1], workdir, symlinks=True)
    root = workdir / "results" / "smoke"
    kept = sorted(p for d in ("kri/infer", "kri/certify", "models/kri") for p in (root / d).rglob("*") if p.is_file())
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in kept}
    added = "+kri.scenarios.fog2={family:weather,kind:fog,params:{coefficient:[0.5,0.7]}}"
    result = snakemake(workdir, overrides=added)
    ran = re.findall(r"^(?:local)?rule (\w+):", result.stdout + result.stderr, flags=re.M)
    assert sorted(ran) == sorted(["kri_infer"] * 3 + ["kri_tensor", "report_kri", "all"]), ran
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in kept} == before
    from nnassure.kri.tensor import open_tensor

    tensor = open_tensor(root / "kri" / "tensor.nc")
    assert "fog2" in tensor["scenario"].values
    assert sorted(p.parent.name for p in (root / "kri" / "infer").rglob("fog2.nc")) == ["GCE", "Gauss09", "NNet"]


def test_a_key_the_pipeline_would_ignore_is_refused_before_any_job(smoke_run: Path) -> None:
    result = subprocess.run(command(smoke_run.parents[1], "-n", overrides="model.width=7"), capture_output=True,
                            text=True, env=ENV, timeout=300)
    assert result.returncode != 0
    assert [line for line in result.stderr.splitlines() if line.startswith("nnassure: ")
            and "model.width" in line], result.stderr[-2000:]


def test_make_report_collects_every_table_and_figure(smoke_run: Path) -> None:
    workdir = smoke_run.parents[1]
    result = subprocess.run(["make", "-C", str(REPO), "report", "EXPERIMENT=smoke", f"WORKDIR={workdir}"],
                            capture_output=True, text=True, env=ENV, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = (smoke_run / "report.html").read_text()
    ids = {p.name.split(".")[0] for d in ("tables", "figures") for p in (smoke_run / d).iterdir()}
    assert len(ids) >= 20
    for item in sorted(ids):
        assert item in html, f"{item} is missing from the report"
    from nnassure.report import catalog

    for entry in catalog.ENTRIES:  # every entry the smoke config produces has its caption in the report
        if entry.id in ids:
            assert " ".join(entry.caption.split()[:4]) in html, entry.id


def kill_in_the_middle(workdir: Path) -> None:
    """Start the smoke run and SIGKILL it, with everything it started, once a third of its jobs are
    done: what a lost session does to `make run`."""
    log = workdir / "killed-run.log"
    workdir.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        process = subprocess.Popen(command(workdir), stdout=out, stderr=subprocess.STDOUT, env=ENV,
                                   start_new_session=True)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and process.poll() is None:
        done = re.findall(r"(\d+) of (\d+) steps", log.read_text())
        if done and 3 * int(done[-1][0]) >= int(done[-1][1]):
            break
        time.sleep(0.5)
    assert process.poll() is None, "the run ended before it could be killed:\n" + log.read_text()[-3000:]
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert any((workdir / ".snakemake" / "locks").iterdir()), "a killed run leaves its locks behind"


def untimed(markdown: str) -> list[str]:
    """A compare file without its timings: "<number> s" replaced, lines about minutes dropped, and
    table padding collapsed (a cell's width follows the length of the time printed in it)."""
    seconds = re.compile(r"[0-9.]+(e-?[0-9]+)? s\b")
    return [re.sub(r"[ \-:]+", " ", seconds.sub("<s>", line)) for line in markdown.splitlines()
            if "minutes" not in line]


# What the killed run remakes on a copy of the smoke run: a slice of every family, from trained
# models (verified classification) and solver or bound jobs (ensemble rows, video clips) to the
# risk tensor and every table and figure, so the kill lands among jobs of all kinds. (A whole run
# from scratch took 4.5 min of the suite's budget for the same check.)
REMADE = ("models/a_c1.*", "models/b_c10.*", "models/c_c1.*", "ensemble/rows/*", "video/bounds/*", "kri/tensor.nc",
          "tables/*", "figures/*")


def test_a_run_killed_midway_resumes_with_the_same_command_to_byte_identical_tables(
        smoke_run: Path, tmp_path: Path) -> None:
    shutil.copytree(smoke_run.parents[1], tmp_path, symlinks=True, dirs_exist_ok=True)
    for pattern in REMADE:
        for path in (tmp_path / "results" / "smoke").glob(pattern):
            path.unlink()
    kill_in_the_middle(tmp_path)
    snakemake(tmp_path)  # the same command again: stale locks and incomplete jobs are handled
    other = tmp_path / "results" / "smoke" / "tables"
    names = sorted(p.name for p in (smoke_run / "tables").iterdir())
    assert names == sorted(p.name for p in other.iterdir())
    # The ensemble and video tables report solver and bound times, which differ between runs;
    # everything else in them must not.
    timed = [n for n in names if n.startswith(("en_", "vd_", "kr_"))]
    match, mismatch, errors = filecmp.cmpfiles(smoke_run / "tables", other, [n for n in names if n not in timed],
                                               shallow=False)
    assert not mismatch and not errors, mismatch
    for name in (n for n in timed if n.endswith(".csv")):
        ours, theirs = (pd.read_csv(d / name) for d in (smoke_run / "tables", other))
        columns = [c for c in ours.columns if c != "seconds" and not c.endswith("_seconds")]
        pd.testing.assert_frame_equal(ours[columns], theirs[columns])
    for name in (n for n in timed if n.startswith(("vd_", "kr_")) and n.endswith(".compare.md")):
        ours, theirs = (untimed((d / name).read_text()) for d in (smoke_run / "tables", other))
        assert ours == theirs, name
    shutil.rmtree(tmp_path / "results")


def write_sweep(path: Path, parameters: dict) -> Path:
    import json

    path.write_text(json.dumps({"method": "grid", "parameters": parameters}))
    return path


def test_a_sweep_over_certify_eps_plans_certification_and_reports_only(smoke_run: Path, tmp_path: Path) -> None:
    """Each point certifies the experiment's trained models at its radii: no data, search or training
    job. The second point is smoke's own radii, so it is the experiment and plans nothing."""
    sweep = write_sweep(tmp_path / "eps.yaml", {"certify.eps": {"values": [[0.01, 0.025], [0.001, 0.01, 0.025]]}})
    planned = planned_sweep(smoke_run.parents[1], sweep)
    assert planned == {"certify__eps_0": 6, "proven_verified__eps_0": 6, "report__eps_0": 1,
                       "report_proven__eps_0": 1, "sweep_summary": 1}


def test_a_sweep_over_the_training_cost_plans_the_search_training_and_what_follows_only(
        smoke_run: Path, tmp_path: Path) -> None:
    """Cost 10 is in smoke's grid, so that point only redraws its reports from the stored
    certificates; cost 5 is new: its search (Sec. 4.2 selects by the cost-weighted validation cost),
    training, certification and PROVEN's risks run once, beside the experiment's own costs, for
    each data set; the data and baselines are shared."""
    sweep = write_sweep(tmp_path / "cost.yaml", {"train.cost_fn": {"values": [10.0, 5.0]}})
    assert planned_sweep(smoke_run.parents[1], sweep) == {
        "search_trial": 6, "search": 3, "train": 3, "certify": 3, "proven_verified": 3,
        "report__cost_0": 1, "report_proven__cost_0": 1, "report__cost_1": 1, "report_proven__cost_1": 1,
        "sweep_summary": 1}


def planned_sweep(workdir: Path, sweep: Path) -> dict[str, int]:
    text = snakemake(workdir, f"sweep={sweep}", "-n", "--quiet", "rules")
    lines = (text.stdout + text.stderr).splitlines()
    return {parts[0]: int(parts[1]) for parts in map(str.split, lines)
            if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "all")}


def test_a_sweep_runs_its_points_jobs_under_the_point_and_summarizes_every_point(smoke_run: Path,
                                                                                 tmp_path: Path) -> None:
    """On a copy of the smoke run: a sweep over certify.radius_steps certifies at 5 steps under
    sweeps/steps/<point>/ (8 is smoke's own value, the experiment), writes nothing elsewhere, and
    its summary has both points, the experiment's numbers for the point that is the experiment."""
    workdir = tmp_path / "run"
    shutil.copytree(smoke_run.parents[1], workdir, symlinks=True)
    root = workdir / "results" / "smoke"
    stored = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    sweep = write_sweep(tmp_path / "steps.yaml", {"certify.radius_steps": {"values": [5, 8]}})
    result = snakemake(workdir, f"sweep={sweep}")
    ran = re.findall(r"^(?:local)?rule (\w+):", result.stdout + result.stderr, flags=re.M)
    assert sorted(ran) == sorted(["certify__steps_0"] * 6 + ["report__steps_0", "sweep_summary", "all"]), ran
    point = root / "sweeps" / "steps" / "certify.radius_steps=5"
    assert sorted(p.name for p in (point / "certify").glob("*.parquet")) == sorted(
        p.name for p in (root / "certify").glob("*.parquet"))
    assert (point / "tables" / "vc_table3.csv").is_file() and not (point / "models").exists()
    new = {p for p in root.rglob("*") if p.is_file()} - set(stored)
    assert all(p.is_relative_to(root / "sweeps" / "steps") for p in new), sorted(new)[:5]
    assert {p: p.stat().st_mtime_ns for p in stored} == stored
    summary = pd.read_csv(root / "sweeps" / "steps" / "summary.csv")
    assert sorted(summary["point"].unique()) == ["certify.radius_steps=5", "certify.radius_steps=8"]
    assert set(summary["family"]) == {"verified-classification"}
    from nnassure.sweep.summary import HEADLINES

    experiment = HEADLINES["verified-classification"]([str(p) for p in (root / "tables").glob("vc_table*.csv")])
    rows = summary[summary["point"] == "certify.radius_steps=8"].set_index("metric")["value"]
    assert rows.to_dict() == pytest.approx(experiment) and experiment
    assert (root / "sweeps" / "steps" / "summary.md").read_text().startswith("# Sweep steps")
