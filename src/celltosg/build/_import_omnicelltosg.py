"""Import the OmniCellTOSG release (the authors' dataset) into a TOSG store.

The release (``../shared/design/REFERENCE.md``) holds dense float32 shards
``expression_matrix/*.npy`` of meta-cells x transcript columns, ``cell_metadata_with_mappings.parquet``
(``matrix_file_path`` / ``matrix_row_idx`` point into them), the entity tables ``s_name.csv``,
``s_desc.csv``, ``s_bio.csv`` (transcripts first, then proteins), COO edge files and
``bmg_gene_index.csv`` (``gene_name``, ``indices``: the ``;``-joined transcript columns of each gene).

A gene's value is copied into each of its transcript columns, so a gene is read as the maximum over its
columns (equal to every one of them in the release; columns that disagree are counted and reported).
Genes are then mapped onto the pack's RNA nodes by symbol and summed per node. Each matrix file becomes
one or more shards and one input of the manifest, so an interrupted import resumes; rows are read from
memory-mapped files in small blocks, so memory stays bounded.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from celltosg.errors import MalformedInputError
from celltosg.progress import progress
from celltosg.store import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_SHARD_ROWS,
    finalize_store,
    new_manifest,
    prepare_obs,
    safe_name,
    var_frame,
    write_shards,
)

logger = logging.getLogger(__name__)

METADATA = "cell_metadata_with_mappings.parquet"
GENE_INDEX = "bmg_gene_index.csv"
MATRIX_DIR = "expression_matrix"
ENTITY_FILES = {"s_name.csv": "Name", "s_desc.csv": "Description", "s_bio.csv": "Type"}
EDGE_FILES = ("edge_index.npy", "internal_edge_index.npy", "ppi_edge_index.npy")
# The release's mapped columns are kept over celltosg's own derivation from the raw columns.
RELEASE_MAPPED = ("sex_normalized", "development_stage_category", "development_stage_numeric_age")
_READ_ROWS = 32


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise MalformedInputError(f"{path} is missing: an OmniCellTOSG release root holds {what}. Point "
                                  "the importer at the directory that contains expression_matrix/")
    return path


def _load_npy(path: Path, what: str) -> np.ndarray:
    """Memory-map a numeric ``.npy`` array; anything else (npz, pickle, text, truncated) is a clear error."""
    with open(_need(path, what), "rb") as handle:
        magic = handle.read(6)
    reason = None
    if magic != b"\x93NUMPY":
        reason = "a .npz archive" if magic[:2] == b"PK" else "no .npy header"
    else:
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            reason = str(error)
        else:
            if array.dtype.kind not in "biuf":
                reason = f"values of type {array.dtype}"
    if reason is not None:
        raise MalformedInputError(f"{path} is not a numeric NumPy .npy array ({reason}); the release holds {what} "
                                  "there: replace the file with the release's original")
    return array


def _inside(root: Path, path: Path, named: str) -> Path:
    """``path`` with symlinks resolved, or an error when it lies outside the release ``root``."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise MalformedInputError(f"{METADATA} names {named!r}, which resolves to {resolved}, outside the "
                                  f"release root {root.resolve()}; matrix files must lie inside the release "
                                  "(fix matrix_file_path, or replace the symlink by the file)")
    return resolved


def _matrix_file(root: Path, matrix_dir: Path, named: str) -> Path:
    """The matrix file that ``matrix_file_path`` names, confined to the release root.

    The value is taken relative to ``expression_matrix/``; when no such file exists its bare file
    name there is tried.
    """
    path = _inside(root, matrix_dir / named, named)
    if path.is_file():
        return path
    return _inside(root, matrix_dir / Path(named).name, named)


