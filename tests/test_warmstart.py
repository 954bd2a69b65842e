"""Warm start (nnassure.warmstart, nnassure.launch): a job run in a fork of the server behaves as
the same job run as its own process: arguments, working directory, environment, standard streams
and exit status; a signal to the job reaches the stage, and a job whose launcher is killed does not
run on. The stages are tests/warm_stages/."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nnassure.warmstart import start_server, stop_server

TESTS = Path(__file__).resolve().parent


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "NNASSURE_STAGE_PACKAGE": "warm_stages", **extra}


def _start() -> tuple:
    """A server that imports the test stages (it reads the stage package from its environment)."""
    saved = dict(os.environ)
    os.environ.update(_env())
    try:
        started = start_server(tracking=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert started is not None
    return started


@pytest.fixture(scope="module")
def server():
    started = _start()
    yield started[1]
    stop_server(started)
    assert not Path(started[1]).exists()


def launch(stage: str, *args: str, address: str | None, tmp_path: Path, **env: str) -> tuple[int, str, str]:
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    extra = {"NNASSURE_WARMSTART": address} if address else {}
    with open(out, "w") as stdout, open(err, "w") as stderr:
        code = subprocess.run([sys.executable, "-m", "nnassure.launch", stage, *args], stdout=stdout, stderr=stderr,
                              cwd=tmp_path, env=_env(**extra, **env), timeout=120).returncode
    return code, out.read_text(), err.read_text()


@pytest.mark.parametrize("warm", [True, False])
def test_a_job_sees_its_own_arguments_directory_environment_and_streams(server, tmp_path, warm) -> None:
    code, out, err = launch("echo", "a=1", "b=two words", "exit=3", address=server if warm else None,
                            tmp_path=tmp_path, NNASSURE_TEST_VALUE="from the job")
    assert code == 3
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    assert lines["argv"] == "a=1 b=two words exit=3"
    assert lines["cwd"] == str(tmp_path)
    assert lines["value"] == "from the job"
    assert err == "to stderr\n"
    assert int(lines["pid"]) != os.getpid()


def test_warm_and_cold_jobs_give_the_same_output(server, tmp_path) -> None:
    warm = launch("echo", "x=1", address=server, tmp_path=tmp_path)
    cold = launch("echo", "x=1", address=None, tmp_path=tmp_path)
    def strip(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("pid ")]

    assert warm[0] == cold[0] == 0 and strip(warm[1]) == strip(cold[1]) and warm[2] == cold[2]


@pytest.mark.parametrize("warm", [True, False])
def test_an_exception_in_a_stage_is_a_traceback_and_status_1(server, tmp_path, warm) -> None:
    code, _, err = launch("crash", address=server if warm else None, tmp_path=tmp_path)
    assert code == 1
    assert "Traceback" in err and "ValueError: a bug in a stage" in err


def test_no_server_at_the_address_runs_the_job_on_its_own(tmp_path) -> None:
    code, out, _ = launch("echo", "exit=0", address=str(tmp_path / "no-such-socket"), tmp_path=tmp_path)
    assert code == 0 and "argv exit=0" in out


def _wait_for(path: Path, seconds: float = 30.0) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written")


def _gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_sigterm_to_the_launcher_reaches_the_stage(server, tmp_path) -> None:
    pid_file = tmp_path / "pid"
    client = subprocess.Popen([sys.executable, "-m", "nnassure.launch", "sleeper", str(pid_file)],
                              env=_env(NNASSURE_WARMSTART=server), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    worker = _wait_for(pid_file)
    client.send_signal(signal.SIGTERM)
    assert client.wait(timeout=30) == 128 + signal.SIGTERM
    assert _gone(worker)


def test_a_killed_launcher_leaves_no_stage_running(server, tmp_path) -> None:
    pid_file = tmp_path / "pid"
    client = subprocess.Popen([sys.executable, "-m", "nnassure.launch", "sleeper", str(pid_file)],
                              env=_env(NNASSURE_WARMSTART=server), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    worker = _wait_for(pid_file)
    client.kill()  # SIGKILL: nothing can be forwarded; the server sees the connection close
    client.wait(timeout=30)
    assert _gone(worker)


def test_stopping_the_server_stops_its_jobs(tmp_path) -> None:
    started = _start()
    pid_file = tmp_path / "pid"
    client = subprocess.Popen([sys.executable, "-m", "nnassure.launch", "sleeper", str(pid_file)],
                              env=_env(NNASSURE_WARMSTART=started[1]), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    worker = _wait_for(pid_file)
    stop_server(started)
    assert _gone(worker)
    assert client.wait(timeout=30) != 0  # the job did not finish: never reported as a success


def test_a_bad_stage_name_is_refused_in_one_line(tmp_path) -> None:
    code, _, err = launch("../etc", address=None, tmp_path=tmp_path)
    assert code == 2 and err.startswith("usage: python -m nnassure.launch")


def test_a_warm_job_records_its_own_cpu_time_and_memory_and_a_cold_one_removes_the_record(server, tmp_path) -> None:
    import json

    usage = tmp_path / "job.tsv.usage.json"
    code, _, _ = launch("echo", address=server, tmp_path=tmp_path, NNASSURE_JOB_USAGE=str(usage))
    assert code == 0
    record = json.loads(usage.read_text())
    assert record["max_rss_mb"] > 10 and record["cpu_seconds"] >= 0  # a Python process, not the launcher
    code, _, _ = launch("echo", address=None, tmp_path=tmp_path, NNASSURE_JOB_USAGE=str(usage))
    assert code == 0 and not usage.exists()  # its benchmark file measures it: no stale record left
