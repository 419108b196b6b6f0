"""Importer of the OmniCellTOSG release, on a miniature release written in exactly the released layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from celltosg.build import import_omnicelltosg
from celltosg.cli import app
from celltosg.errors import MalformedInputError
from celltosg.store import verify_store

MATRICES = {"CellxGene_brain_part_0.npy": 7, "GEO_lung_part_0.npy": 5}


def write_mini_release(root, *, seed=0):
    """Write a release over genes GENE0..GENE11, ALIAS5 (an alias of GENE5) and LINC1 (no pack node).

    Each gene owns 1-3 transcript columns holding a copy of its value; 6 further transcript columns
    belong to no gene and hold noise. Returns ``{matrix file: gene counts (rows, genes)}`` and the genes.
    """
    rng = np.random.default_rng(seed)
    genes = [f"GENE{i}" for i in range(12)] + ["ALIAS5", "LINC1"]
    owners = np.repeat(np.arange(len(genes)), [1 + i % 3 for i in range(len(genes))])
    owners = np.concatenate([owners, np.full(6, -1)])
    rng.shuffle(owners)
    n_tx, n_pt = len(owners), 5
    (root / "expression_matrix").mkdir(parents=True)
    pd.DataFrame({"gene_name": genes, "indices": [";".join(map(str, np.flatnonzero(owners == g)))
                                                  for g in range(len(genes))]}).to_csv(root / "bmg_gene_index.csv", index=False)
    names = [f"BMG_TS{i:05d}" for i in range(n_tx)] + [f"BMG_PT{i:05d}" for i in range(n_pt)]
    pd.DataFrame({"Name": names}).to_csv(root / "s_name.csv", index=False)
    pd.DataFrame({"Description": [f"entity {n}" for n in names]}).to_csv(root / "s_desc.csv", index=False)
    pd.DataFrame({"Type": ["Transcript"] * n_tx + ["Protein"] * n_pt,
                  "Sequence": ["ACGT"] * n_tx + ["MKV"] * n_pt}).to_csv(root / "s_bio.csv", index=False)
    internal = np.array([np.arange(n_pt), n_tx + np.arange(n_pt)])
    ppi = np.array([n_tx + np.arange(n_pt - 1), n_tx + np.arange(1, n_pt)])
    np.save(root / "internal_edge_index.npy", internal)
    np.save(root / "ppi_edge_index.npy", ppi)
    np.save(root / "edge_index.npy", np.concatenate([internal, ppi], axis=1))
    gene_counts, rows = {}, []
    for file_name, n in MATRICES.items():
        counts = rng.poisson(3.0, size=(n, len(genes))).astype(np.float32)
        matrix = rng.uniform(0, 50, size=(n, n_tx)).astype(np.float32)  # noise in gene-less columns
        for g in range(len(genes)):
            matrix[:, owners == g] = counts[:, [g]]
        np.save(root / "expression_matrix" / file_name, matrix)
        gene_counts[file_name] = counts
        source, tissue = file_name.split("_")[:2]
        for r in rng.permutation(n)[: n - 1]:  # one row per matrix is not in the metadata
            rows.append({
                "source": source, "dataset_id": f"{source}-ds", "suspension_type": "cell",
                "cell_type": "astrocyte" if r % 2 else "T cell", "tissue_general": tissue, "tissue": tissue,
                "disease": "healthy" if r % 3 else "Alzheimer disease", "development_stage": "70-year-old stage",
                "sex": "F", "assay": "10x", "batch": "b1", "donor_id": f"donor{r % 2}", "n_raw_cells": 10 + int(r),
                "raw_file": f"{source}.h5ad", "raw_file_indices": f"{r * 10}-{r * 10 + 9}",
                "matrix_file_path": file_name, "matrix_row_idx": int(r), "CMT_id": "CMT1", "CMT_name": "cell",
                "disease_BMG_id": "D1", "disease_BMG_name": "normal", "development_stage_numeric_age": 70.0,
                "development_stage_category": "aged", "birth_phase": "postnatal", "sex_normalized": "female",
                "is_pretrain_data": bool(r % 2),
            })
    pd.DataFrame(rows).to_parquet(root / "cell_metadata_with_mappings.parquet", index=False)
    return gene_counts, genes


def expected_rows(gene_counts, genes, file_name, rows, n_rna=40):
    """Naive reference: GENEi -> node i, ALIAS5 added onto node 5, LINC1 dropped."""
    out = np.zeros((len(rows), n_rna))
    for g, gene in enumerate(genes):
        node = 5 if gene == "ALIAS5" else int(gene[4:]) if gene.startswith("GENE") else None
        if node is not None:
            out[:, node] += gene_counts[file_name][rows, g]
    return out


def test_import_reads_every_row_exactly(tmp_path, tiny_kg):
    gene_counts, genes = write_mini_release(tmp_path / "release")
    store = import_omnicelltosg(tmp_path / "release", tmp_path / "store", kg=tiny_kg)
    assert store.n_cells == 6 + 4 and store.n_nodes == 40
    X = store.read_rows(np.arange(store.n_cells))
    for file_name in MATRICES:
        stem = file_name.removesuffix(".npy")
        mine = store.obs.index[store.obs["cell_id"].str.startswith(stem + ":")]
        rows = store.obs.loc[mine, "matrix_row_idx"].to_numpy()
        assert list(rows) == sorted(rows)
        np.testing.assert_array_equal(X[mine], expected_rows(gene_counts, genes, file_name, rows))
    obs = store.obs
    assert set(obs["disease"]) <= {"normal", "Alzheimer disease"} and "normal" in set(obs["disease"])
    assert set(obs["disease_raw"]) <= {"healthy", "Alzheimer disease"}
    assert (obs["development_stage_category"] == "aged").all() and (obs["sex_normalized"] == "female").all()
    assert obs["raw_cells"].str.contains(".h5ad:").all() and obs["n_raw_cells"].min() >= 10
    release = store.manifest["release"]
    assert {k: release[k] for k in ("n_transcripts", "n_proteins", "n_edge_index", "n_internal_edge_index",
                                    "n_ppi_edge_index")} == {"n_transcripts": 33, "n_proteins": 5, "n_edge_index": 9,
                                                             "n_internal_edge_index": 5, "n_ppi_edge_index": 4}
    assert release["mapping"]["n_mapped"] == 13
    assert [r["collapse_disagreements"] for r in store.manifest["inputs"].values()] == [0, 0]
    assert verify_store(store.root) == []


def test_cli_import(tmp_path, tiny_kg_dir):
    write_mini_release(tmp_path / "release")
    result = CliRunner().invoke(app, ["import-omnicelltosg", str(tmp_path / "release"), "--out",
                                      str(tmp_path / "store"), "--pack", str(tiny_kg_dir)])
    assert result.exit_code == 0, result.output
    assert "10 meta-cells x 40 RNA nodes" in result.output


def _break(root, problem):
    meta_path = root / "cell_metadata_with_mappings.parquet"
    if problem == "no_gene_index":
        (root / "bmg_gene_index.csv").unlink()
        return "bmg_gene_index.csv is missing"
    if problem == "no_row_column":
        pd.read_parquet(meta_path).drop(columns="matrix_row_idx").to_parquet(meta_path)
        return "lacks columns \\['matrix_row_idx'\\]"
    if problem == "row_out_of_range":
        meta = pd.read_parquet(meta_path)
        meta.loc[0, "matrix_row_idx"] = 99
        meta.to_parquet(meta_path)
        return "rows outside"
    if problem in ("nan", "negative"):
        path = root / "expression_matrix" / "GEO_lung_part_0.npy"
        matrix = np.load(path)
        matrix[:, :] = np.nan if problem == "nan" else -1.0
        np.save(path, matrix)
        return "NaN" if problem == "nan" else "negative"
    if problem == "edges":
        np.save(root / "ppi_edge_index.npy", np.zeros((3, 2), dtype=np.int64))
        return "expected \\[2, E\\]"
    raise AssertionError(problem)


@pytest.mark.parametrize("problem", ["no_gene_index", "no_row_column", "row_out_of_range", "nan", "negative", "edges"])
def test_malformed_release_is_a_clear_error(tmp_path, tiny_kg, problem):
    write_mini_release(tmp_path / "release")
    match = _break(tmp_path / "release", problem)
    with pytest.raises(MalformedInputError, match=match):
        import_omnicelltosg(tmp_path / "release", tmp_path / "store", kg=tiny_kg)
    assert not (tmp_path / "store" / "obs.parquet").exists()


def test_interrupted_import_resumes(tmp_path, tiny_kg, monkeypatch):
    from celltosg.build import _import_omnicelltosg

    write_mini_release(tmp_path / "release")
    path = tmp_path / "release" / "expression_matrix" / "GEO_lung_part_0.npy"
    good = np.load(path)
    np.save(path, np.full_like(good, np.nan))
    with pytest.raises(MalformedInputError, match="NaN"):
        import_omnicelltosg(tmp_path / "release", tmp_path / "store", kg=tiny_kg)
    np.save(path, good)
    written = []
    original = _import_omnicelltosg.write_shards
    monkeypatch.setattr(_import_omnicelltosg, "write_shards",
                        lambda out, stem, *a, **k: written.append(stem) or original(out, stem, *a, **k))
    resumed = import_omnicelltosg(tmp_path / "release", tmp_path / "store", kg=tiny_kg)
    assert written == ["GEO_lung_part_0"]
    fresh = import_omnicelltosg(tmp_path / "release", tmp_path / "fresh", kg=tiny_kg)
    assert [s["sha256"] for s in resumed.manifest["shards"]] == [s["sha256"] for s in fresh.manifest["shards"]]
    assert resumed.verify() == []
