"""Cohorts from a simulated store: task rules, leak-free splits, values against the exact counts, errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from celltosg.errors import QueryError, StoreError
from celltosg.loader import load_cohort
from celltosg.store import TOSGStore

BRAIN_AD = {"tissue_general": "brain", "disease": "Alzheimer disease"}


def _donors_per_split(obs):
    return obs.groupby(["dataset_id", "donor_id"])["split"].nunique()


def test_disease_cohort_is_balanced_matched_and_leak_free(cohort_store):
    cohort = load_cohort(cohort_store, BRAIN_AD, task="disease")
    obs = cohort.obs
    assert cohort.label_mapping == {"normal": 0, "Alzheimer disease": 1}
    assert set(obs["tissue_general"]) == {"brain"}
    counts = obs["label"].value_counts()
    assert counts["normal"] == counts["Alzheimer disease"]
    # every matched pair group holds as many controls as cases on (cell type, sex)
    per_key = obs.groupby(["cell_type", "sex_normalized", "label"]).size().unstack()
    assert (per_key["normal"] == per_key["Alzheimer disease"]).all()
    assert (_donors_per_split(obs) == 1).all()
    assert set(cohort.splits) == {"train", "val", "test"}
    for split in cohort.splits:
        assert set(cohort.labels(split)) == {0, 1}


def test_values_follow_the_exact_counts_and_the_graph_order(cohort_store, cohort_store_data):
    _, X = cohort_store_data
    cohort = load_cohort(cohort_store, BRAIN_AD, task="disease")
    measured = np.flatnonzero(X[np.unique(cohort.positions())].sum(0) > 0)
    np.testing.assert_array_equal(cohort.genes, measured)
    assert len(cohort.genes) == X.shape[1] - 3  # the simulated store never expresses its last 3 genes
    raw = X[cohort.positions("test")][:, measured].astype(np.float64)
    expected = np.log1p(raw / raw.sum(1, keepdims=True) * 1e4)
    np.testing.assert_allclose(cohort.X("test"), expected, rtol=1e-5)
    np.testing.assert_array_equal(cohort.counts("test"), raw)
    kg = cohort.kg
    assert kg.n_rna == len(measured)
    assert list(kg.nodes["symbol"].iloc[:kg.n_rna]) == list(cohort_store.var["symbol"].iloc[measured])
    adata = cohort.to_anndata("test")
    assert adata.shape == (len(raw), len(measured)) and adata.uns["label_mapping"] == cohort.label_mapping


def test_cell_type_cohort_drops_junk_and_rare_types(cohort_store):
    cohort = load_cohort(cohort_store, {"tissue_general": "lung"}, task="cell_type")
    assert set(cohort.label_mapping) == {"type II pneumocyte", "macrophage", "T cell"}
    assert (_donors_per_split(cohort.obs) == 1).all()
    for split in cohort.splits:
        assert set(cohort.obs.loc[cohort.obs["split"] == split, "label"]) == set(cohort.label_mapping)


def test_sex_cohort_matches_on_cell_type_and_stage(cohort_store):
    cohort = load_cohort(cohort_store, {"tissue_general": "lung"}, task="sex", sample_ratio=0.5)
    assert cohort.label_mapping == {"female": 0, "male": 1}
    per_key = cohort.obs.groupby(["cell_type", "label"]).size().unstack()
    assert (per_key["female"] == per_key["male"]).all()


def test_unbalanced_sampling_by_size_is_exact_and_seeded(cohort_store):
    a = load_cohort(cohort_store, BRAIN_AD, task="disease", balance=False, sample_size=150, seed=3)
    b = load_cohort(cohort_store, BRAIN_AD, task="disease", balance=False, sample_size=150, seed=3)
    assert len(a) == 150 and a.obs["position"].equals(b.obs["position"])


def test_bad_arguments(cohort_store):
    with pytest.raises(QueryError, match="only one"):
        load_cohort(cohort_store, BRAIN_AD, task="disease", sample_ratio=0.5, sample_size=10)
    with pytest.raises(QueryError, match="outside"):
        load_cohort(cohort_store, BRAIN_AD, task="disease", sample_ratio=2.0)
    with pytest.raises(QueryError, match="unknown task"):
        load_cohort(cohort_store, BRAIN_AD, task="age")


def test_store_built_with_another_pack_names_both_checksums(cohort_store_data, tmp_path):
    root = tmp_path / "store"
    shutil.copytree(cohort_store_data[0], root)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["kg_checksum"] = "0" * 64
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="0" * 64) as info:
        load_cohort(root, BRAIN_AD, task="disease")
    assert TOSGStore.open(cohort_store_data[0]).kg.checksum in str(info.value)


def test_corrupt_shard_is_named(cohort_store_data, tmp_path):
    root = tmp_path / "store"
    shutil.copytree(cohort_store_data[0], root)
    chunk = max((p for p in (root / "shards").rglob("*") if p.is_file() and "/X/c" in p.as_posix()),
                key=lambda p: p.stat().st_size)
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2:] = bytes(len(data) - len(data) // 2)
    chunk.write_bytes(bytes(data))
    shard = chunk.relative_to(root / "shards").parts[0].removesuffix(".zarr")
    cohort = load_cohort(TOSGStore.open(root), {"tissue_general": ["brain", "lung"]}, task="pretrain")
    with pytest.raises(StoreError, match=shard):
        cohort.X("train")
