"""The workflow's promises that need no full run: --config checking, the default profile, the
stage-key declarations and their projection, stale-lock recovery, the --use-conda post-deploy
script. The end-to-end ones (resume after SIGKILL, exact reruns, the HTML report) are in
test_pipeline.py, on the smoke run."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError

from nnassure import stage_keys
from nnassure.config import compose
from nnassure.run_lock import RUN_LOCK, SNAKEMAKE_LOCKS, hold_run_lock

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
STAGES = sorted(p.stem for p in (REPO / "src" / "nnassure" / "stages").glob("*.py") if not p.stem.startswith("_"))
# The wildcards of a KRI job: its keys name the entries of its own variant and scenario.
KRI_JOB = ["kri.variant=GCE", "kri.scenario=gaussian"]


def dry_run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(SNAKEMAKE), "-n", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


def test_a_mistyped_config_key_fails_with_one_line_naming_it() -> None:
    result = dry_run("--config", "experment=paper")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "experment" in line]
    assert len(errors) == 1 and errors[0].startswith("nnassure: unknown --config key 'experment'")
    assert "Traceback" not in result.stderr


def test_a_bad_override_fails_with_one_line() -> None:
    result = dry_run("--config", "experiment=smoke", "overrides=certify.eps=[-1]")
    assert result.returncode != 0
    assert any(line.startswith("nnassure: ") and "certify.eps" in line for line in result.stderr.splitlines())


def test_plain_snakemake_from_the_root_loads_the_default_profile() -> None:
    result = dry_run("--config", "experiment=smoke")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Using workflow specific profile profiles/default" in result.stderr
    assert (REPO / "profiles" / "default" / "config.yaml").resolve() == \
        REPO / "workflow" / "profiles" / "default" / "config.yaml"


def test_every_stage_declares_its_keys_and_every_declared_key_exists() -> None:
    assert sorted(stage_keys.STAGES) == STAGES
    cfg = compose(["experiment=smoke", *KRI_JOB])
    for stage in STAGES:
        projected = stage_keys.project(cfg, stage)  # raises ConfigError for a key the config lacks
        assert OmegaConf.is_readonly(projected)
        assert len(stage_keys.digest(cfg, stage)) == 16


def test_a_stage_sees_only_its_keys() -> None:
    cfg = compose(["experiment=smoke"])
    certify = stage_keys.project(cfg, "certify")
    assert list(certify.certify.eps) == list(cfg.certify.eps) and certify.threads == cfg.threads
    with pytest.raises(ConfigAttributeError):
        _ = certify.search
    with pytest.raises(ConfigAttributeError):
        _ = stage_keys.project(cfg, "ensemble_train").ensemble.time_limit


@pytest.mark.parametrize(("override", "changed", "unchanged"), [
    ("ensemble.time_limit=3", {"ensemble_row", "report_ensemble"}, {"ensemble_train", "ensemble_data"}),
    ("proven.table4_trials=3", {"report_proven"}, {"proven", "train_classifier"}),
    ("model.width=7", set(), {"search", "train"}),
    ("certify.radius_steps=3", {"certify"}, {"report", "proven_verified", "train"}),
    ("video.brightness=[0.1]", {"video_bounds", "report_video"}, {"video_train", "video_data"}),
    ("video.hidden=16", {"video_train"}, {"video_data", "video_bounds", "report_video"}),
    # assess_kri runs the scenario components on an outside model, with the KRI family's draws
    ("kri.draws=3", {"kri_infer", "kri_tensor", "assess_kri"}, {"kri_train", "kri_certify", "kri_data"}),
    ("kri.certify.samples=4", {"kri_certify", "report_kri"}, {"kri_infer", "kri_tensor", "kri_train"}),
    # which scenarios are certified decides which certificate jobs exist, not what one computes
    ("kri.certify.scenarios=[]", {"report_kri"}, {"kri_certify"}),
    ("kri.severity.default=2", {"kri_tensor", "report_kri"}, {"kri_infer", "kri_certify"}),
    ("kri.variants.GCE.gce_alpha=0.3", {"kri_train", "report_kri"}, {"kri_infer", "kri_tensor", "kri_data"}),
    ("kri.variants.NNet.description=x", {"report_kri"}, {"kri_train"}),
    ("+kri.scenarios.fog.draws=2", {"kri_tensor", "report_kri", "assess_kri"}, {"kri_infer", "kri_certify"}),
    ("kri.scenarios.gaussian.params.sigma=0.1", {"kri_infer", "kri_certify", "kri_tensor", "report_kri", "assess_kri"},
     {"kri_train"}),
    ("tracking.project=other", set(), set(stage_keys.STAGES)),
])
def test_a_key_changes_the_digests_of_exactly_the_stages_that_read_it(
        override: str, changed: set[str], unchanged: set[str]) -> None:
    before, after = compose(["experiment=smoke", *KRI_JOB]), compose(["experiment=smoke", *KRI_JOB, override])
    differs = {s for s in stage_keys.STAGES if stage_keys.digest(before, s) != stage_keys.digest(after, s)}
    assert differs == changed
    assert not differs & unchanged


def test_a_stale_snakemake_lock_is_removed_and_a_live_one_kept(tmp_path: Path) -> None:
    locks = tmp_path / SNAKEMAKE_LOCKS
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text("results/x\n")
    holder = hold_run_lock(tmp_path)
    assert holder is not None and not any(locks.iterdir())
    (locks / "0.output.lock").write_text("results/x\n")
    # A second run while the first is alive: the lock files stay, Snakemake will refuse to start.
    probe = subprocess.run([sys.executable, "-c", "import sys; from nnassure.run_lock import hold_run_lock; "
                            f"sys.exit(0 if hold_run_lock({str(tmp_path)!r}) is None else 1)"], timeout=60)
    assert probe.returncode == 0 and (locks / "0.output.lock").exists()
    holder.close()
    with open(tmp_path / RUN_LOCK) as handle:  # released with its holder
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


@pytest.mark.slow
def test_the_post_deploy_script_installs_the_repository_from_its_copied_location(tmp_path: Path) -> None:
    """What --use-conda runs, without conda (its channels are out of reach here): Snakemake copies
    the script to .snakemake/conda/<hash>.post-deploy.sh and runs it with the environment's
    binaries first on PATH, from the run's working directory."""
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=300)
    workdir = tmp_path / "run"
    copied = workdir / ".snakemake" / "conda" / "0123abcd.post-deploy.sh"
    copied.parent.mkdir(parents=True)
    shutil.copy(REPO / "envs" / "nnassure.post-deploy.sh", copied)
    env = {**os.environ, "PATH": f"{env_dir / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "NNASSURE_REPO": str(REPO), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(["bash", str(copied)], cwd=workdir, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    listing = subprocess.run([str(env_dir / "bin" / "python"), "-c",
                              "import importlib.metadata as m, json; "
                              "print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))"],
                             capture_output=True, text=True, check=True, timeout=60)
    installed = __import__("json").loads(listing.stdout)
    assert installed.get("auto-lirpa", installed.get("auto_lirpa")) == "0.3"
    assert "nnassure" in installed
    located = subprocess.run([str(env_dir / "bin" / "python"), "-c",
                              "import importlib.util; print(importlib.util.find_spec('nnassure').origin)"],
                             capture_output=True, text=True, check=True, timeout=60, cwd=workdir)
    assert Path(located.stdout.strip()).is_relative_to(REPO / "src")


def test_the_post_deploy_script_refuses_to_guess_the_repository(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NNASSURE_REPO"}
    result = subprocess.run(["bash", str(REPO / "envs" / "nnassure.post-deploy.sh")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "NNASSURE_REPO" in result.stderr
