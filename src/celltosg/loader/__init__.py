"""Query and load cohorts from a TOSG store: conditions, task balancing, donor-wise splits, normalisation,
batch correction, the reference's ``CellTOSGDataLoader`` and streaming PyTorch datasets."""

from celltosg.loader._balance import JUNK_CELL_TYPES, LABEL_COLUMNS, TASKS, match_by_keys
from celltosg.loader._cohort import Cohort, read_columns
from celltosg.loader._compat import CellTOSGDataLoader
from celltosg.loader._correct import CorrectionReport, correct_batches
from celltosg.loader._fields import FIELD_ALIASES, STAGES
from celltosg.loader._genes import GeneSubset, most_variable_genes, restrict_genes
from celltosg.loader._labels import label_mapping
from celltosg.loader._load import load_cohort, open_store
from celltosg.loader._normalize import column_moments, normalize_log1p
from celltosg.loader._query import available_conditions, parse_where, query
from celltosg.loader._sampling import sample_rows
from celltosg.loader._splits import SPLITS, check_disjoint, donor_groups, split_by_cell, split_by_donor
from celltosg.loader._stream import EpochDataLoader, TOSGDataset


def __getattr__(name: str):
    """Import the Lightning data module only when asked for (Lightning is slow to import)."""
    if name == "TOSGDataModule":
        from celltosg.loader._datamodule import TOSGDataModule

        return TOSGDataModule
    raise AttributeError(name)


__all__ = [
    "FIELD_ALIASES",
    "JUNK_CELL_TYPES",
    "LABEL_COLUMNS",
    "SPLITS",
    "STAGES",
    "TASKS",
    "CellTOSGDataLoader",
    "Cohort",
    "CorrectionReport",
    "EpochDataLoader",
    "GeneSubset",
    "TOSGDataModule",
    "TOSGDataset",
    "available_conditions",
    "most_variable_genes",
    "restrict_genes",
    "check_disjoint",
    "column_moments",
    "correct_batches",
    "donor_groups",
    "label_mapping",
    "load_cohort",
    "match_by_keys",
    "normalize_log1p",
    "open_store",
    "parse_where",
    "query",
    "read_columns",
    "sample_rows",
    "split_by_cell",
    "split_by_donor",
]
