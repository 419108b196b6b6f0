"""Row 1: two writers of one store. The second waits up to --lock-timeout, then fails naming the holder;
the first finishes a sound store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from tests.build.test_pipeline import write_input
from tests.reliability._cli import QC, popen, run

from celltosg.build import build_store
from celltosg.store import TOSGStore, verify_store

QC_KW = {"min_genes": 1, "min_cells": 1, "max_mito_fraction": 1.0}


def _wait_until_writing(store, process, limit_s=120):
    """Block until ``process`` has started writing ``store`` (its progress manifest exists)."""
    deadline = time.monotonic() + limit_s
    while not (store / "manifest.json").is_file():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the first build never started writing"
        time.sleep(0.02)


def test_second_build_into_the_same_store_fails_naming_the_first(tmp_path, tiny_kg_dir):
    first = [tmp_path / f"a{k}.h5ad" for k in range(2)]
    for k, path in enumerate(first):
        write_input(path, seed=k, dataset=f"a{k}")
    second = tmp_path / "b.h5ad"
    write_input(second, seed=9, dataset="b")
    store = tmp_path / "store"
    args = ["--out", store, "--pack", tiny_kg_dir, "--metacell-size", "4", *QC]
    writer = popen("build", *first, *args)
    _wait_until_writing(store, writer)
    os.kill(writer.pid, signal.SIGSTOP)  # hold the first build mid-way while the second one runs
    try:
        intruder = run("build", second, *args)
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
    assert opened.obs["n_raw_cells"].sum() == 2 * 48


def test_lock_timeout_waits_for_the_holder(tmp_path, tiny_kg):
    source = tmp_path / "one.h5ad"
    write_input(source)
    store = tmp_path / "store"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from celltosg.store import store_lock\n"
        "with store_lock(sys.argv[1]):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(1.5)\n"), str(store)], stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    assert holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    built = build_store([source], store, kg=tiny_kg, metacell_size=4, lock_timeout=60, **QC_KW)
    assert time.monotonic() - started > 0.5  # it waited for the holder instead of failing
    holder.wait(timeout=30)
    assert built.obs["n_raw_cells"].sum() == 48 and verify_store(store) == []
