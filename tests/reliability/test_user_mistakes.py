"""Row 8: 0-cell builds, bad --workers, a store path that is a file, queries during an extension, and
error messages that keep the user's spelling."""

from __future__ import annotations

import os
import signal
import time

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from tests.build.test_pipeline import write_input
from tests.reliability._cli import QC, assert_one_line_error, popen, run_main
from tests.reliability.conftest import BUILD_ARGS, BUILD_KW

from celltosg.build import build_store
from celltosg.errors import MalformedInputError
from celltosg.store import TOSGStore, verify_store


@pytest.mark.parametrize("existing", [False, True])
def test_zero_cell_build_fails_and_leaves_nothing(tmp_path, tiny_kg_dir, capsys, existing):
    source = tmp_path / "one.h5ad"
    write_input(source)
    out = tmp_path / "store"
    if existing:  # an empty folder made by the user stays, still holding no store
        out.mkdir()
    code, _, err = run_main(capsys, "build", source, "--out", out, "--pack", tiny_kg_dir,
                            "--min-genes", "100000", "--min-cells", "1")
    assert_one_line_error(code, err, "no meta-cell came out", "one.h5ad 0/48", "--min-genes")
    if existing:
        assert [p.name for p in out.iterdir() if not p.name.startswith(".celltosg.lock")] == []
    else:
        assert not out.exists()


def _empty_cells(path):
    """An h5ad whose 30 cells have no counts at all: none passes QC with min_genes=1."""
    var = pd.DataFrame(index=[f"ENSG{i:011d}" for i in range(40)])
    obs = pd.DataFrame({"donor_id": "d9", "cell_type": "T cell"}, index=[f"empty{i}" for i in range(30)])
    ad.AnnData(X=sp.csr_matrix((30, 40), dtype=np.float32), obs=obs, var=var).write_h5ad(path)


def test_zero_cell_extension_leaves_the_store_unchanged(built_store, tmp_path, tiny_kg):
    root, inputs, _ = built_store
    before = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    empty = tmp_path / "empty.h5ad"
    _empty_cells(empty)
    with pytest.raises(MalformedInputError, match="no meta-cell came out"):
        build_store([*inputs, empty], root, kg=tiny_kg, **BUILD_KW)
    after = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert after == before and verify_store(root) == []


@pytest.mark.parametrize("workers", ["0", "-3"])
def test_workers_must_be_at_least_one(tmp_path, tiny_kg_dir, capsys, workers):
    source = tmp_path / "one.h5ad"
    write_input(source)
    code, _, err = run_main(capsys, "build", source, "--out", tmp_path / "store", "--pack", tiny_kg_dir,
                            "--workers", workers, *QC)
    assert_one_line_error(code, err, f"--workers must be at least 1, got {workers}")
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("command", [["store", "info"], ["query"], ["store", "verify"]])
def test_store_path_that_is_a_file(tmp_path, capsys, command):
    target = tmp_path / "notes.txt"
    target.write_text("x")
    code, out, err = run_main(capsys, *command, target)
    text = out + err
    assert code != 0 and "is a file, not a TOSG store directory" in text and "does not exist" not in text


def test_query_error_keeps_the_users_spelling(tiny_store_data, capsys):
    code, _, err = run_main(capsys, "query", tiny_store_data[0], "--where", "tissue_general=Brain")
    assert_one_line_error(code, err, "tissue_general='Brain'")


def test_queries_during_an_extension_see_the_old_store(built_store, tmp_path, tiny_kg_dir, capsys):
    root, inputs, _ = built_store
    n_before = TOSGStore.open(root).n_cells
    extra = tmp_path / "extra.h5ad"
    write_input(extra, seed=7, dataset="extra")
    writer = popen("build", *inputs, extra, "--out", root, "--pack", tiny_kg_dir, *BUILD_ARGS)
    deadline = time.monotonic() + 120
    while not (root / "manifest.next.json").is_file():
        assert writer.poll() is None, writer.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(writer.pid, signal.SIGSTOP)
    try:
        code, out, err = run_main(capsys, "query", root, "--where", "tissue_general=blood")
        assert code == 0, err
        assert f"{n_before} of {n_before} meta-cells match" in out
        code, out, _ = run_main(capsys, "store", "verify", root)
        assert code == 1 and f"is under way now (PID {writer.pid}" in out
    finally:
        os.kill(writer.pid, signal.SIGCONT)
    _, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err
    assert TOSGStore.open(root).n_cells > n_before and verify_store(root) == []

