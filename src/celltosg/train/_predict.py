"""Apply a trained checkpoint to a new AnnData: map its genes onto the model's graph, predict, embed."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from celltosg.errors import MalformedInputError, UnknownIdentifierError
from celltosg.io_utils import atomic_file
from celltosg.loader import normalize_log1p
from celltosg.train._checkpoint import build_model, load_checkpoint, load_pack
from celltosg.train._classify import input_batches

if TYPE_CHECKING:
    import anndata as ad

log = logging.getLogger(__name__)

MIN_COVERAGE = 0.5


def check_anndata(adata: Any) -> None:
    """Refuse anything but an AnnData in the first argument (every function here takes the AnnData first)."""
    import anndata as ad

    if not isinstance(adata, ad.AnnData):
        raise MalformedInputError(f"expected an AnnData (cells x genes) as the first argument, got "
                                  f"{type(adata).__name__}; read one with anndata.read_h5ad")


def _looks_like_counts(values: np.ndarray) -> bool:
    """True when every value is a non-negative integer and some exceed what log1p values reach."""
    if values.size == 0:
        return False
    return bool(values.min() >= 0 and values.max() > 20 and np.array_equal(values, np.round(values)))


def map_anndata(adata: ad.AnnData, payload: dict[str, Any], *, gene_column: str | None = None,
                force: bool = False, path: str | os.PathLike = "checkpoint") -> tuple[np.ndarray, dict]:
    """Expression of ``adata`` on the model's genes, float32 (n_cells, n_rna), and a mapping report.

    Genes are mapped onto the checkpoint's pack (symbols, aliases, Ensembl or Entrez ids), duplicates
    are summed, model genes absent from ``adata`` are zero. Raw counts (non-negative integers) are
    normalised to 1e4 per cell over the model's genes and log1p-transformed, as the loader does; other
    values are taken as already log-normalised. Fewer than half the model's genes present is an error
    unless ``force``.
    """
    import scipy.sparse as sp

    kg, model_rna = load_pack(payload, path=path)
    ids = adata.var[gene_column].astype(str) if gene_column else adata.var_names.astype(str)
    mapping = kg.map_genes(ids)
    column_of = np.full(kg.n_rna, -1, dtype=np.int64)
    column_of[model_rna] = np.arange(len(model_rna))
    mapped = mapping.rna_index >= 0
    target = np.where(mapped, column_of[np.maximum(mapping.rna_index, 0)], -1)
    used = target >= 0
    coverage = float(np.isin(np.arange(len(model_rna)), target[used]).mean()) if len(model_rna) else 0.0
    report = {"input_genes": int(len(ids)), "input_mapping_rate": mapping.rate,
              "model_genes": int(len(model_rna)), "model_gene_coverage": coverage}
    log.info("%d of %d input genes map onto the pack (%.1f%%); they cover %.1f%% of the model's %d genes",
             int(mapped.sum()), len(ids), 100 * mapping.rate, 100 * coverage, len(model_rna))
    if coverage < MIN_COVERAGE and not force:
        raise UnknownIdentifierError(
            f"the input covers only {100 * coverage:.1f}% of the model's {len(model_rna)} genes (unmapped "
            f"input examples: {mapping.unmapped[:5]}); give gene symbols or Ensembl ids (see gene_column), "
            "or pass force to predict with the missing genes set to zero")
    X = sp.csr_matrix(adata.X, dtype=np.float64)
    if X.shape[1] != len(ids):
        raise MalformedInputError(f"the AnnData has {X.shape[1]} columns but {len(ids)} genes; it is malformed")
    select = sp.csr_matrix((np.ones(int(used.sum())), (np.flatnonzero(used), target[used])),
                           shape=(len(ids), len(model_rna)))
    values = np.asarray((X @ select).todense())
    report["normalised_counts"] = _looks_like_counts(X.data)
    if report["normalised_counts"]:
        values = normalize_log1p(values)
    return values.astype(np.float32), report


def _run(adata: ad.AnnData, checkpoint: str | os.PathLike, key: str, *, batch_size: int,
         gene_column: str | None, force: bool):
    import torch

    check_anndata(adata)

    payload = load_checkpoint(checkpoint)
    model, _, _ = build_model(payload, path=checkpoint)
    X, report = map_anndata(adata, payload, gene_column=gene_column, force=force, path=checkpoint)
    with torch.no_grad():
        out = torch.cat([model(x)[key] for x in input_batches(X, batch_size)])
    return payload, out.numpy(), report


def predict(adata: ad.AnnData, checkpoint: str | os.PathLike, *, batch_size: int = 64,
            gene_column: str | None = None, force: bool = False) -> ad.AnnData:
    """Labels and class probabilities of a fine-tuned model for the cells of ``adata``.

    Returns a copy of ``adata`` with ``obs["celltosg_label"]``, ``obs["celltosg_probability"]`` (of that
    label), ``obsm["celltosg_probabilities"]`` (n_cells, C), ``uns["celltosg"]`` (classes, task, mapping
    report).
    """
    import torch

    payload, logits, report = _run(adata, checkpoint, "logits", batch_size=batch_size,
                                   gene_column=gene_column, force=force)
    if not payload["label_mapping"]:
        raise MalformedInputError(f"checkpoint {checkpoint} has no task head (a pretrained encoder); "
                                  "fine-tune it with `celltosg finetune` first, or use `celltosg embed`")
    classes = [name for name, _ in sorted(payload["label_mapping"].items(), key=lambda item: item[1])]
    probabilities = torch.softmax(torch.from_numpy(logits), 1).numpy()
    out = adata.copy()
    best = probabilities.argmax(1)
    out.obs["celltosg_label"] = np.asarray(classes, dtype=object)[best]
    out.obs["celltosg_probability"] = probabilities[np.arange(len(best)), best]
    out.obsm["celltosg_probabilities"] = probabilities
    out.uns["celltosg"] = {"task": payload["task"], "classes": classes, **report}
    return out


def embed(adata: ad.AnnData, checkpoint: str | os.PathLike, *, batch_size: int = 64,
          gene_column: str | None = None, force: bool = False) -> ad.AnnData:
    """Cell embeddings of a checkpoint's encoder: a copy of ``adata`` with ``obsm["X_celltosg"]`` (n, D)."""
    _, cells, report = _run(adata, checkpoint, "cell", batch_size=batch_size, gene_column=gene_column,
                            force=force)
    out = adata.copy()
    out.obsm["X_celltosg"] = cells
    out.uns["celltosg"] = report
    return out


