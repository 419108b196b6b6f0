"""One writer at a time: an exclusive ``filelock`` lock on a store, naming its holder.

The lock file is ``STORE/.celltosg.lock`` (an OS advisory lock, released by the kernel when the holder
dies, even by ``kill -9``); ``STORE/.celltosg.lock.holder`` records the holder's PID and host so that a
second writer can say who holds the store.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from celltosg.errors import StoreError
from celltosg.io_utils import atomic_file

LOCK = ".celltosg.lock"
HOLDER = ".celltosg.lock.holder"


def holder(root: str | Path) -> str:
    """Who holds (or last held) the store's lock: ``PID <pid> on host <host>``, or ``an unknown process``."""
    try:
        record = json.loads((Path(root) / HOLDER).read_text())
        return f"PID {record['pid']} on host {record['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "an unknown process"


def is_locked(root: str | Path) -> bool:
    """Whether another process holds the store's writer lock now (False when the store cannot be locked)."""
    path = Path(root) / LOCK
    if not path.is_file():
        return False
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    except OSError:  # a read-only store cannot be probed
        return False
    lock.release()
    return False


@contextlib.contextmanager
def store_lock(root: str | Path, *, timeout: float = 0) -> Iterator[None]:
    """Hold the exclusive writer lock of store ``root`` (created when absent) for the ``with`` block.

    Waits up to ``timeout`` seconds for another writer, then raises :class:`StoreError` naming it.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise StoreError(f"{root} is a file, not a store directory; choose a directory path for --out")
    if timeout < 0:
        raise StoreError(f"--lock-timeout must be 0 or more seconds, got {timeout}")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        raise StoreError(f"cannot create store {root}: a part of that path is a file ({error}); choose "
                         "another --out") from error
    lock = FileLock(root / LOCK, timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise StoreError(f"store {root} is being written by {holder(root)}; wait for that run to finish, "
                         "or pass --lock-timeout SECONDS to wait for it") from None
    try:
        with atomic_file(root / HOLDER) as tmp:
            tmp.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
        yield
    finally:
        with contextlib.suppress(OSError):
            (root / HOLDER).unlink()
        lock.release()
