"""Row 1: two real `celltosg build` processes writing one store. The second fails at once naming the
holder (waiting up to --lock-timeout is tested in tests/store/test_store_lock.py); the first finishes a
sound store; a reader is told the store is being built, not that its build was interrupted."""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest
from tests.build.test_pipeline import write_input
from tests.reliability._cli import QC, popen, run

from celltosg.errors import StoreError
from celltosg.store import TOSGStore, verify_store


def _wait_until_writing(store, process, limit_s=120):
    """Block until ``process`` has started writing ``store`` (its progress manifest exists)."""
    deadline = time.monotonic() + limit_s
    while not (store / "manifest.json").is_file():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the first build never started writing"
        time.sleep(0.02)


def test_second_build_into_the_same_store_fails_naming_the_first(tmp_path, tiny_kg_dir):
    first = [tmp_path / "a.h5ad"]
    write_input(first[0], seed=0, dataset="a")
    second = tmp_path / "b.h5ad"
    write_input(second, seed=9, dataset="b")
    store = tmp_path / "store"
    args = ["--out", store, "--pack", tiny_kg_dir, "--metacell-size", "4", *QC]
    writer = popen("build", *first, *args)
    _wait_until_writing(store, writer)
    os.kill(writer.pid, signal.SIGSTOP)  # hold the first build mid-way while the second one runs
    try:
        intruder = run("build", second, *args)
        with pytest.raises(StoreError, match=f"is being built now by PID {writer.pid}"):
            TOSGStore.open(store)
    finally:
        os.kill(writer.pid, signal.SIGCONT)
    out, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err
    assert intruder.returncode != 0
    assert f"being written by PID {writer.pid} on host {socket.gethostname()}" in intruder.stderr
    assert "--lock-timeout" in intruder.stderr and "Traceback" not in intruder.stderr
    assert verify_store(store) == []
    opened = TOSGStore.open(store)
    assert sorted(r["path"] for r in opened.manifest["inputs"].values()) == [str(p.resolve()) for p in first]
    assert opened.obs["n_raw_cells"].sum() == 48

