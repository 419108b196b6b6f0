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
def kg_many_genes(tmp_path_factory):
    """A pack of 400 genes (300 with a protein): room for expression-matched random disease genes."""
    from tests.conftest import make_tiny_pack

    return make_tiny_pack(tmp_path_factory.mktemp("kg400") / "pack", n_genes=400, n_proteins=300)


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


def _unbalanced_datasets(donors: pd.DataFrame) -> list[str]:
    """Datasets whose donors of a tissue do not hold every condition, or hold them in unequal numbers."""
    conditions = set(donors["disease"])
    bad = []
    for (dataset, _), group in donors.groupby(["dataset_id", "tissue"], observed=True):
        counts = group["disease"].value_counts()
        if set(counts.index) != conditions or counts.nunique() > 1:
            bad.append(str(dataset))
    return sorted(set(bad))


def _donor_table(out) -> pd.DataFrame:
    record = json.loads((out / "simulation.json").read_text())
    table = pd.DataFrame(record["donors"])
    return table.assign(dataset_id="sim_dataset_" + table["batch"].astype(str))


@pytest.mark.parametrize("n_donors", [16, 19])
def test_disease_is_balanced_within_datasets_and_matched_on_sex_and_age(tmp_path, tiny_kg_dir, n_donors):
    out = tmp_path / "sim"
    simulate(out, n_cells=10 * n_donors, n_donors=n_donors, diseases=("flu",), seed=1, kg=tiny_kg_dir)
    obs = pd.concat([ad.read_h5ad(f).obs.astype(str) for f in sorted(out.glob("*.h5ad"))])
    donors = obs.drop_duplicates("donor_id")
    assert donors["dataset_id"].nunique() == 2
    if n_donors % 2 == 0:
        assert _unbalanced_datasets(donors) == []
    assert all(set(group["disease"]) == {"normal", "flu"} for _, group in donors.groupby("dataset_id"))
    # cases and controls of a dataset come in the same sex and age mix
    profile = donors.groupby(["dataset_id", "disease"])[["sex", "development_stage"]].apply(
        lambda g: sorted(map(tuple, g.to_numpy())))
    for dataset in donors["dataset_id"].unique():
        if n_donors % 2 == 0:
            assert profile[(dataset, "normal")] == profile[(dataset, "flu")]


def test_balance_check_fails_on_a_confounded_design(tmp_path, tiny_kg_dir):
    out = tmp_path / "confounded"
    simulate(out, n_cells=80, n_donors=8, diseases=("flu",), seed=1, kg=tiny_kg_dir, confound=True)
    donors = _donor_table(out)
    assert len(_unbalanced_datasets(donors)) == donors["dataset_id"].nunique()  # every dataset: one condition
    assert donors.groupby("dataset_id")["disease"].nunique().max() == 1


def _gene_means(out, genes) -> np.ndarray:
    """Mean count per cell of ``genes`` in the normal donors (no disease shift there)."""
    cells = ad.concat([ad.read_h5ad(f) for f in sorted(out.glob("*.h5ad"))], merge="same")
    normal = cells[cells.obs["disease"] == "normal"]
    return np.asarray(normal[:, genes].X.mean(axis=0)).ravel()


def test_random_placement_scatters_genes_with_the_module_expression(tmp_path, kg_many_genes):
    kwargs = dict(n_cells=600, n_donors=4, diseases=("flu",), seed=5, kg=kg_many_genes, module_size=12)
    module = simulate(tmp_path / "module", disease_genes="module", **kwargs)
    scattered = simulate(tmp_path / "random", disease_genes="random", **kwargs)
    module_genes = json.loads(module.ground_truth_path.read_text())["flu"]
    random_genes = json.loads(scattered.ground_truth_path.read_text())["flu"]
    record = json.loads((tmp_path / "random" / "simulation.json").read_text())
    assert record["disease_genes"] == "random"
    assert record["disease_modules"]["flu"]["module_genes"] == module_genes
    assert len(random_genes) == len(module_genes) and not set(random_genes) & set(module_genes)
    # the same expression distribution: the two gene sets' mean log expression agree, and gene by gene
    # (the i-th random gene stands in for the i-th module gene) the levels track each other, which genes
    # drawn without matching would not (their correlation would be near 0)
    log_module = np.log1p(_gene_means(tmp_path / "module", module_genes))
    log_random = np.log1p(_gene_means(tmp_path / "random", random_genes))
    assert abs(log_module.mean() - log_random.mean()) < 0.2 * log_module.std()
    assert np.corrcoef(log_module, log_random)[0, 1] > 0.8
    # scattered: the random genes do not form one connected PPI module
    kg = KnowledgeGraph.load(kg_many_genes)
    assert _connected_share(kg, random_genes) < 1.0


