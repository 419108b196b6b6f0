"""A Lightning DataModule streaming a cohort's splits from the store."""

from __future__ import annotations

from lightning.pytorch import LightningDataModule

from celltosg.errors import QueryError
from celltosg.loader._stream import EpochDataLoader, TOSGDataset


def cohort_dataset(cohort, split: str | None, *, shuffle: bool, **kwargs) -> TOSGDataset:
    """A :class:`TOSGDataset` over one split of a cohort (columns = the cohort's genes, labels if any)."""
    if cohort.correction_method is not None:
        raise QueryError("streaming cannot batch-correct (that needs a whole split); use cohort.X(split) "
                         "or load the cohort with correction_method=None.")
    labels = cohort.labels(split) if cohort.label_mapping is not None else None
    return TOSGDataset(cohort.store, cohort.positions(split), labels, columns=cohort.genes, shuffle=shuffle,
                       normalize=cohort.normalize, target_sum=cohort.target_sum, **kwargs)


class TOSGDataModule(LightningDataModule):
    """Train / val / test DataLoaders streaming a :class:`~celltosg.loader.Cohort` from its store.

    Batches are ``(x float32 (B, n_genes), y int64 (B,))`` (or ``x`` alone without labels; with
    ``return_rows`` the split's row indices (B,) come last). Training is shuffled by chunk and within a
    buffer, with a new order each epoch, and every DDP rank takes the same number of steps; val / test are
    read in order.
    """

    def __init__(self, cohort, *, batch_size: int = 32, buffer_size: int = 4096, num_workers: int = 0,
                 seed: int = 2025, return_rows: bool = False):
        super().__init__()
        self.cohort = cohort
        self.batch_size, self.buffer_size, self.num_workers, self.seed = batch_size, buffer_size, num_workers, seed
        self.return_rows = return_rows

    def _loader(self, split: str, shuffle: bool) -> EpochDataLoader:
        dataset = cohort_dataset(self.cohort, split, shuffle=shuffle, batch_size=self.batch_size,
                                 buffer_size=self.buffer_size, seed=self.seed, equal_steps=shuffle,
                                 return_rows=self.return_rows)
        return EpochDataLoader(dataset, batch_size=None, num_workers=self.num_workers)

    def train_dataloader(self) -> EpochDataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> EpochDataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> EpochDataLoader:
        return self._loader("test", False)
