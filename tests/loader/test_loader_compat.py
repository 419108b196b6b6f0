"""The reference's README examples through CellTOSGDataLoader on a simulated store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from celltosg.errors import QueryError
from celltosg.loader import CellTOSGDataLoader


def _leak_free(metadata: dict) -> bool:
    frame = pd.concat(metadata.values())
    return bool((frame.groupby(["dataset_id", "donor_id"])["split"].nunique() == 1).all())


def test_readme_disease_example_brain_alzheimer(cohort_store_data, tmp_path):
    loader = CellTOSGDataLoader(
        root=cohort_store_data[0],
        conditions={"tissue_general": "brain", "disease": "Alzheimer disease"},
        task="disease", label_column="disease", sample_ratio=None, sample_size=None, shuffle=True,
        stratified_balancing=True, extract_mode="train", random_state=2025, train_text=False, train_bio=False,
        correction_method=None, output_dir=str(tmp_path / "out"))
    assert {"train", "test"} <= set(loader.data) and set(loader.data) == set(loader.labels)
    assert loader.label_mapping == {"normal": 0, "Alzheimer disease": 1}
    y = np.concatenate(list(loader.labels.values()))
    assert (y == 0).sum() == (y == 1).sum()
    assert _leak_free(loader.metadata)
    n_genes = loader.data["train"].shape[1]
    assert loader.data["train"].dtype == np.float32
    assert loader.internal_edge_index.shape[0] == 2 and loader.internal_edge_index[0].max() < n_genes
    assert loader.edge_index.shape[1] == (loader.internal_edge_index.shape[1] + loader.ppi_edge_index.shape[1]
                                          + loader.cohort.kg.edge_index("ligand_receptor").shape[1])
    out = tmp_path / "out"
    assert (out / "label_mapping_disease.csv").is_file() and (out / "labels_full_disease.csv").is_file()
    np.testing.assert_array_equal(np.load(out / "test" / "labels_test.npy"), loader.labels["test"])


def test_readme_cell_type_example_lung_adenocarcinoma(cohort_store_data):
    loader = CellTOSGDataLoader(
        root=cohort_store_data[0],
        conditions={"tissue_general": "lung", "disease": "lung adenocarcinoma"},
        task="cell_type", label_column="cell_type", extract_mode="train", random_state=2025, train_bio=True,
        train_text=True)
    assert set(loader.label_mapping) == {"type II pneumocyte", "macrophage", "T cell"}
    assert _leak_free(loader.metadata)
    for split in loader.labels:
        assert set(loader.labels[split]) == set(loader.label_mapping.values())
    assert list(loader.s_bio.columns) == ["Type", "Sequence"] and len(loader.s_name) == loader.cohort.kg.n_nodes


def test_inference_mode_returns_all_rows_as_counts(cohort_store_data, cohort_store):
    loader = CellTOSGDataLoader(cohort_store_data[0], {"disease": "Alzheimer disease", "cell_type": "neuron"},
                                task="disease", label_column="disease", extract_mode="inference")
    assert isinstance(loader.data, np.ndarray) and isinstance(loader.metadata, pd.DataFrame)
    assert len(loader.metadata) == len(loader.data) and loader.labels is loader.metadata
    assert set(loader.metadata["disease"]) == {"normal", "Alzheimer disease"}
    assert np.allclose(loader.data, np.round(loader.data))


def test_both_ratio_and_size_is_an_error(cohort_store_data):
    with pytest.raises(QueryError, match="only one"):
        CellTOSGDataLoader(cohort_store_data[0], {"tissue_general": "lung"}, task="cell_type",
                           sample_ratio=0.5, sample_size=10)
