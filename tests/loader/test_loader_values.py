"""Sampling, label encoding, normalisation and batch correction on synthetic arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from celltosg.errors import QueryError
from celltosg.loader import correct_batches, label_mapping, normalize_log1p, sample_rows


def test_normalize_log1p_by_hand():
    counts = np.array([[1, 3, 0], [0, 0, 0], [5, 5, 10]], dtype=np.float32)
    expected = np.log1p(np.array([[2500, 7500, 0], [0, 0, 0], [2500, 2500, 5000]], dtype=np.float64))
    out = normalize_log1p(counts)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_label_mapping_puts_controls_first_and_sorts_the_rest():
    disease = pd.Series(["lung adenocarcinoma", "normal", "Alzheimer disease", "normal"])
    assert label_mapping(disease, "disease") == {"normal": 0, "Alzheimer disease": 1, "lung adenocarcinoma": 2}
    assert label_mapping(pd.Series(["male", "female"]), "sex_normalized") == {"female": 0, "male": 1}
    assert label_mapping(pd.Series(["T cell", "B cell", "acinar cell"]), "cell_type") == {
        "acinar cell": 0, "B cell": 1, "T cell": 2}


@pytest.mark.parametrize(("ratio", "size"), [(0.0, None), (1.5, None), (-0.1, None), (0.5, 10), (None, 0)])
def test_bad_sampling_arguments(ratio, size):
    with pytest.raises(QueryError):
        sample_rows(pd.DataFrame({"a": range(10)}), sample_ratio=ratio, sample_size=size)


def test_sampling_is_seeded_stratified_and_exact():
    frame = pd.DataFrame({"label": ["a"] * 90 + ["b"] * 10})
    by_ratio = sample_rows(frame, sample_ratio=0.1, seed=1, strata="label")
    assert by_ratio["label"].value_counts().to_dict() == {"a": 9, "b": 1}
    by_size = sample_rows(frame, sample_size=20, seed=1, strata="label")
    assert by_size["label"].value_counts().to_dict() == {"a": 18, "b": 2}
    assert by_size.index.equals(sample_rows(frame, sample_size=20, seed=1, strata="label").index)
    assert not by_size.index.equals(sample_rows(frame, sample_size=20, seed=2, strata="label").index)
    assert by_size.index.is_unique


def _batched(seed=0, n_per=30, genes=12):
    rng = np.random.default_rng(seed)
    batch = np.repeat(["b0", "b1", "b2"], n_per)
    label = np.tile(["normal", "AD"], len(batch) // 2)
    shift = {"b0": 0.0, "b1": 1.5, "b2": -1.0}
    gene_shift = rng.normal(0, 1, genes)
    values = rng.normal(3, 0.3, (len(batch), genes)) + np.array([shift[b] for b in batch])[:, None] * gene_shift
    values += (label == "AD")[:, None] * 0.8
    obs = pd.DataFrame({"dataset_id": batch, "label": label, "tissue_general": "brain"})
    return values.astype(np.float32), obs


def test_combat_removes_batch_shifts_and_keeps_the_covariate():
    values, obs = _batched()
    out, report = correct_batches(values, obs, method="combat", covariate="label")
    assert report.corrected == ["brain"] and not report.dropped_covariates
    spread = lambda x: np.ptp([x[obs["dataset_id"] == b].mean(0) for b in ("b0", "b1", "b2")], axis=0).mean()  # noqa: E731
    assert spread(out) < 0.2 * spread(values)
    effect = out[obs["label"] == "AD"].mean() - out[obs["label"] == "normal"].mean()
    assert effect == pytest.approx(0.8, abs=0.15)


def test_confounded_covariate_is_dropped_and_reported():
    values, obs = _batched()
    obs["label"] = np.where(obs["dataset_id"] == "b0", "AD", "normal")
    _, report = correct_batches(values, obs, method="combat", covariate="label")
    assert "confounded" in report.dropped_covariates["brain"]


def test_single_batch_group_is_skipped_and_left_unchanged():
    values, obs = _batched()
    obs["tissue_general"] = np.where(obs["dataset_id"] == "b0", "lung", "brain")
    out, report = correct_batches(values, obs, method="combat", covariate="label")
    assert "lung" in report.skipped
    lung = (obs["tissue_general"] == "lung").to_numpy()
    np.testing.assert_array_equal(out[lung], values[lung])


def test_combat_seq_keeps_counts_non_negative_and_shrinks_gene_batch_effects():
    rng = np.random.default_rng(0)
    batch = np.repeat(["b0", "b1"], 25)
    mean = rng.gamma(2, 10, 15)
    fold = np.where(np.arange(15) < 7, 3.0, 1 / 3)
    mu = np.where((batch == "b1")[:, None], mean * fold, mean)
    counts = rng.negative_binomial(10, 10 / (10 + mu)).astype(np.float32)
    obs = pd.DataFrame({"dataset_id": batch, "tissue_general": "lung"})
    out, report = correct_batches(counts, obs, method="combat_seq")
    assert report.corrected == ["lung"] and (out >= 0).all()
    log_ratio = lambda x: np.abs(np.log((x[batch == "b1"].mean(0) + 1) / (x[batch == "b0"].mean(0) + 1))).mean()  # noqa: E731
    assert log_ratio(out) < 0.5 * log_ratio(counts)


def test_cohort_corrects_held_out_splits_without_their_labels():
    from celltosg.loader import Cohort

    values, obs = _batched()
    cohort = Cohort(None, obs.assign(split="x"), task="disease", label_column="label", label_mapping=None,
                    normalize=False, correction_method="combat", covariate="label")
    shuffled = obs.assign(label=np.random.default_rng(1).permutation(obs["label"].to_numpy()))
    for split in ("val", "test"):  # the same values whatever the labels say: no label leaks into them
        np.testing.assert_array_equal(cohort._transform(values, obs, split), cohort._transform(values, shuffled, split))
    # training rows keep the label as a covariate (its signal is protected), so their values depend on it
    assert not np.allclose(cohort._transform(values, obs, "train"), cohort._transform(values, shuffled, "train"))