def write_result(adata: ad.AnnData, out: str | os.PathLike, *, obsm_key: str,
                 obs_keys: tuple[str, ...] = (), columns: list[str] | None = None) -> Path:
    """Write ``adata`` as ``.h5ad``, or ``.csv`` (cell id, ``obs_keys``, ``obsm[obsm_key]`` columns)."""
    import pandas as pd

    out = Path(out)
    if out.suffix == ".h5ad":
        with atomic_file(out) as tmp:
            adata.write_h5ad(tmp)
    elif out.suffix == ".csv":
        matrix = adata.obsm[obsm_key]
        names = columns or [f"{obsm_key}_{i}" for i in range(matrix.shape[1])]
        table = pd.concat([adata.obs[list(obs_keys)], pd.DataFrame(matrix, index=adata.obs_names, columns=names)],
                          axis=1)
        with atomic_file(out) as tmp:
            table.to_csv(tmp, index_label="cell_id")
    else:
        raise MalformedInputError(f"output {out} must end in .h5ad or .csv")
    return out


def check_donor_key(adata: ad.AnnData, donor_key: str) -> None:
    """Raise :class:`MalformedInputError` when ``donor_key`` is not an obs column of ``adata``."""
    if donor_key not in adata.obs:
        raise MalformedInputError(f"donor key {donor_key!r} is not an obs column of the input (columns: "
                                  f"{list(adata.obs.columns)[:20]}); name the column that holds donor ids")


def write_donor_calls(adata: ad.AnnData, out: str | os.PathLike, *, donor_key: str) -> Path:
    """Write ``out`` as CSV: one row per donor of ``obs[donor_key]`` with the mean of its cells' class
    probabilities (``p_<class>``), the called class (``called``) and ``n_cells``; ``adata`` from :func:`predict`."""
    from celltosg.train._donors import donor_calls

    check_donor_key(adata, donor_key)
    table = donor_calls(adata.obsm["celltosg_probabilities"], adata.obs[donor_key].astype(str).to_numpy(),
                        adata.uns["celltosg"]["classes"]).rename(columns={"donor": donor_key})
    out = Path(out)
    with atomic_file(out) as tmp:
        table.to_csv(tmp, index=False)
    return out

