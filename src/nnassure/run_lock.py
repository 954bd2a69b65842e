"""Resume after a killed run: tell Snakemake's stale directory locks from live ones.

Snakemake locks its working directory with plain files under ``.snakemake/locks/`` and removes them
when it exits; a run killed by SIGKILL, a lost session or a power cut leaves them behind, and the
next run stops at "Directory cannot be locked" until someone runs ``--unlock``. Those files cannot
say whether their owner is still alive, so every main Snakemake process of this workflow also
holds an advisory ``flock`` on ``.snakemake/nnassure-run.lock`` for as long as it lives; the kernel
drops it when the process dies, however it dies. A new run that gets the flock knows that no other
run of this workflow is alive in the directory, so any Snakemake lock files left there are stale
and it removes them, which is what ``--unlock`` does. A run that cannot get the flock leaves the
lock files alone, and Snakemake refuses to start as it should.

Written by hand because Snakemake has no liveness check of its own (its locks hold file lists,
not process ids).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

RUN_LOCK = Path(".snakemake") / "nnassure-run.lock"
SNAKEMAKE_LOCKS = Path(".snakemake") / "locks"


def hold_run_lock(workdir: str | Path = ".") -> IO[str] | None:
    """Take the run's flock in ``workdir``; if it was free, remove stale Snakemake locks.

    Returns the open lock file, which the caller keeps for the life of the process (closing it
    releases the flock), or ``None`` when another live run holds it or the file system has no
    flock (then nothing is removed).
    """
    path = Path(workdir) / RUN_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - kept open on purpose: the flock lives with the file
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    locks = Path(workdir) / SNAKEMAKE_LOCKS
    if locks.is_dir():
        for stale in locks.iterdir():
            stale.unlink(missing_ok=True)
    return handle
