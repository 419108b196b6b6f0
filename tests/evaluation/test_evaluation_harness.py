from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from celltosg.baselines import Classifier, LogisticRegressionClassifier
from celltosg.errors import CellTOSGError, SplitError
from celltosg.evaluation import (
    ModelSpec,
    Split,
    align_to_kg,
    measure_peak_memory,
    run_benchmark,
    split_from_anndata,
    stratified_cell_split,
    summarize,
    write_results,
)


def _split(seed, n_genes=12, n=60, kg=None):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.random((n, n_genes)).astype(np.float32)
    X[np.arange(n), y] += 3.0
    parts = stratified_cell_split(y, seed=seed)
    pick = {p: parts == p for p in ("train", "val", "test")}
    return Split(X[pick["train"]], y[pick["train"]], X[pick["val"]], y[pick["val"]], X[pick["test"]],
                 y[pick["test"]], genes=np.array([f"G{i}" for i in range(n_genes)]), label_names=["a", "b", "c"],
                 kg=kg)


class _Majority(Classifier):
    """Predicts the most frequent training class; independent expectation: accuracy = its test share."""

    name = "majority"

    def fit(self, X_train, y_train, X_val, y_val):
        self.cls = int(np.bincount(y_train, minlength=self.n_classes).argmax())
        return self

    def predict_proba(self, X):
        proba = np.zeros((len(X), self.n_classes))
        proba[:, self.cls] = 1.0
        return proba


class _Centroid(Classifier):
    """Nearest class centroid on the columns ``columns`` (all when None)."""

    name = "centroid"

    def __init__(self, *, n_classes, seed=0, columns=None):
        super().__init__(n_classes=n_classes, seed=seed)
        self.columns = columns

    def _x(self, X):
        return X if self.columns is None else X[:, self.columns]

    def fit(self, X_train, y_train, X_val, y_val):
        self.centroids = np.stack([self._x(X_train)[y_train == c].mean(0) for c in range(self.n_classes)])
        return self

    def predict_proba(self, X):
        distance = ((self._x(X)[:, None, :] - self.centroids[None]) ** 2).sum(-1)
        proba = np.exp(-(distance - distance.min(1, keepdims=True)))
        return proba / proba.sum(1, keepdims=True)


class _OutOfMemory(_Majority):
    def fit(self, X_train, y_train, X_val, y_val):
        raise MemoryError("pretend the N-wide readout does not fit")


def _logreg_spec():
    return ModelSpec("logreg", lambda s, p, seed: LogisticRegressionClassifier(n_classes=s.n_classes, seed=seed, **p),
                     ({"C": 0.1}, {"C": 1.0}))


def _centroid_spec():
    # a noise column (index 5 is no class marker) against all columns: validation must pick all
    return ModelSpec("centroid", lambda s, p, seed: _Centroid(n_classes=s.n_classes, seed=seed, **p),
                     ({"columns": [5]}, {"columns": None}))


def _majority_spec(cls=_Majority, name="majority", needs_graph=False):
    return ModelSpec(name, lambda s, p, seed: cls(n_classes=s.n_classes, seed=seed), ({}, {}),
                     needs_graph=needs_graph)


def test_stratified_split_is_seeded_and_covers_every_class_in_every_part():
    labels = np.repeat(["a", "b", "c"], [50, 10, 3])
    parts = stratified_cell_split(labels, seed=1)
    assert np.array_equal(parts, stratified_cell_split(labels, seed=1))
    assert not np.array_equal(parts, stratified_cell_split(labels, seed=2))
    for label in "abc":
        assert set(parts[labels == label]) == {"train", "val", "test"}
    assert (parts[labels == "a"] == "test").sum() == 10 and (parts[labels == "a"] == "val").sum() == 10
    with pytest.raises(SplitError, match="at least 3"):
        stratified_cell_split(np.array(["a", "a", "b", "b", "b"]), seed=0)


def test_every_row_is_filled_and_seeds_reproduce():
    specs = [_logreg_spec(), _centroid_spec(), _majority_spec()]
    first = run_benchmark(_split, specs, seeds=[0, 1], task="toy")
    again = run_benchmark(_split, specs, seeds=[0, 1], task="toy")
    assert len(first) == 6 and (first["status"] == "ok").all()
    filled = ["accuracy", "macro_f1", "val_macro_f1", "train_s", "tune_s", "peak_mem_mb", "params", "n_train"]
    assert first[filled].notna().all().all()
    pd.testing.assert_frame_equal(first[["model", "seed", "accuracy", "macro_f1", "params"]],
                                  again[["model", "seed", "accuracy", "macro_f1", "params"]])
    assert (first[first.model == "logreg"]["accuracy"] == 1.0).all()
    centroid = first[first.model == "centroid"]
    assert (centroid["accuracy"] == 1.0).all()
    assert set(centroid["params"].map(lambda p: json.dumps(json.loads(p)["columns"]))) == {"null"}
    # majority: accuracy is the share of the training-majority class in the test part (one third here)
    for seed in (0, 1):
        split = _split(seed)
        expected = np.mean(split.y_test == np.bincount(split.y_train).argmax())
        assert first[(first.model == "majority") & (first.seed == seed)]["accuracy"].item() == pytest.approx(expected)