def _connected_share(kg, genes) -> float:
    """Share of ``genes`` whose protein has a PPI neighbour among the other genes' proteins."""
    symbol_of = kg.nodes["symbol"].to_numpy()
    internal = kg.edges[kg.edges["kind"] == "internal"]
    protein_of = {symbol_of[r]: int(p) for r, p in zip(internal["source"], internal["target"], strict=True)}
    proteins = {protein_of[g] for g in genes if g in protein_of}
    ppi = kg.edges[kg.edges["kind"] == "ppi"]
    linked = {int(a) for a, b in zip(ppi["source"], ppi["target"], strict=True) if a in proteins and b in proteins}
    linked |= {int(b) for a, b in zip(ppi["source"], ppi["target"], strict=True) if a in proteins and b in proteins}
    return len(linked) / max(len(proteins), 1)


def test_disease_options_set_effect_fraction_and_are_recorded(tmp_path, tiny_kg_dir):
    out = tmp_path / "opts"
    simulate(out, n_cells=120, n_donors=4, tissues=("blood",), diseases=("flu",), seed=2, kg=tiny_kg_dir,
             disease_effect=0.6, module_size=5, affected_fraction=0.2)
    record = json.loads((out / "simulation.json").read_text())
    for key, value in {"disease_effect": 0.6, "module_size": 5, "affected_fraction": 0.2, "disease_genes": "module",
                       "confound": False, "cells_per_file": None, "seed": 2, "n_cells": 120, "n_donors": 4}.items():
        assert record[key] == value
    module = record["disease_modules"]["flu"]
    assert len(module["proteins"]) == 5
    change = np.abs(np.array(list(module["log2_fold_change"].values())))
    assert change.min() >= 0.6 * 2 / 3 - 1e-4 and change.max() <= 0.6 * 4 / 3 + 1e-4
    assert len(module["affected_cell_types"]["blood"]) == 1  # ceil(0.2 x 5 blood cell types)
    with pytest.raises(CellTOSGError, match="disease_genes"):
        simulate(tmp_path / "bad", n_cells=40, n_donors=2, diseases=("flu",), kg=tiny_kg_dir, disease_genes="near")
    with pytest.raises(CellTOSGError, match="affected_fraction"):
        simulate(tmp_path / "bad", n_cells=40, n_donors=2, diseases=("flu",), kg=tiny_kg_dir, affected_fraction=0)


def test_same_seed_same_bytes_with_disease_options(tmp_path, tiny_kg_dir):
    kwargs = dict(n_cells=200, n_donors=4, diseases=("flu",), kg=tiny_kg_dir, seed=9, disease_effect=2.5,
                  module_size=6, affected_fraction=0.6, disease_genes="random")
    first = simulate(tmp_path / "a", **kwargs)
    simulate(tmp_path / "b", **kwargs)
    names = [f.name for f in first.files] + ["ground_truth.json", "simulation.json"]
    assert [sha256_file(tmp_path / "a" / n) for n in names] == [sha256_file(tmp_path / "b" / n) for n in names]


def test_cli_disease_options_reach_simulation_json(tmp_path, tiny_kg_dir):
    from celltosg.cli import app

    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["simulate", "--out", str(out), "--cells", "80", "--donors", "8", "--diseases",
                                      "flu", "--kg", str(tiny_kg_dir), "--disease-effect", "0.5", "--module-size", "4",
                                      "--affected-fraction", "0.4", "--disease-genes", "random", "--confound"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "simulation.json").read_text())
    assert (record["disease_effect"], record["module_size"], record["affected_fraction"]) == (0.5, 4, 0.4)
    assert record["disease_genes"] == "random" and record["confound"] is True
    default = tmp_path / "default"
    assert CliRunner().invoke(app, ["simulate", "--out", str(default), "--cells", "40", "--donors", "2", "--diseases",
                                    "flu", "--kg", str(tiny_kg_dir)]).exit_code == 0
    assert json.loads((default / "simulation.json").read_text())["disease_effect"] == 2.0
