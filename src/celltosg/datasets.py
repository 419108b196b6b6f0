"""Real data embedded in installed packages, with CELLxGENE metadata columns added."""

from __future__ import annotations

import logging

import anndata as ad

logger = logging.getLogger(__name__)

PBMC_LABEL_KEY = "bulk_labels"


def pbmc68k() -> ad.AnnData:
    """The 700-cell PBMC 68k subset shipped with scanpy, as log-normalised values over 765 genes.

    ``X`` holds scanpy's ``.raw`` (log1p of library-size-normalised counts; the package ships no counts),
    ``obs`` gets CELLxGENE columns: ``cell_type`` (the 10 ``bulk_labels``), ``tissue`` = blood,
    ``disease`` = normal, ``sex`` / ``development_stage`` = unknown, one ``donor_id`` and ``dataset_id``.
    There is a single donor, so any split of these cells is by cell (optimistic estimates).
    """
    import scanpy as sc

    source = sc.datasets.pbmc68k_reduced()
    adata = ad.AnnData(X=source.raw.X.copy(), obs=source.obs[[PBMC_LABEL_KEY]].copy(), var=source.raw.var[[]].copy())
    obs = adata.obs
    obs["cell_type"] = obs.pop(PBMC_LABEL_KEY).astype(str)
    obs["tissue"] = "blood"
    obs["tissue_general"] = "blood"
    obs["disease"] = "normal"
    obs["sex"] = "unknown"
    obs["development_stage"] = "unknown"
    obs["donor_id"] = "pbmc68k-donor"
    obs["dataset_id"] = "pbmc68k_reduced"
    obs["assay"] = "10x 3' v1"
    obs["suspension_type"] = "cell"
    obs["source"] = "scanpy"
    logger.info("loaded pbmc68k_reduced: %d cells x %d genes (log-normalised)", *adata.shape)
    return adata