def test_unequal_tuning_budgets_are_refused():
    lopsided = ModelSpec("many", _logreg_spec().build, ({"C": 0.1}, {"C": 1.0}, {"C": 10.0}))
    with pytest.raises(CellTOSGError, match="same tuning budget"):
        run_benchmark(_split, [_logreg_spec(), lopsided], seeds=[0])


def test_out_of_memory_and_missing_graph_give_status_rows():
    specs = [_majority_spec(_OutOfMemory, "too_big"), _majority_spec(name="graph_model", needs_graph=True)]
    table = run_benchmark(_split, specs, seeds=[0])
    assert table.set_index("model")["status"].to_dict() == {"too_big": "out of memory", "graph_model": "no graph"}
    assert table["accuracy"].isna().all()


def test_written_results_hold_mean_and_sd_over_seeds(tmp_path):
    table = pd.DataFrame({
        "task": "t", "model": ["m", "m", "m"], "seed": [0, 1, 2], "status": "ok",
        "accuracy": [0.5, 0.7, 0.9], "macro_f1": [0.4, 0.4, 0.4], "val_macro_f1": 0.5, "train_s": [1.0, 2.0, 3.0],
        "tune_s": 4.0, "peak_mem_mb": [10.0, 10.0, 40.0], "params": "{}", "device": "cpu:1 threads",
    })
    summary = summarize(table).iloc[0]
    assert summary["accuracy_mean"] == pytest.approx(0.7) and summary["accuracy_sd"] == pytest.approx(0.2)
    assert summary["peak_mem_mb_mean"] == pytest.approx(20.0)
    paths = write_results(table, tmp_path / "out", title="toy")
    assert pd.read_csv(paths["csv"]).shape == table.shape
    text = paths["md"].read_text()
    assert "| m | 3 | 0.700 ± 0.200 | 0.400 ± 0.000 | 2.0 ± 1.0 | 20.0 ± 17.3 | cpu:1 threads | ok |" in text
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"


def test_anndata_split_aligns_columns_to_the_graph(tiny_kg):
    rng = np.random.default_rng(0)
    genes = ["GENE5", "NOT_A_GENE", "GENE2", "ALIAS7", "GENE5"]  # unknown dropped, duplicate kept once
    labels = np.repeat(["x", "y", "z"], [10, 10, 2])  # z has too few cells and is dropped
    adata = ad.AnnData(X=rng.random((22, 5)).astype(np.float32), obs=pd.DataFrame({"ct": labels}, index=[f"c{i}" for i in range(22)]))
    adata.var_names = genes
    split = split_from_anndata(adata, label_key="ct", seed=0, kg=tiny_kg)
    assert list(split.genes) == ["GENE5", "GENE2", "ALIAS7"]
    assert split.label_names == ["x", "y"]
    assert list(split.kg.rna_symbols) == ["GENE5", "GENE2", "GENE7"]
    X, genes_kept, sub = align_to_kg(adata.X, genes, tiny_kg)
    np.testing.assert_array_equal(X, adata.X[:, [0, 2, 3]])
    assert sub.n_rna == 3 and len(genes_kept) == 3
    total = sum(len(split.part(p)[1]) for p in ("train", "val", "test"))
    assert total == 20


def test_peak_memory_sees_a_large_allocation():
    with measure_peak_memory() as memory:
        block = np.ones((200, 1024, 1024 // 8))  # 200 MB of float64
        block.sum()
        del block
    assert 150 < memory.rss_mb < 400


def test_every_registered_model_gets_the_same_budget():
    from celltosg.errors import UnknownIdentifierError
    from celltosg.evaluation._models import GRID_SIZE, model_names, model_specs

    names = model_names()
    assert {"celltypist", "logreg", "mlp", "gcn", "gat", "gin", "celltosg_fm", "celltosg_fm_pretrained",
            "reference_fm", "fm_no_text", "fm_no_seq", "fm_single_stage", "fm_rewired_kg"} <= set(names)
    assert {len(spec.grid) for spec in model_specs("all")} == {GRID_SIZE}
    assert {len(spec.grid) for spec in model_specs("all", budget=2)} == {2}
    assert [s.name for s in model_specs(["gcn", "logreg"])] == ["gcn", "logreg"]
    with pytest.raises(UnknownIdentifierError, match="unknown models"):
        model_specs(["scgpt"])
    with pytest.raises(UnknownIdentifierError, match="budget"):
        model_specs("all", budget=5)


def test_every_grid_holds_distinct_configurations_starting_at_the_default():
    from celltosg.evaluation import model_specs
    from celltosg.recipe import RECIPE

    for spec in model_specs("all"):
        assert len({tuple(sorted(p.items())) for p in spec.grid}) == len(spec.grid), spec.name
        if spec.name.startswith(("celltosg_fm", "fm_")):
            assert spec.grid[0] == {"hidden": RECIPE.model["hidden"], "lr": RECIPE.lr}
