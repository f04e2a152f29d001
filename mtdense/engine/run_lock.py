"""A run folder has one owner: ``<run>/run.lock`` names the host, process and start time.

A second ``mtdense train`` into the same ``trainer.out_dir`` is refused with one line naming the
holder. A lock left by a process that no longer exists on this host is stale: it is replaced,
and the caller is told. (Locks from another host cannot be checked; the message says how to
remove one by hand.)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path

from mtdense.errors import ConfigError

LOCK_FILE = "run.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """``acquire()`` / ``release()`` the lock of ``run_dir``; ``note`` says if a stale lock was replaced."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self.note: str | None = None
        self.held = False

    def _holder(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"host": socket.gethostname(), "pid": os.getpid(), "since": dt.datetime.now().isoformat(timespec="seconds")}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder.get("host") == me["host"] and isinstance(holder.get("pid"), int) and not _alive(holder["pid"]):
                    self.note = f"{self.path}: removed a stale lock of process {holder['pid']} (no longer running)"
                    self.path.unlink(missing_ok=True)
                    continue
                raise ConfigError(
                    f"{self.path.parent} is in use by process {holder.get('pid', '?')} on {holder.get('host', '?')} "
                    f"since {holder.get('since', '?')}; choose another trainer.out_dir, or delete {self.path} if that "
                    "process is gone", key="trainer.out_dir") from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
