"""Checkpoints and prediction on new AnnData: gene mapping against a naive reference, errors."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from celltosg.errors import CheckpointError, MalformedInputError, UnknownIdentifierError
from celltosg.train import (
    build_model,
    embed,
    finetune,
    load_checkpoint,
    predict,
    save_checkpoint,
    write_result,
)

from .conftest import small_config


@pytest.fixture()
def trained(cohort, graph, tmp_path):
    result = finetune(cohort, task="cell_type", config=small_config(), graph=graph, out_dir=tmp_path / "ft",
                      epochs=1, batch_size=16, seed=0)
    return result.checkpoint


def _naive_matrix(X, symbols, model_symbols):
    """Column j of the model = sum of the input columns whose symbol is model gene j (0 when none)."""
    out = np.zeros((X.shape[0], len(model_symbols)), dtype=np.float64)
    for j, gene in enumerate(model_symbols):
        for i, s in enumerate(symbols):
            if s == gene:
                out[:, j] += X[:, i]
    return out


def _new_anndata(cohort, rng):
    """Test cells with genes shuffled, two genes dropped, one gene split in two duplicate columns, extras."""
    X = cohort.X("test").astype(np.float64)
    symbols = list(cohort.kg.rna_symbols)
    keep = [i for i in rng.permutation(len(symbols)) if i not in (3, 4)]
    columns = [X[:, i] for i in keep] + [X[:, 0] * 0.25, np.full(len(X), 7.0)]
    X[:, 0] *= 0.75
    names = [symbols[i] for i in keep] + [symbols[0], "NOT_A_GENE"]
    columns[keep.index(0)] = X[:, 0]
    matrix = np.stack(columns, 1)
    return ad.AnnData(matrix.astype(np.float32), var=pd.DataFrame(index=names)), names


@pytest.mark.filterwarnings("ignore:Variable names are not unique")
def test_predict_matches_naive_mapping(trained, cohort, tmp_path):
    adata, names = _new_anndata(cohort, np.random.default_rng(0))
    out = predict(adata, trained)
    payload = load_checkpoint(trained)
    model, _, _ = build_model(payload)
    expected = _naive_matrix(adata.X, names, list(cohort.kg.rna_symbols))
    assert expected[:, 3].sum() == 0 and np.allclose(expected[:, 0], cohort.X("test")[:, 0], atol=1e-5)
    with torch.no_grad():
        probs = torch.softmax(model(torch.tensor(expected, dtype=torch.float32))["logits"], 1).numpy()
    np.testing.assert_allclose(out.obsm["celltosg_probabilities"], probs, atol=1e-5)
    classes = out.uns["celltosg"]["classes"]
    assert classes == ["alpha", "beta", "gamma"]
    assert list(out.obs["celltosg_label"]) == [classes[i] for i in probs.argmax(1)]
    report = out.uns["celltosg"]
    assert report["model_gene_coverage"] == pytest.approx(38 / 40)
    assert report["input_mapping_rate"] == pytest.approx(39 / 40)
    csv = write_result(out, tmp_path / "pred.csv", obsm_key="celltosg_probabilities",
                       obs_keys=("celltosg_label",), columns=classes)
    table = pd.read_csv(csv, index_col="cell_id")
    assert list(table.columns) == ["celltosg_label", *classes] and len(table) == adata.n_obs
    h5ad = write_result(out, tmp_path / "pred.h5ad", obsm_key="celltosg_probabilities")
    assert ad.read_h5ad(h5ad).obsm["celltosg_probabilities"].shape == probs.shape


def test_raw_counts_are_normalised_like_the_loader(trained, cohort):
    rng = np.random.default_rng(1)
    counts = rng.poisson(3.0, size=(6, cohort.kg.n_rna)).astype(np.float32)
    counts[:, 0] += 30  # some values no log1p value reaches
    symbols = list(cohort.kg.rna_symbols)
    adata = ad.AnnData(np.concatenate([counts, np.full((6, 1), 5.0, np.float32)], 1),
                       var=pd.DataFrame(index=[*symbols, "NOT_A_GENE"]))
    out = embed(adata, trained)
    expected = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4)  # over the model genes only
    model, _, _ = build_model(load_checkpoint(trained))
    with torch.no_grad():
        cells = model(torch.tensor(expected, dtype=torch.float32))["cell"].numpy()
    np.testing.assert_allclose(out.obsm["X_celltosg"], cells, atol=1e-4)
    assert out.uns["celltosg"]["normalised_counts"]


def test_anndata_comes_first(trained, cohort):
    adata = ad.AnnData(np.ones((3, 4), np.float32), var=pd.DataFrame(index=list(cohort.kg.rna_symbols)[:4]))
    for function in (predict, embed):
        with pytest.raises(MalformedInputError, match="expected an AnnData .* first argument, got PosixPath"):
            function(trained, adata)


def test_low_gene_coverage_is_an_error_unless_forced(trained, cohort):
    symbols = list(cohort.kg.rna_symbols)[:10]
    adata = ad.AnnData(np.ones((3, 10), np.float32), var=pd.DataFrame(index=symbols))
    with pytest.raises(UnknownIdentifierError, match="25.0%"):
        predict(adata, trained)
    assert predict(adata, trained, force=True).obsm["celltosg_probabilities"].shape == (3, 3)


def test_bad_checkpoints_raise_checkpoint_error(trained, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.ckpt")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(garbage)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(trained.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(truncated)
    pickled = tmp_path / "pickled.ckpt"
    torch.save({"format": "celltosg-fm", "object": pd.Timestamp("2020-01-01")}, pickled)
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(pickled)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a celltosg"):
        load_checkpoint(foreign)


def test_mismatched_checkpoints_raise_checkpoint_error(trained, cohort, tmp_path):
    payload = load_checkpoint(trained)
    bigger = dict(payload, config={**payload["config"], "hidden": 16})
    with pytest.raises(CheckpointError, match="does not match"):
        build_model(bigger)
    moved = save_checkpoint(tmp_path / "moved.ckpt",
                            {**payload, "pack": {**payload["pack"], "checksum": "0" * 64}})
    adata = ad.AnnData(cohort.X("test"), var=pd.DataFrame(index=list(cohort.kg.rna_symbols)))
    with pytest.raises(CheckpointError, match="checksum"):
        predict(adata, moved)
    incomplete = save_checkpoint(tmp_path / "incomplete.ckpt", {"state_dict": payload["state_dict"]})
    with pytest.raises(CheckpointError, match="lacks"):
        load_checkpoint(incomplete)


def test_predict_donor_key_writes_donor_calls_by_hand(trained, cohort, tmp_path):
    from typer.testing import CliRunner

    from celltosg.cli import app

    X = cohort.X("test")
    donors = np.array(["d2", "d1", "d3"])[np.arange(len(X)) % 3]
    adata = ad.AnnData(X, obs=pd.DataFrame({"donor_id": donors}, index=[f"c{i}" for i in range(len(X))]),
                       var=pd.DataFrame(index=list(cohort.kg.rna_symbols)))
    adata.write_h5ad(tmp_path / "in.h5ad")
    result = CliRunner().invoke(app, ["predict", str(trained), str(tmp_path / "in.h5ad"), "--out",
                                      str(tmp_path / "out.h5ad"), "--donor-key", "donor_id"])
    assert result.exit_code == 0, result.output
    cells = ad.read_h5ad(tmp_path / "out.h5ad")
    classes = cells.uns["celltosg"]["classes"]
    table = pd.read_csv(tmp_path / "out.donors.csv")
    assert table["donor_id"].tolist() == ["d2", "d1", "d3"]
    for _, row in table.iterrows():
        rows = [i for i, d in enumerate(cells.obs["donor_id"]) if d == row["donor_id"]]
        expected = [sum(cells.obsm["celltosg_probabilities"][i, k] for i in rows) / len(rows) for k in range(len(classes))]
        np.testing.assert_allclose([row[f"p_{c}"] for c in classes], expected, rtol=1e-6)
        assert row["called"] == classes[int(np.argmax(expected))] and row["n_cells"] == len(rows)
    missing = CliRunner().invoke(app, ["predict", str(trained), str(tmp_path / "in.h5ad"), "--out",
                                       str(tmp_path / "o2.h5ad"), "--donor-key", "patient"])
    assert missing.exit_code != 0 and "patient" in str(missing.exception)
    assert not (tmp_path / "o2.h5ad").exists()
