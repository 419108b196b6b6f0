"""Streaming: every row once per epoch across ranks and workers, seeded order, values as the cohort's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from celltosg.loader import EpochDataLoader, TOSGDataset, load_cohort, normalize_log1p


def _ids(dataset) -> list[int]:
    return [int(y) for _, y in dataset]


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_each_row_once_per_epoch_across_ranks(cohort_store, world_size):
    positions = np.arange(cohort_store.n_cells)
    seen = []
    for rank in range(world_size):
        ds = TOSGDataset(cohort_store, positions, labels=positions, rank=rank, world_size=world_size,
                         buffer_size=50, seed=1)
        ds.set_epoch(2)
        seen.extend(_ids(ds))
    assert sorted(seen) == positions.tolist()


def test_each_row_once_across_two_ranks_with_two_workers(cohort_store):
    positions = np.arange(0, cohort_store.n_cells, 2)
    seen = []
    for rank in range(2):
        ds = TOSGDataset(cohort_store, positions, labels=np.arange(len(positions)), rank=rank, world_size=2,
                         batch_size=16, buffer_size=64)
        for _, y in EpochDataLoader(ds, batch_size=None, num_workers=2):
            seen.extend(y.tolist())
    assert sorted(seen) == list(range(len(positions)))


def test_order_is_seeded_per_epoch_and_rows_are_shuffled(cohort_store):
    ds = TOSGDataset(cohort_store, labels=np.arange(cohort_store.n_cells), buffer_size=100, seed=7)
    first = _ids(ds)
    assert first == _ids(ds) and first != sorted(first)
    ds.set_epoch(1)
    assert _ids(ds) != first


def test_streamed_values_match_the_cohort(cohort_store):
    cohort = load_cohort(cohort_store, {"tissue_general": "brain", "disease": "Alzheimer disease"}, task="disease")
    from celltosg.loader._datamodule import TOSGDataModule

    module = TOSGDataModule(cohort, batch_size=8, buffer_size=32)
    batches = list(module.test_dataloader())
    x = torch.cat([b[0] for b in batches]).numpy()
    y = torch.cat([b[1] for b in batches]).numpy()
    assert x.shape == (len(cohort.positions("test")), len(cohort.genes))
    reference = cohort.X("test")
    # rows come chunk by chunk; match each streamed row to the cohort row with the same values
    order = np.lexsort(reference.T[::-1])
    got = np.lexsort(x.T[::-1])
    np.testing.assert_allclose(x[got], reference[order], rtol=1e-6)
    np.testing.assert_array_equal(np.sort(y), np.sort(cohort.labels("test")))
    assert np.allclose(normalize_log1p(cohort.counts("test")), reference)


@pytest.mark.parametrize("world_size", [2, 3])
def test_padded_ranks_take_equal_steps_and_still_cover_every_row(cohort_store, world_size):
    positions = np.arange(0, cohort_store.n_cells - 7)  # uneven chunks, so shards differ in size
    steps, seen, own = [], [], []
    for rank in range(world_size):
        ds = TOSGDataset(cohort_store, positions, labels=np.arange(len(positions)), rank=rank,
                         world_size=world_size, batch_size=8, buffer_size=32, equal_steps=True, return_rows=True)
        batches = list(ds)
        steps.append(len(batches))
        rows = np.concatenate([b[2].numpy() for b in batches])
        assert all(np.array_equal(b[1].numpy(), b[2].numpy()) for b in batches)  # labels = row numbers here
        seen.extend(rows.tolist())
        own.append(set(rows.tolist()))
        unpadded = TOSGDataset(cohort_store, positions, labels=np.arange(len(positions)), rank=rank,
                               world_size=world_size, batch_size=8, buffer_size=32)
        assert set(np.concatenate([y.numpy() for _, y in unpadded])) == own[-1]  # padding repeats own rows
    assert len(set(steps)) == 1
    assert set(seen) == set(range(len(positions)))
    assert all(not own[i] & own[j] for i in range(world_size) for j in range(i + 1, world_size))