def read_gene_index(path: Path) -> tuple[list[str], list[np.ndarray]]:
    """Genes and their transcript columns from ``bmg_gene_index.csv`` (``gene_name``, ``indices``)."""
    table = pd.read_csv(_need(path, "bmg_gene_index.csv (gene_name, indices)"), dtype=str)
    missing = [c for c in ("gene_name", "indices") if c not in table.columns]
    if missing:
        raise MalformedInputError(f"{path} lacks columns {missing}; expected gene_name and indices "
                                  "(';'-joined transcript column numbers)")
    table = table.dropna(subset=["gene_name", "indices"])
    genes, columns = [], []
    for gene, text in zip(table["gene_name"].str.strip(), table["indices"], strict=True):
        try:
            cols = np.array([int(part) for part in text.split(";") if part.strip()], dtype=np.int64)
        except ValueError as error:
            raise MalformedInputError(f"{path}: gene {gene} has non-integer indices {text!r}") from error
        if gene and len(cols):
            genes.append(gene)
            columns.append(cols)
    if not genes:
        raise MalformedInputError(f"{path} maps no gene to any column")
    return genes, columns


def release_summary(root: Path) -> dict:
    """Counts of the release's entity tables and edge files, checked for consistency.

    Returns n_transcripts, n_proteins (from ``s_bio.csv`` Type) and n_<edge file stem> edge counts.
    """
    summary: dict[str, int] = {}
    lengths = {}
    for name, column in ENTITY_FILES.items():
        path = _need(root / name, f"{name} (column {column})")
        try:
            table = pd.read_csv(path, usecols=[column])
        except ValueError as error:
            raise MalformedInputError(f"{path} lacks its column {column!r} ({error})") from error
        lengths[name] = len(table)
        if name == "s_bio.csv":
            types = table[column].astype(str)
            summary["n_transcripts"] = int((types == "Transcript").sum())
            summary["n_proteins"] = int((types == "Protein").sum())
            if (types.iloc[: summary["n_transcripts"]] != "Transcript").any():
                raise MalformedInputError(f"{path}: transcripts must come before proteins")
    if len(set(lengths.values())) != 1:
        raise MalformedInputError(f"entity tables disagree on the number of entities: {lengths}")
    n_entities = next(iter(lengths.values()))
    for name in EDGE_FILES:
        edges = _load_npy(root / name, f"{name} (COO int array of shape [2, E])")
        if edges.ndim != 2 or edges.shape[0] != 2:
            raise MalformedInputError(f"{root / name} has shape {edges.shape}; expected [2, E]")
        if edges.size and (int(edges.min()) < 0 or int(edges.max()) >= n_entities):
            raise MalformedInputError(f"{root / name} points outside the {n_entities} entities of s_name.csv")
        summary[f"n_{name.removesuffix('.npy')}"] = int(edges.shape[1])
    return summary


class _GeneRows:
    """Row-sliceable view (n_rows, n_rna) of selected rows of one release matrix, collapsed to genes.

    ``matrix``: memory-mapped (n_meta, n_transcripts) array; ``rows``: the rows, in store order;
    ``flat`` / ``starts``: the genes' columns laid end to end and where each gene starts;
    ``gene_map``: genes -> RNA nodes.
    """

    def __init__(self, matrix, rows: np.ndarray, flat: np.ndarray, starts: np.ndarray, gene_map):
        self.matrix, self.rows, self.flat, self.starts, self.gene_map = matrix, rows, flat, starts, gene_map
        self.shape = (len(rows), gene_map.n_rna)
        self.disagreements = 0

    def __getitem__(self, index: slice) -> sp.csr_matrix:
        rows = self.rows[index]
        blocks = []
        for start in range(0, len(rows), _READ_ROWS):
            wanted = rows[start:start + _READ_ROWS]
            values = np.asarray(self.matrix[wanted])[:, self.flat]
            high = np.maximum.reduceat(values, self.starts, axis=1)
            self.disagreements += int((np.minimum.reduceat(values, self.starts, axis=1) != high).sum())
            blocks.append(self.gene_map.apply(high))
        return sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, self.shape[1]))


