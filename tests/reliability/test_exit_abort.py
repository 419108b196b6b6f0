"""Row 7: `store verify` on a store with no cells aborted now and then at interpreter exit (exit 134,
"terminate called without an active exception"): Arrow's reader threads were still alive while the
interpreter tore down. Verify now reads only Parquet footers, so it starts no such thread."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.reliability._cli import run

from celltosg.kg import KnowledgeGraph
from celltosg.store import create_store

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")

COUNT_THREADS = """
import os, sys
from celltosg.store import verify_store
threads = lambda: len(os.listdir("/proc/self/task"))
before = threads()
problems = verify_store(sys.argv[1])
print(before, threads(), len(problems))
"""


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory, tiny_kg_dir):
    kg = KnowledgeGraph.load(tiny_kg_dir)
    path = tmp_path_factory.mktemp("empty") / "store"
    create_store(path, np.zeros((0, kg.n_rna)), pd.DataFrame({"cell_id": []}), kg)
    return path


def test_verify_of_an_empty_store_starts_no_native_thread(empty_store):
    result = subprocess.run([sys.executable, "-c", COUNT_THREADS, str(empty_store)], capture_output=True,
                            text=True, timeout=120, env=dict(os.environ))
    before, after, n_problems = map(int, result.stdout.split())
    assert n_problems == 0
    assert after == before, "verify left native threads running, which can abort the interpreter at exit"


@pytest.mark.slow
def test_verify_of_an_empty_store_never_aborts(empty_store):
    """The reported symptom: 3 of 61 runs exited 134. 61 runs through the entry point must all exit 0."""
    codes = [run("store", "verify", empty_store).returncode for _ in range(61)]
    assert codes == [0] * 61
