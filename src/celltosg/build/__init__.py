"""Build TOSG stores: QC, counts from log-normalised data, metadata normalisation, meta-cells, gene
mapping, the resumable (Dask) pipeline and the OmniCellTOSG importer."""

from celltosg.build._counts import counts_from_lognorm
from celltosg.build._import_omnicelltosg import import_omnicelltosg, read_gene_index, release_summary
from celltosg.build._mapping import (
    MIN_PACK_FRACTION,
    MIN_PACK_NODES,
    PackGeneMap,
    map_adata_genes,
    required_nodes,
)
from celltosg.build._metacells import METHODS as METACELL_METHODS
from celltosg.build._metacells import make_metacells, metacell_quality
from celltosg.build._metadata import (
    CELLXGENE_COLUMNS,
    DEVELOPMENT_STAGE_CATEGORIES,
    category_for_age,
    development_stage_category,
    normalize_disease,
    normalize_metadata,
    normalize_sex,
    parse_age_years,
    tidy_cell_type,
    tissue_general,
)
from celltosg.build._pipeline import (
    DEFAULT_METACELL_SIZE,
    BuildOptions,
    build_input,
    build_store,
    read_counts,
)
from celltosg.build._qc import QCReport, check_counts, run_qc
from celltosg.build._simulate import SimulationResult, simulate

__all__ = [
    "CELLXGENE_COLUMNS",
    "DEFAULT_METACELL_SIZE",
    "DEVELOPMENT_STAGE_CATEGORIES",
    "METACELL_METHODS",
    "MIN_PACK_FRACTION",
    "MIN_PACK_NODES",
    "BuildOptions",
    "PackGeneMap",
    "QCReport",
    "SimulationResult",
    "build_input",
    "build_store",
    "category_for_age",
    "check_counts",
    "counts_from_lognorm",
    "development_stage_category",
    "make_metacells",
    "import_omnicelltosg",
    "map_adata_genes",
    "metacell_quality",
    "normalize_disease",
    "normalize_metadata",
    "normalize_sex",
    "parse_age_years",
    "read_counts",
    "read_gene_index",
    "required_nodes",
    "release_summary",
    "run_qc",
    "simulate",
    "tidy_cell_type",
    "tissue_general",
]
