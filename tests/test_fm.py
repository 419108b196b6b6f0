"""The CellTOSGFM model object on the tiny store: what predict / embed write, save / load, and bad input."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from celltosg import CellTOSGFM
from celltosg.errors import CheckpointError, MalformedInputError, QueryError, UnknownIdentifierError

SMALL = dict(hidden=8, layers=1, readout_dim=8, readout_rank=2)


@pytest.fixture(scope="module")
def trained(tiny_store_data, tmp_path_factory):
    """A model fine-tuned (after one pretraining epoch) for cell types on the tiny store, and its out_dir."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out_dir = tmp_path_factory.mktemp("fm") / "finetune"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CELLTOSG_CACHE", str(tmp_path_factory.mktemp("cache")))
        model = CellTOSGFM.from_store(tiny_store_data[0], task="cell_type", seed=1, **SMALL)
        model.pretrain(epochs=1, batch_size=32, mask_fraction=0.2)
        model.train(out_dir=out_dir, epochs=2, batch_size=32, skip_init="random")
        yield model, out_dir
    torch.set_num_threads(threads)


def _cells(store_root, n: int = 30) -> ad.AnnData:
    """Counts of the store's first ``n`` meta-cells as an AnnData with gene symbols as var names."""
    from celltosg.store import TOSGStore

    store = TOSGStore.open(store_root)
    return ad.AnnData(store.read_rows(range(n)).astype(np.float32),
                      obs=pd.DataFrame({"donor_id": store.obs["donor_id"].to_numpy()[:n]},
                                       index=[f"cell{i}" for i in range(n)]),
                      var=pd.DataFrame(index=store.var["symbol"].astype(str).to_numpy()))


def test_predict_writes_labels_and_probabilities_into_adata(trained, tiny_store_data):
    model, _ = trained
    adata = _cells(tiny_store_data[0])
    assert model.predict(adata) is None  # in place
    classes = adata.uns["celltosg"]["classes"]
    assert classes == sorted(model.cohort.label_mapping, key=model.cohort.label_mapping.get)
    proba = adata.obsm["celltosg_probabilities"]
    assert proba.shape == (30, len(classes)) and np.allclose(proba.sum(1), 1.0, atol=1e-5)
    assert adata.obs["celltosg_label"].tolist() == [classes[i] for i in proba.argmax(1)]
    np.testing.assert_allclose(adata.obs["celltosg_probability"], proba.max(1), rtol=1e-6)
    fresh = _cells(tiny_store_data[0])
    copied = model.predict(fresh, copy=True)
    assert "celltosg_label" not in fresh.obs and copied.obs["celltosg_label"].equals(adata.obs["celltosg_label"])


def test_embed_writes_one_row_per_cell_into_obsm(trained, tiny_store_data):
    model, _ = trained
    adata = _cells(tiny_store_data[0])
    twice = ad.concat([adata, adata[:3]], index_unique="-")  # the same cells again embed the same
    model.embed(twice)
    X = twice.obsm["X_celltosg"]
    assert X.shape == (33, SMALL["readout_dim"]) and np.isfinite(X).all()
    np.testing.assert_allclose(X[30:], X[:3], rtol=1e-5, atol=1e-6)


def test_save_load_round_trip_predicts_identically(trained, tiny_store_data, tmp_path):
    model, out_dir = trained
    saved = model.save(tmp_path / "model")
    assert {p.name for p in saved.iterdir()} == {"model.ckpt", "metrics.json", "celltosg_model.json"}
    meta = json.loads((saved / "celltosg_model.json").read_text())
    assert meta["task"] == "cell_type" and meta["checkpoint"] == "model.ckpt"
    assert json.loads((saved / "metrics.json").read_text()) == json.loads((out_dir / "metrics.json").read_text())
    expected = model.predict(_cells(tiny_store_data[0]), copy=True).obsm["celltosg_probabilities"]
    # a saved directory, `celltosg finetune`'s output directory and the checkpoint file all load
    for source in (saved, out_dir, out_dir / "model.ckpt"):
        loaded = CellTOSGFM.load(source)
        assert loaded.task == "cell_type" and loaded.metrics["test"] == model.metrics["test"]
        got = loaded.predict(_cells(tiny_store_data[0]), copy=True).obsm["celltosg_probabilities"]
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(MalformedInputError, match="already exists"):
        model.save(saved)
    model.save(saved, overwrite=True)


def test_pretrained_only_model_embeds_but_has_no_head(tiny_store_data, tmp_path, monkeypatch):
    monkeypatch.setenv("CELLTOSG_CACHE", str(tmp_path / "cache"))
    model = CellTOSGFM.from_store(tiny_store_data[0], task="pretrain", seed=0, **SMALL)
    model.pretrain(out=tmp_path / "pre.ckpt", epochs=1, batch_size=64)
    assert model.checkpoint == tmp_path / "pre.ckpt"
    adata = _cells(tiny_store_data[0], n=5)
    model.embed(adata)
    assert adata.obsm["X_celltosg"].shape == (5, SMALL["readout_dim"])
    with pytest.raises(MalformedInputError, match="no task head"):
        model.predict(adata)
    with pytest.raises(QueryError, match="pretraining"):
        model.train(epochs=1)
    from typer.testing import CliRunner

    from celltosg.cli import app

    adata.write_h5ad(tmp_path / "cells.h5ad")
    cli = CliRunner().invoke(app, ["predict", str(tmp_path / "pre.ckpt"), str(tmp_path / "cells.h5ad"), "--out",
                                   str(tmp_path / "pred.csv")])
    assert isinstance(cli.exception, MalformedInputError) and not (tmp_path / "pred.csv").exists()


def test_bad_input_raises_celltosg_errors(trained, tiny_store_data, tmp_path):
    model, _ = trained
    store = tiny_store_data[0]
    with pytest.raises(QueryError, match="unknown task"):
        CellTOSGFM.from_store(store, task="celltype_typo")
    with pytest.raises(UnknownIdentifierError, match="hiden"):
        CellTOSGFM.from_store(store, task="cell_type", hiden=8)
    with pytest.raises(QueryError, match="FIELD=VALUE"):
        CellTOSGFM.from_store(store, task="cell_type", where=["lung"])
    with pytest.raises(MalformedInputError, match="expected an AnnData"):
        model.predict(np.zeros((3, 40)))
    untrained = CellTOSGFM(task="cell_type")
    with pytest.raises(CheckpointError, match="not trained yet"):
        untrained.predict(_cells(store, n=3))
    with pytest.raises(CheckpointError, match="does not exist"):
        CellTOSGFM.load(tmp_path / "missing")
    broken = tmp_path / "broken"
    model.save(broken)
    (broken / "celltosg_model.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot be read"):
        CellTOSGFM.load(broken)
    (broken / "celltosg_model.json").write_text(json.dumps({"format": "celltosg-fm-model", "format_version": 1,
                                                            "checkpoint": "../elsewhere.ckpt"}))
    with pytest.raises(CheckpointError, match="not a file name"):
        CellTOSGFM.load(broken)
    adata = _cells(store, n=4)
    with pytest.raises(MalformedInputError, match="run .predict"):
        model.donor_calls(adata, "donor_id")
    model.predict(adata)
    with pytest.raises(MalformedInputError, match="'patient' is not an obs column"):
        model.donor_calls(adata, "patient")
    assert model.donor_calls(adata, "donor_id")["n_cells"].sum() == 4
    with pytest.raises(MalformedInputError, match="no store"):
        CellTOSGFM.load(model.checkpoint).explain("T cell", out_dir=tmp_path / "explain")
