"""The training commands end to end on the tiny store: pretrain -> finetune -> predict / embed."""

from __future__ import annotations

import json

import anndata as ad
import pandas as pd
from typer.testing import CliRunner

from celltosg.cli import app


def test_pretrain_finetune_predict_embed(tiny_store_data, tmp_path, monkeypatch):
    monkeypatch.setenv("CELLTOSG_CACHE", str(tmp_path / "cache"))
    store = str(tiny_store_data[0])
    runner = CliRunner()
    small = ["--hidden", "8", "--layers", "1", "--batch-size", "32", "--seed", "1"]
    pre = runner.invoke(app, ["pretrain", store, "--out", str(tmp_path / "pre.ckpt"), "--epochs", "1",
                              "--mask-fraction", "0.2", "--where", "tissue_general=lung", *small])
    assert pre.exit_code == 0, pre.output
    assert "edge AUC" in pre.output
    tuned = runner.invoke(app, ["finetune", store, "--task", "cell_type", "--out", str(tmp_path / "ft"),
                                "--pretrained", str(tmp_path / "pre.ckpt"), "--where", "tissue_general=lung",
                                "--epochs", "2", *small])
    assert tuned.exit_code == 0, tuned.output
    metrics = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert f"accuracy: {metrics['test']['accuracy']:.4f}" in tuned.output
    assert "confusion matrix" in tuned.output
    # predict on counts of the tiny store's genes, written as an AnnData by symbol
    from celltosg.store import TOSGStore

    opened = TOSGStore.open(store)
    counts = opened.read_rows(range(0, 40))
    adata = ad.AnnData(counts, var=pd.DataFrame(index=opened.var["symbol"].astype(str).to_numpy()))
    adata.write_h5ad(tmp_path / "new.h5ad")
    out = runner.invoke(app, ["predict", str(tmp_path / "ft" / "model.ckpt"), str(tmp_path / "new.h5ad"),
                              "--out", str(tmp_path / "pred.csv")])
    assert out.exit_code == 0, out.output
    table = pd.read_csv(tmp_path / "pred.csv", index_col="cell_id")
    assert len(table) == 40 and set(table["celltosg_label"]) <= set(metrics["test"]["labels"])
    assert "gene mapping: 100.0%" in out.output
    emb = runner.invoke(app, ["embed", str(tmp_path / "pre.ckpt"), str(tmp_path / "new.h5ad"),
                              "--out", str(tmp_path / "emb.h5ad")])
    assert emb.exit_code == 0, emb.output
    assert ad.read_h5ad(tmp_path / "emb.h5ad").obsm["X_celltosg"].shape[0] == 40
