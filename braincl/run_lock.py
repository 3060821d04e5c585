"""One run per output folder.

``run_experiment`` holds an exclusive ``flock`` on ``OUT/.braincl.lock`` while it works, and the file
names the holder (pid, host, start time). A second run on the same folder fails the non-blocking
lock at once and is refused with that name, instead of racing the first for ``checkpoint.pt`` and
``metrics.json``. The kernel releases a ``flock`` when its process dies, however it dies, so a lock
file left by a killed run is stale by construction: the next run takes the lock and says whose it
was. The holder removes the file before it lets go; a run that opened the file just before that
notices (the path no longer names the file it locked) and tries again, so two runs never both hold
a lock (the pattern of the util-linux ``flock`` and of ``lockfile`` implementations).

On network file systems ``flock`` is as good as the file system's own locking (NFSv4 supports it).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path

from .config import ConfigError

LOCK_NAME = ".braincl.lock"


class FolderInUse(ConfigError):
    """Another live run holds the output folder."""


def _holder(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    try:
        info = json.loads(raw.decode())
        return info if isinstance(info, dict) else {}
    except (UnicodeDecodeError, ValueError):
        return {}


def describe(info: dict) -> str:
    if not info.get("pid"):
        return "a braincl run that is just starting"
    since = f", started {info['started']}" if info.get("started") else ""
    return f"pid {info['pid']} on host {info.get('host', '?')}{since}"


class RunLock:
    """The held lock of one folder; ``release`` removes the file, then lets go of the lock."""

    def __init__(self, path: Path, fd: int, previous: dict):
        self.path, self._fd = path, fd
        self.previous = previous  # the holder named in a stale file that was taken over, else {}

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def acquire(folder: str | Path) -> RunLock:
    """Create ``folder`` if needed and lock it; ``FolderInUse`` if a live run holds it."""
    folder = Path(folder)
    path = folder / LOCK_NAME
    for _ in range(100):  # each retry means another run released or removed the folder meanwhile
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # the umask applies, as to every output
        except FileNotFoundError:
            continue  # the folder was removed between mkdir and open (a refused run tidying up)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = describe(_holder(fd))
            os.close(fd)
            raise FolderInUse(
                f"output folder (--out) {folder} is in use by another braincl run ({other}); wait for it to "
                "finish or stop it, or give this run another --out") from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        except BaseException:
            os.close(fd)
            raise
        if not same:  # its holder removed it after we opened it: lock the file the path names now
            os.close(fd)
            continue
        lock = RunLock(path, fd, {})
        try:
            lock.previous = _holder(fd)
            mine = {"pid": os.getpid(), "host": socket.gethostname(),
                    "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(mine) + "\n").encode(), 0)
            return lock
        except BaseException:  # interrupted while holding it: leave no lock file behind
            lock.release()
            raise
    raise FolderInUse(f"output folder (--out) {folder} keeps changing under this run; give this run another --out")
