"""Warm start for local jobs: one process imports what the stages import, then forks a copy of
itself per job (``nnassure.launch`` is the client every rule runs).

Measured on 2 cores, a stage that does no work took 4.5 s as its own process (the interpreter,
torch, the config code and a Hydra composition) and 8.9 s with W&B offline: over the 285 jobs of
``quick`` that start-up alone was most of the run. A fork of this server starts in milliseconds
with every module already imported and the config code warm.

``python -m nnassure.warmstart <socket path>`` prints ``ready`` once it listens, and serves until
its parent (the Snakemake process that started it, ``workflow/rules/common.smk``) exits or it is
sent SIGTERM. Per job: the client sends its stage, arguments, working directory, environment and
its standard streams (the descriptors themselves, so the job writes to Snakemake's log file);
the server forks; the child takes them over and runs ``nnassure.stages.<stage>`` as ``__main__``,
exactly what ``python -m`` runs. The server reports the child's pid, then its exit status; if
the client goes away first (Snakemake killed it), the child's process group is killed.

Fork safety. The server stays single-threaded (checked before it serves: a fork copies only the
calling thread, and a lock another thread held would stay locked in the child) and never runs a
torch operation, so torch's thread pools are created in each child, not inherited. Each child
gets a fresh process group (the client forwards signals to it) and dies with the server (Linux:
PR_SET_PDEATHSIG). Written by hand: multiprocessing's forkserver starts Python callables of one
parent, not commands of independent client processes with their own streams and environment.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import selectors
import signal
import socket
import sys
import threading
import traceback
import warnings

from nnassure.launch import receive_message, send_message, stage_package

PR_SET_PDEATHSIG = 1


def _die_with_parent(signum: int) -> None:
    """Ask Linux to send ``signum`` to this process when its parent exits (a no-op elsewhere)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum)
    except (OSError, AttributeError):
        pass


def preload(tracking: bool) -> None:
    """Import every stage module (and so what each imports at its top level), W&B when the run
    tracks, and compose a config once."""
    import importlib
    import pkgutil

    package = importlib.import_module(stage_package())
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    if tracking:
        importlib.import_module("wandb")
    from nnassure.config import compose

    compose([])  # Hydra's config search path and the schema, warm in every child


