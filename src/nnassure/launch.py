"""The command of every Snakemake rule: ``python -m nnassure.launch <stage> key=value ...``.

It runs ``nnassure.stages.<stage>`` with those arguments. When the Snakemake run started a
warm-start server (``nnassure.warmstart``; its socket in ``NNASSURE_WARMSTART``), the stage runs
in a process forked from that server, which has already imported torch, the solvers and the
config code; otherwise this process becomes the stage (``exec``), exactly as
``python -m nnassure.stages.<stage>`` would be. Either way the stage sees the same arguments,
working directory, environment, standard streams and exit status.

This module imports nothing beyond the standard library: its own start-up is what every job pays.
While the stage runs in the server's fork, SIGTERM and SIGINT sent to this process are passed on
to it, and if this process dies the server kills the stage (it watches the connection).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys

SOCKET_VARIABLE = "NNASSURE_WARMSTART"
# Where to record the job's CPU time and max RSS when it ran warm (the rules name a file beside
# their benchmark file; nnassure.bench reads it in place of the benchmark's, which measured this
# launcher). A cold job removes a stale one: its benchmark file is then right.
USAGE_VARIABLE = "NNASSURE_JOB_USAGE"
# The package whose modules are the stages (tests point it at stages of their own).
PACKAGE_VARIABLE = "NNASSURE_STAGE_PACKAGE"
HEADER = struct.Struct("!I")  # length of the JSON message that follows


def send_message(connection: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    payload = json.dumps(message).encode()
    data = HEADER.pack(len(payload)) + payload
    if fds:
        socket.send_fds(connection, [data], fds)
    else:
        connection.sendall(data)


def receive_message(connection: socket.socket, with_fds: int = 0) -> tuple[dict | None, list[int]]:
    """The next message (None at end of stream) and the file descriptors sent with it."""
    fds: list[int] = []
    if with_fds:
        data, fds, _, _ = socket.recv_fds(connection, 1 << 16, with_fds)
    else:
        data = connection.recv(1 << 16)
    if not data:
        return None, fds
    while len(data) < HEADER.size or len(data) < HEADER.size + HEADER.unpack(data[:HEADER.size])[0]:
        more = connection.recv(1 << 16)
        if not more:
            return None, fds
        data += more
    (size,) = HEADER.unpack(data[:HEADER.size])
    return json.loads(data[HEADER.size:HEADER.size + size]), fds


def stage_package() -> str:
    return os.environ.get(PACKAGE_VARIABLE, "nnassure.stages")


def _run_cold(stage: str, args: list[str]) -> None:
    usage = os.environ.get(USAGE_VARIABLE)
    if usage and os.path.exists(usage):
        os.unlink(usage)
    os.execv(sys.executable, [sys.executable, "-m", f"{stage_package()}.{stage}", *args])


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or not args[0].isidentifier():
        print("usage: python -m nnassure.launch <stage> [key=value ...]", file=sys.stderr)
        sys.exit(2)
    stage, rest = args[0], args[1:]
    address = os.environ.get(SOCKET_VARIABLE)
    if not address or address == "off":
        _run_cold(stage, rest)
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(address)
    except OSError:
        connection.close()
        _run_cold(stage, rest)  # no server (any more): the stage starts on its own
    sys.stdout.flush()
    sys.stderr.flush()
    send_message(connection, {"stage": stage, "argv": rest, "cwd": os.getcwd(), "env": dict(os.environ)},
                 [0, 1, 2])
    started, _ = receive_message(connection)
    if started is None or "pid" not in started:
        print(f"nnassure launch: the warm-start server refused {stage}: {started}", file=sys.stderr)
        sys.exit(1)
    worker = int(started["pid"])

    def forward(signum: int, _frame: object) -> None:
        try:
            os.killpg(worker, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    finished, _ = receive_message(connection)
    if finished is None:
        print(f"nnassure launch: the warm-start server ended before stage {stage} did", file=sys.stderr)
        sys.exit(1)
    code = int(finished["status"])
    usage = os.environ.get(USAGE_VARIABLE)
    if usage:
        temporary = f"{usage}.{os.getpid()}.tmp"
        with open(temporary, "w") as handle:
            json.dump({"cpu_seconds": finished.get("cpu_seconds"), "max_rss_mb": finished.get("max_rss_mb"),
                       "worker_pid": worker}, handle)
        os.replace(temporary, usage)
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
