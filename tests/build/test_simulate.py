from __future__ import annotations

import json
import re

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from celltosg.build._metadata import CELLXGENE_COLUMNS
from celltosg.build._simulate import negative_binomial, simulate
from celltosg.errors import CellTOSGError
from celltosg.io_utils import sha256_file
from celltosg.kg import KnowledgeGraph


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, tiny_kg_dir):
    out = tmp_path_factory.mktemp("sim") / "run"
    result = simulate(out, n_cells=3000, n_donors=8, tissues=("blood", "lung"), diseases=("flu",),
                      seed=7, kg=tiny_kg_dir)
    cells = ad.concat([ad.read_h5ad(f) for f in result.files], merge="same")
    return result, cells


def test_files_hold_counts_and_cellxgene_metadata(simulated, tiny_kg_dir):
    result, cells = simulated
    kg = KnowledgeGraph.load(tiny_kg_dir)
    assert len(result.files) == 8  # one per donor
    assert cells.n_obs == 3000 and cells.obs_names.is_unique
    assert list(cells.var_names) == list(kg.rna_symbols)
    assert list(cells.var["gene_ids"]) == list(kg.nodes["ensembl_gene"][: kg.n_rna])
    X = cells.X.toarray()
    assert (X >= 0).all() and np.array_equal(X, np.round(X))
    assert set(CELLXGENE_COLUMNS) <= set(cells.obs.columns)
    obs = cells.obs.astype(str)
    assert set(obs["sex"]) <= {"female", "male"}
    assert all(re.fullmatch(r"\d+-year-old human stage", s) for s in obs["development_stage"].unique())
    donors = obs.drop_duplicates("donor_id")
    assert len(donors) == 8 and set(donors["disease"]) == {"normal", "flu"}
    for tissue in ("blood", "lung"):
        assert set(donors.loc[donors["tissue"] == tissue, "disease"]) == {"normal", "flu"}
    # batches are not confounded with disease
    for _, batch in donors.groupby("dataset_id"):
        assert set(batch["disease"]) == {"normal", "flu"}


def test_ground_truth_is_a_connected_ppi_module_with_an_effect(simulated, tiny_kg_dir):
    result, cells = simulated
    truth = json.loads(result.ground_truth_path.read_text())
    genes = truth["flu"]
    assert len(genes) >= 3
    kg = KnowledgeGraph.load(tiny_kg_dir)
    symbol_of = kg.nodes["symbol"].to_numpy()
    internal = kg.edges[kg.edges["kind"] == "internal"]
    proteins = {int(p) for r, p in zip(internal["source"], internal["target"], strict=True) if symbol_of[r] in genes}
    ppi = kg.edges[kg.edges["kind"] == "ppi"]
    neighbours: dict[int, set[int]] = {}
    for a, b in zip(ppi["source"], ppi["target"], strict=True):
        neighbours.setdefault(int(a), set()).add(int(b))
        neighbours.setdefault(int(b), set()).add(int(a))
    start = next(iter(proteins))
    reached, frontier = {start}, [start]
    while frontier:
        node = frontier.pop()
        for nb in neighbours.get(node, ()):
            if nb in proteins and nb not in reached:
                reached.add(nb)
                frontier.append(nb)
    assert reached == proteins

    record = json.loads((result.ground_truth_path.parent / "simulation.json").read_text())
    change = record["disease_modules"]["flu"]["log2_fold_change"]
    affected = record["disease_modules"]["flu"]["affected_cell_types"]["blood"]
    up = [g for g in genes if change[g] > 0]
    sub = cells[(cells.obs["tissue"] == "blood") & cells.obs["cell_type"].isin(affected)]
    X = sub.X.toarray()
    shares = X / X.sum(1, keepdims=True)
    column = [list(sub.var_names).index(g) for g in up]
    sick = (sub.obs["disease"] == "flu").to_numpy()
    ratio = shares[sick][:, column].mean(0) / shares[~sick][:, column].mean(0)
    assert np.median(ratio) > 1.5


def test_same_seed_same_bytes_other_seed_differs(tmp_path, tiny_kg_dir):
    kwargs = dict(n_cells=400, n_donors=2, diseases=("flu",), kg=tiny_kg_dir, cells_per_file=150)
    first = simulate(tmp_path / "a", seed=3, **kwargs)
    again = simulate(tmp_path / "b", seed=3, **kwargs)
    other = simulate(tmp_path / "c", seed=4, **kwargs)
    assert [f.name for f in first.files] == ["part_00000.h5ad", "part_00001.h5ad", "part_00002.h5ad"]
    assert [ad.read_h5ad(f).n_obs for f in first.files] == [150, 150, 100]
    digests = [sha256_file(f) for f in first.files + [first.ground_truth_path]]
    assert digests == [sha256_file(f) for f in again.files + [again.ground_truth_path]]
    assert sha256_file(first.files[0]) != sha256_file(other.files[0])


def test_negative_binomial_moments():
    rng = np.random.default_rng(0)
    mean = np.tile(np.array([0.2, 3.0, 50.0], dtype=np.float32), (200_000, 1))
    theta = np.array([2.0, 0.5, 4.0], dtype=np.float32)
    counts = negative_binomial(mean, theta, rng)
    expected_var = mean[0] + mean[0] ** 2 / theta
    np.testing.assert_allclose(counts.mean(0), mean[0], rtol=0.03)
    np.testing.assert_allclose(counts.var(0), expected_var, rtol=0.05)
    p0 = (1 + mean[0] / theta) ** -theta
    np.testing.assert_allclose((counts == 0).mean(0), p0, atol=0.005)


def test_too_few_donors_and_existing_output_are_refused(tmp_path, tiny_kg_dir):
    with pytest.raises(CellTOSGError, match="at least 4 donors"):
        simulate(tmp_path / "x", n_cells=100, n_donors=3, tissues=("blood", "lung"), diseases=("flu",),
                 kg=tiny_kg_dir)
    (tmp_path / "y").mkdir()
    with pytest.raises(CellTOSGError, match="already exists"):
        simulate(tmp_path / "y", n_cells=10, n_donors=1, kg=tiny_kg_dir)


def test_cli_simulate_with_comma_lists(tmp_path, tiny_kg_dir):
    from celltosg.cli import app

    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["simulate", "--out", str(out), "--cells", "120", "--donors", "4",
                                      "--tissues", "blood,brain", "--diseases", "flu", "--seed", "1",
                                      "--kg", str(tiny_kg_dir)])
    assert result.exit_code == 0, result.output
    obs = pd.concat([ad.read_h5ad(f).obs.astype(str) for f in sorted(out.glob("*.h5ad"))])
    assert set(obs["tissue"]) == {"blood", "brain"} and len(obs) == 120
    assert "flu" in json.loads((out / "ground_truth.json").read_text())
