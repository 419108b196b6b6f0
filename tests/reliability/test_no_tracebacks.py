"""Row 6: user mistakes that used to end in Python tracebacks now give one error line and a fix."""

from __future__ import annotations

import numpy as np
import pytest
from tests.build.test_pipeline import write_input
from tests.reliability._cli import QC, assert_one_line_error, run_main

from celltosg.errors import MalformedInputError


def test_build_out_naming_a_file(tmp_path, tiny_kg_dir, capsys):
    source = tmp_path / "one.h5ad"
    write_input(source)
    target = tmp_path / "taken.txt"
    target.write_text("not a store")
    code, _, err = run_main(capsys, "build", source, "--out", target, "--pack", tiny_kg_dir, *QC)
    assert_one_line_error(code, err, str(target), "is a file", "choose a directory")
    assert target.read_text() == "not a store"


def test_build_out_under_a_file(tmp_path, tiny_kg_dir, capsys):
    source = tmp_path / "one.h5ad"
    write_input(source)
    (tmp_path / "taken").write_text("x")
    code, _, err = run_main(capsys, "build", source, "--out", tmp_path / "taken" / "store", "--pack",
                            tiny_kg_dir, *QC)
    assert_one_line_error(code, err, "is a file")


def test_predict_on_a_truncated_h5ad(tmp_path, capsys):
    source = tmp_path / "cells.h5ad"
    write_input(source)
    source.write_bytes(source.read_bytes()[:2000])
    code, _, err = run_main(capsys, "predict", tmp_path / "model.ckpt", source, "--out", tmp_path / "out.csv")
    assert_one_line_error(code, err, str(source), "cannot be read as an h5ad file", "check that the file is complete")


@pytest.mark.parametrize("suffix", [".csv", ".h5ad"])
def test_prediction_output_under_a_file(tmp_path, suffix):
    """`predict --out` under a file: the writer the command ends with refuses with a clear error."""
    from celltosg.train import write_result

    adata = write_input(tmp_path / "cells.h5ad")
    adata.obsm["p"] = np.zeros((adata.n_obs, 2))
    (tmp_path / "taken").write_text("x")
    with pytest.raises(MalformedInputError, match="is a file, not a directory; choose an output path"):
        write_result(adata, tmp_path / "taken" / f"out{suffix}", obsm_key="p")