def _release_obs(meta: pd.DataFrame) -> pd.DataFrame:
    """Store obs from the release metadata: ids, raw-cell provenance, celltosg's normalised columns."""
    from celltosg.build._metadata import normalize_metadata

    obs = normalize_metadata(meta.reset_index(drop=True))
    for column in RELEASE_MAPPED:
        if column in meta.columns:
            given = meta[column].reset_index(drop=True)
            obs[column] = given.where(given.notna(), obs[column])
    stems = meta["matrix_file_path"].map(lambda p: safe_name(Path(str(p)).stem)).to_numpy()
    obs.insert(0, "cell_id", [f"{s}:{int(r)}" for s, r in zip(stems, meta["matrix_row_idx"], strict=True)])
    if "raw_file_indices" in meta.columns:
        files = meta["raw_file"].astype(str).to_numpy() if "raw_file" in meta.columns else stems
        obs["raw_cells"] = [f"{f}:{i}" for f, i in zip(files, meta["raw_file_indices"].astype(str), strict=True)]
    return prepare_obs(obs, where=METADATA)


def _open_or_create(out: Path, kg, build: dict) -> tuple[dict, bool]:
    """The manifest of an import under way (resumed when it imports the same release the same way, else a
    fresh one) and whether it extends a complete store."""
    from celltosg.errors import StoreError
    from celltosg.store import load_progress

    manifest, extending = load_progress(out)
    if manifest is None:
        manifest = new_manifest(kg, chunk_rows=build["chunk_rows"])
        manifest["build"] = build
    elif manifest.get("build") != build or manifest["kg_checksum"] != kg.checksum:
        raise StoreError(f"{out} holds a store built otherwise (build {manifest.get('build')}, pack "
                         f"{manifest['kg_checksum']}); import into a new --out")
    return manifest, extending


def import_omnicelltosg(root, out, *, kg="human", force_mapping: bool = False,
                        shard_size: int = DEFAULT_SHARD_ROWS, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                        lock_timeout: float = 0):
    """Read an OmniCellTOSG release directory into a TOSG store, resumably.

    Each matrix file is one input of the store's manifest: rerunning an interrupted import skips the
    matrix files already written.

    Parameters
    ----------
    root
        The release root (``expression_matrix/``, ``cell_metadata_with_mappings.parquet``, ...).
    out
        Store directory (new, or an interrupted import of the same release to resume).
    kg
        Pack name, directory or KnowledgeGraph whose RNA nodes become the columns.
    force_mapping
        Import even when the release measures too few of the pack's RNA nodes (:func:`required_nodes`).
    lock_timeout
        Seconds to wait for another writer of ``out`` to finish (0: fail at once, naming it).

    Returns
    -------
    TOSGStore
    """
    import anndata as ad

    from celltosg.build._mapping import map_adata_genes
    from celltosg.kg import KnowledgeGraph
    from celltosg.store import TOSGStore, discard_unstarted, load_progress, store_lock

    root, out = Path(root), Path(out)
    kg = kg if isinstance(kg, KnowledgeGraph) else KnowledgeGraph.load(kg)
    summary = release_summary(root)
    matrix_dir = _need(root / MATRIX_DIR, "expression_matrix/ with the .npy shards")
    meta = pd.read_parquet(_need(root / METADATA, f"{METADATA} (one row per meta-cell)"))
    missing = [c for c in ("matrix_file_path", "matrix_row_idx") if c not in meta.columns]
    if missing:
        raise MalformedInputError(f"{root / METADATA} lacks columns {missing}, which locate each row in "
                                  "expression_matrix/")
    genes, columns = read_gene_index(root / GENE_INDEX)
    flat = np.concatenate(columns)
    starts = np.concatenate([[0], np.cumsum([len(c) for c in columns])[:-1]])
    gene_map = map_adata_genes(ad.AnnData(var=pd.DataFrame(index=pd.Index(genes))), kg, force=force_mapping,
                               where=str(root / GENE_INDEX))
    meta = meta.sort_values(["matrix_file_path", "matrix_row_idx"], kind="stable").reset_index(drop=True)
    if meta.empty:
        raise MalformedInputError(f"{root / METADATA} has no rows, so the release has no meta-cell to import; "
                                  "point the importer at a complete release")
    groups = sorted(meta.groupby("matrix_file_path", sort=True).indices.items())
    paths = {name: _matrix_file(root, matrix_dir, str(name)) for name, _ in groups}  # all checked first
    release = {"summary": summary, "meta": meta, "obs": _release_obs(meta), "flat": flat, "starts": starts,
               "gene_map": gene_map, "n_genes": len(genes)}
    build = {"importer": "omnicelltosg", "root": str(root.resolve()), "shard_size": shard_size,
             "chunk_rows": chunk_rows}
    # a file or a foreign directory is refused before the lock file is made
    fresh, created = load_progress(out)[0] is None, not out.exists()
    with store_lock(out, timeout=lock_timeout):
        try:
            _import_locked(out, kg, build, release, [(name, rows, paths[name]) for name, rows in groups])
        except BaseException:
            discard_unstarted(out, fresh=fresh, created=created)
            raise
    return TOSGStore.open(out, kg=kg)


