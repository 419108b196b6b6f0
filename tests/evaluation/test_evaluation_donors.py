from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from celltosg.cli import app
from celltosg.evaluation._donors import donor_calls, donor_metrics, macro_auroc
from celltosg.evaluation._tasks import store_splits


def test_donor_calls_average_each_donors_cells_by_hand():
    proba = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]])
    donors = ["b", "a", "b", "a", "c"]
    table = donor_calls(proba, donors, ["normal", "flu"])
    # b: (0.9 + 0.2) / 2 = 0.55 normal, 0.45 flu; a: (0.3 + 0.6) / 2 = 0.45, 0.55; c: 0.4, 0.6
    assert table["donor"].tolist() == ["b", "a", "c"]
    np.testing.assert_allclose(table["p_normal"], [0.55, 0.45, 0.4])
    np.testing.assert_allclose(table["p_flu"], [0.45, 0.55, 0.6])
    assert table["called"].tolist() == ["normal", "flu", "flu"]
    assert table["n_cells"].tolist() == [2, 2, 1]


def test_donor_metrics_by_hand():
    proba = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6], [0.8, 0.2]])
    y = np.array([0, 1, 0, 1, 1, 0])
    donors = np.array(["b", "a", "b", "a", "c", "d"])
    # donor means of class 1: b 0.45 (true 0), a 0.55 (1), c 0.6 (1), d 0.2 (0): all called right
    metrics = donor_metrics(proba, y, donors)
    assert metrics["donor_accuracy"] == 1.0 and metrics["donor_auroc"] == 1.0
    # flip d's cells to look sick: d called 1 (wrong); AUROC: positives {0.55, 0.6} vs negatives {0.45, 0.8}
    # -> pairs won: 0.55>0.45, 0.6>0.45, 0.55<0.8, 0.6<0.8 = 2 of 4
    proba[5] = [0.2, 0.8]
    metrics = donor_metrics(proba, y, donors)
    assert metrics["donor_accuracy"] == 0.75 and metrics["donor_auroc"] == 0.5
    # a cell-level task (a donor holds several labels) has no donor metrics
    assert np.isnan(donor_metrics(proba, np.array([0, 1, 1, 1, 1, 0]), donors)["donor_accuracy"])
    assert np.isnan(macro_auroc(np.array([1, 1]), np.array([[0.2, 0.8], [0.3, 0.7]])))


@pytest.fixture(scope="module")
def disease_store(tmp_path_factory, tiny_kg_dir):
    """A store of 12 simulated blood donors (6 flu, 6 normal, 3 datasets), meta-cells of 5 cells."""
    from celltosg.build import build_store, simulate

    root = tmp_path_factory.mktemp("disease")
    sim = simulate(root / "sim", n_cells=600, n_donors=12, diseases=("flu",), seed=3, kg=tiny_kg_dir,
                   disease_effect=2.0)
    build_store(sim.files, root / "store", kg=tiny_kg_dir, min_genes=1, metacell_size=5)
    return root / "store"


def test_no_donor_spans_two_splits_of_a_disease_split(disease_store):
    make = store_splits(disease_store, {"disease": "flu"}, task="disease")
    for seed in range(3):
        split = make(seed)
        sets = {part: set(ids) for part, ids in split.donors.items()}
        assert all(sets.values())
        assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"])


def test_benchmark_disease_reports_donor_metrics_in_csv_and_markdown(disease_store, tmp_path):
    result = CliRunner().invoke(app, ["benchmark", str(disease_store), "--task", "disease", "--where",
                                      "disease=flu", "--models", "logreg", "--seeds", "2", "--budget", "1",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "results.csv")
    assert table[["donor_accuracy", "donor_auroc"]].notna().all().all()
    assert table["donor_accuracy"].between(0, 1).all()
    markdown = (tmp_path / "results.md").read_text()
    assert "donor accuracy" in markdown and "donor AUROC" in markdown
