"""Kill -9 a real `celltosg build` at random points; rerunning it must give a store byte-identical to a
clean build (slow: opt in with -m slow)."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest
from tests.build.test_pipeline import write_input
from tests.reliability._cli import QC, popen, run

from celltosg.store import verify_store

TRIALS = 5


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.timeout(2400)  # 5 kills + 5 resumes + a clean build: about 11 build times
def test_kill_nine_at_random_points_then_resume_is_byte_identical(tmp_path, tiny_kg_dir):
    inputs = [tmp_path / f"in{k}.h5ad" for k in range(2)]
    for k, path in enumerate(inputs):
        write_input(path, n_cells=96, seed=k, dataset=f"ds{k}")
    args = ["--pack", tiny_kg_dir, "--metacell-size", "2", "--shard-size", "4", *QC]
    started = time.monotonic()
    clean = run("build", *inputs, "--out", tmp_path / "clean", *args, timeout=600)
    duration = time.monotonic() - started
    assert clean.returncode == 0, clean.stderr
    expected = _files(tmp_path / "clean")
    rng = np.random.default_rng(14)
    kills = []
    while len(kills) < TRIALS:
        out = tmp_path / f"killed{len(kills)}"
        delay = float(rng.uniform(0.2, 0.98) * duration)
        process = popen("build", *inputs, "--out", out, *args)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        if process.returncode != -signal.SIGKILL:  # it finished first: draw another point
            continue
        kills.append(round(delay, 2))
        resumed = run("build", *inputs, "--out", out, *args, timeout=600)
        assert resumed.returncode == 0, (delay, resumed.stderr)
        assert verify_store(out) == [], delay
        got = _files(out)
        assert got.keys() == expected.keys(), (delay, sorted(got.keys() ^ expected.keys()))
        assert [name for name in got if got[name] != expected[name]] == [], delay
    print(f"killed at {kills} s of a {duration:.1f} s build")