def _run_child(request: dict, fds: list[int]) -> None:
    """In the forked child: become the job and run the stage; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)
        _die_with_parent(signal.SIGKILL)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 (the job's own descriptors, closed at exit)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        module = f"{stage_package()}.{request['stage']}"
        sys.argv = [module, *request["argv"]]
        # runpy warns that the stage module was imported before it runs as __main__: preloading it
        # is the point, and its code runs afresh as __main__ all the same.
        warnings.filterwarnings("ignore", message=".*found in sys.modules after import of package",
                                category=RuntimeWarning)
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if exc.code is not None and not isinstance(exc.code, int):
                print(exc.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _warm_config(request: dict) -> None:
    """Compose the job's config groups (experiment, data set, ...) here, once per distinct set, so
    that the forked job applies only its key overrides instead of running Hydra again
    (:func:`nnassure.config.warm`; measured 0.6 s of each job's 0.8 s of composing)."""
    from nnassure.config import warm

    try:
        warm([a for a in request.get("argv", []) if not a.startswith("-")])
    except Exception:  # noqa: BLE001 (the server keeps serving: the job's own compose reports any error)
        pass


def serve(address: str) -> None:
    if threading.active_count() != 1:
        raise SystemExit(f"nnassure warmstart: {threading.active_count()} threads after the imports; "
                         "forking would not be safe")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(64)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    jobs: dict[int, socket.socket] = {}  # child pid -> its client's connection
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready", flush=True)
    try:
        while not stopping:
            for key, _ in selector.select(timeout=0.05):
                if key.fileobj is listener:
                    connection, _ = listener.accept()
                    request, fds = receive_message(connection, with_fds=3)
                    if request is None or len(fds) != 3:
                        for fd in fds:
                            os.close(fd)
                        connection.close()
                        continue
                    _warm_config(request)
                    pid = os.fork()
                    if pid == 0:
                        listener.close()
                        connection.close()
                        _run_child(request, fds)
                    try:  # also here, so that no signal the client forwards can precede the child's own call
                        os.setpgid(pid, pid)
                    except OSError:  # the child got there first (or already exited)
                        pass
                    for fd in fds:
                        os.close(fd)
                    jobs[pid] = connection
                    send_message(connection, {"pid": pid})
                    selector.register(connection, selectors.EVENT_READ, pid)
                else:  # a client closed its connection while its job runs: Snakemake killed it
                    pid = key.data
                    selector.unregister(key.fileobj)
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            while jobs:
                try:
                    pid, status, usage = os.wait4(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                connection = jobs.pop(pid)
                code = os.waitstatus_to_exitcode(status)
                # the job's own use, which Snakemake's benchmark of the launcher cannot see
                measured = {"cpu_seconds": usage.ru_utime + usage.ru_stime, "max_rss_mb": usage.ru_maxrss / 1024}
                try:
                    selector.unregister(connection)
                except (KeyError, ValueError):
                    pass
                try:
                    send_message(connection, {"status": code, **measured})
                except OSError:
                    pass
                connection.close()
    finally:
        for pid in jobs:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        listener.close()
        try:
            os.unlink(address)
        except FileNotFoundError:
            pass


def start_server(tracking: bool) -> tuple[object, str] | None:
    """Start a server (``python -m nnassure.warmstart``) in a fresh temporary directory and wait
    until it listens; returns the process and its socket path, or None (with a line on stderr)
    when it could not start: the jobs then start on their own."""
    import subprocess
    import tempfile

    address = os.path.join(tempfile.mkdtemp(prefix="nnassure-warm-"), "socket")
    env = {**os.environ, "NNASSURE_WARMSTART_TRACKING": "1" if tracking else "0"}
    env.pop("NNASSURE_WARMSTART", None)
    process = subprocess.Popen([sys.executable, "-m", "nnassure.warmstart", address], stdout=subprocess.PIPE,
                               env=env, text=True)
    line = process.stdout.readline() if process.stdout is not None else ""
    if line.strip() != "ready":
        process.kill()
        print("nnassure: the warm-start server did not start; every job starts on its own", file=sys.stderr)
        return None
    return process, address


def stop_server(server: tuple[object, str] | None) -> None:
    if server is None:
        return
    process, address = server
    process.terminate()  # type: ignore[attr-defined]
    try:
        process.wait(timeout=30)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 (a server that does not stop is killed)
        process.kill()  # type: ignore[attr-defined]
    try:
        os.rmdir(os.path.dirname(address))
    except OSError:
        pass


def start_local_services(cfg: object, warm: bool = True) -> dict:
    """For a local Snakemake run: the shared wandb-core service (nnassure.tracking) and, when
    ``warm``, the warm-start server, their addresses put in this process's environment, which
    every job inherits. ``NNASSURE_WARMSTART=off`` in the environment keeps every job cold."""
    from nnassure.tracking import start_shared_service

    services: dict = {"wandb": start_shared_service(cfg), "server": None}  # type: ignore[arg-type]
    if services["wandb"]:
        os.environ["WANDB_SERVICE"] = services["wandb"]
    if warm and os.environ.get("NNASSURE_WARMSTART") != "off":
        services["server"] = start_server(cfg.tracking.mode != "disabled")  # type: ignore[attr-defined]
        if services["server"] is not None:
            os.environ["NNASSURE_WARMSTART"] = services["server"][1]
    return services


def stop_local_services(services: dict) -> None:
    from nnassure.tracking import stop_shared_service

    stop_server(services.get("server"))
    stop_shared_service(services.get("wandb"))


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m nnassure.warmstart <socket path>")
    _die_with_parent(signal.SIGTERM)
    preload(tracking=os.environ.get("NNASSURE_WARMSTART_TRACKING", "1") == "1")
    serve(sys.argv[1])


if __name__ == "__main__":
    main()
