"""The cluster path: `dask scheduler` and two `dask worker` processes on loopback build the same store as a serial run."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import celltosg
from celltosg.build import build_store, simulate
from celltosg.cli import app
from celltosg.store import TOSGStore, verify_store

HOST = "127.0.0.1"  # loopback only: nothing listens beyond this machine


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _dask_program() -> str:
    program = Path(sys.executable).with_name("dask")
    return str(program) if program.is_file() else shutil.which("dask")


@pytest.fixture()
def loopback_cluster(tmp_path):
    """Address of a scheduler with two single-threaded workers, each started by Dask's own programs."""
    from dask.distributed import Client

    port = _free_port()
    address = f"tcp://{HOST}:{port}"
    source = str(Path(celltosg.__file__).resolve().parents[1])  # workers import this checkout's celltosg
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([source, os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1", CELLTOSG_QUIET="1")
    logs = [open(tmp_path / f"dask_{name}.log", "w") for name in ("scheduler", "worker0", "worker1")]  # noqa: SIM115
    commands = [[_dask_program(), "scheduler", "--host", HOST, "--port", str(port), "--no-dashboard"]]
    commands += [[_dask_program(), "worker", address, "--host", HOST, "--nworkers", "1", "--nthreads", "1",
                  "--no-dashboard", "--local-directory", str(tmp_path / f"worker{i}")] for i in range(2)]
    processes = []
    try:
        for command, log in zip(commands, logs, strict=True):
            processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                              cwd=tmp_path))
            if len(processes) == 1:
                time.sleep(2)  # let the scheduler bind before the workers dial it
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()


@pytest.mark.slow
def test_scheduler_and_two_workers_build_the_serial_store(tmp_path, loopback_cluster):
    files = simulate(tmp_path / "sim", n_cells=1200, n_donors=4, cells_per_file=200, n_genes=3000, seed=1).files
    assert len(files) == 6
    options = {"metacell_size": 10, "min_genes": 50, "force_mapping": True}  # a 3,000-gene panel
    serial = build_store(files, tmp_path / "serial", **options)
    result = CliRunner().invoke(app, ["build", *map(str, files), "--out", str(tmp_path / "cluster"),
                                      "--metacell-size", "10", "--min-genes", "50", "--force", "--scheduler", loopback_cluster])
    assert result.exit_code == 0, result.output
    cluster = TOSGStore.open(tmp_path / "cluster")
    assert verify_store(tmp_path / "cluster") == []
    assert [s["sha256"] for s in cluster.manifest["shards"]] == [s["sha256"] for s in serial.manifest["shards"]]
    assert cluster.manifest["files"] == serial.manifest["files"]
    assert cluster.manifest["n_cells"] == serial.manifest["n_cells"] > 0