def _import_locked(out: Path, kg, build: dict, release: dict, groups: list[tuple[str, np.ndarray, Path]]):
    """The body of :func:`import_omnicelltosg`, run while holding the store's writer lock: one input per
    matrix file ``(name in the metadata, metadata positions, checked path)``."""
    from celltosg.store import input_finished, remove_unlisted_shards, save_progress

    summary, meta, obs, flat = release["summary"], release["meta"], release["obs"], release["flat"]
    shard_size, chunk_rows = build["shard_size"], build["chunk_rows"]
    manifest, extending = _open_or_create(out, kg, build)
    manifest["release"] = {**summary, "mapping": release["gene_map"].report(), "n_genes": release["n_genes"],
                           "n_gene_columns": int(len(flat))}
    save_progress(out, manifest, extending=extending)
    for file_name, positions, path in progress(groups, description="importing matrices"):
        matrix = _load_npy(path, f"the matrix {file_name} named by {METADATA}")
        key = f"{Path(str(file_name)).name}|{path.stat().st_size}|{path.stat().st_mtime_ns}"
        if input_finished(out, manifest["inputs"].get(key)):
            continue
        rows = meta["matrix_row_idx"].to_numpy(dtype=np.int64)[positions]
        if matrix.ndim != 2 or matrix.shape[1] != summary["n_transcripts"]:
            raise MalformedInputError(f"{path} has shape {matrix.shape}; expected (rows, "
                                      f"{summary['n_transcripts']}) transcript columns as in s_bio.csv")
        if len(rows) and (rows.min() < 0 or rows.max() >= matrix.shape[0]):
            raise MalformedInputError(f"{METADATA} points at rows outside {path} ({matrix.shape[0]} rows)")
        if flat.max() >= matrix.shape[1]:
            raise MalformedInputError(f"{GENE_INDEX} names column {flat.max()} but {path} has "
                                      f"{matrix.shape[1]} columns")
        view = _GeneRows(matrix, rows, flat, release["starts"], release["gene_map"])
        shards = write_shards(out, safe_name(Path(str(file_name)).stem), view, obs.iloc[positions],
                              var_frame(kg), shard_rows=shard_size, chunk_rows=chunk_rows)
        disagreements = view.disagreements // 2  # every row is read twice (type scan, then write)
        if disagreements:
            logger.warning("%s: %d (row, gene) values differ between a gene's transcript columns; the "
                           "maximum was kept", path, disagreements)
        manifest["inputs"][key] = {"status": "done", "path": str(path), "n_rows": len(rows),
                                   "collapse_disagreements": disagreements, "shards": shards}
        save_progress(out, manifest, extending=extending)
    remove_unlisted_shards(out, manifest)
    records = sorted(manifest["inputs"].values(), key=lambda r: r["path"])
    manifest["shards"] = [entry for r in records for entry in r["shards"]]
    finalize_store(out, kg, manifest)
