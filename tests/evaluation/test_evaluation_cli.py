from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from celltosg.cli import app

FILLED = ["accuracy", "macro_f1", "val_macro_f1", "train_s", "tune_s", "peak_mem_mb", "params", "n_train", "n_test"]


def _run(store, out, models, seeds):
    result = CliRunner().invoke(app, ["benchmark", str(store), "--task", "cell_type", "--models", models,
                                      "--seeds", str(seeds), "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return pd.read_csv(out / "results.csv")


def test_benchmark_on_a_tiny_store_fills_every_row_and_reproduces(tiny_store_data, tmp_path):
    store = tiny_store_data[0]
    models = "logreg,gcn,celltosg_fm"
    table = _run(store, tmp_path / "a", models, seeds=2)
    assert len(table) == 6 and (table["status"] == "ok").all()
    assert table[FILLED].notna().all().all()
    assert set(table["model"]) == set(models.split(","))
    # donor-wise split: every model of a seed saw the same cells
    assert table.groupby("seed")[["n_train", "n_val", "n_test", "n_genes"]].nunique().max().max() == 1
    assert (tmp_path / "a" / "results.md").read_text().count("±") >= 6
    assert (tmp_path / "a" / "results.png").stat().st_size > 1000
    again = _run(store, tmp_path / "b", models, seeds=1)
    pd.testing.assert_frame_equal(table[table.seed == 0][["model", "accuracy", "macro_f1", "params"]].reset_index(drop=True),
                                  again[["model", "accuracy", "macro_f1", "params"]])


@pytest.mark.slow
def test_every_model_runs_on_a_tiny_store(tiny_store_data, tmp_path):
    table = _run(tiny_store_data[0], tmp_path, "all", seeds=1)
    assert (table["status"] == "ok").all(), table[["model", "status"]]
    assert table[FILLED].notna().all().all()
