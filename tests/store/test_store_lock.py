"""The writer lock: exclusive, released on every exit path, naming its holder."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest

from celltosg.errors import StoreError
from celltosg.store import store_lock
from celltosg.store._lock import HOLDER, is_locked


def test_lock_names_its_holder_and_excludes_a_second_writer(tmp_path):
    store = tmp_path / "store"
    with store_lock(store):
        assert json.loads((store / HOLDER).read_text()) == {"pid": os.getpid(), "host": socket.gethostname()}
        assert is_locked(store)
        with pytest.raises(StoreError, match=f"being written by PID {os.getpid()} on host"), \
                store_lock(store, timeout=0.1):
            pass
    assert not is_locked(store) and not (store / HOLDER).exists()


def test_lock_is_released_when_the_writer_fails(tmp_path):
    store = tmp_path / "store"
    with pytest.raises(RuntimeError), store_lock(store):
        raise RuntimeError("the build failed")
    with store_lock(store, timeout=0):  # free again at once
        pass


def test_lock_refuses_a_file_and_a_negative_timeout(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="is a file, not a store directory"), store_lock(tmp_path / "file"):
        pass
    with pytest.raises(StoreError, match="--lock-timeout must be 0 or more"), store_lock(tmp_path / "s", timeout=-1):
        pass


def test_a_second_writer_waits_up_to_its_timeout(tmp_path):
    store = tmp_path / "store"
    held = threading.Event()

    def hold():
        with store_lock(store):
            held.set()
            time.sleep(1.0)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    started = time.monotonic()
    with store_lock(store, timeout=30):
        waited = time.monotonic() - started
    holder.join()
    assert 0.5 < waited < 30
