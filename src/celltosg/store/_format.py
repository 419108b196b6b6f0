"""The TOSG store layout: file names, shard encoding and value checks.

A store is a directory::

    STORE/manifest.json          schema version, pack checksum, shard checksums and chunk files, inputs
    STORE/manifest.next.json     only while a build extends a complete store: that build's progress
    STORE/.celltosg.lock         the writer lock (see ``celltosg.store._lock``)
    STORE/var.parquet            node_index, node_id, symbol: the pack's RNA nodes, in pack order
    STORE/obs.parquet            one row per meta-cell: cell_id, shard, row, n_raw_cells, raw_cells, ...
    STORE/shards/<name>.zarr     AnnData zarr (format 3); X (n_rows, n_rna) summed counts

X is dense, chunked by rows (``chunk_rows`` rows x every column) and compressed losslessly with
Blosc-zstd and bit-shuffle, each chunk
guarded by a CRC-32C checksum so that a damaged chunk fails to read instead of returning wrong values. Integral non-negative values are stored in the smallest unsigned integer
type that holds them, other values as float32. Shards hold no timestamps, so the same rows always give
the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from celltosg.errors import MalformedInputError

SCHEMA_VERSION = 1
FORMAT_NAME = "celltosg-store"
MANIFEST = "manifest.json"
NEXT_MANIFEST = "manifest.next.json"  # progress of a build that extends a complete store
OBS = "obs.parquet"
VAR = "var.parquet"
SHARDS = "shards"
DEFAULT_CHUNK_ROWS = 256
DEFAULT_SHARD_ROWS = 10_000
#: Library size that stored counts are scaled to before log1p, wherever celltosg log-normalises them
#: (meta-cell building in ``build``, model inputs in ``loader``). It lives here, in the lowest layer
#: both packages import, so that the two siblings share one value without importing each other.
TARGET_SUM = 1e4
# Blosc settings are fixed so that equal inputs give byte-identical shards.
BLOSC_CNAME = "zstd"
BLOSC_CLEVEL = 3
OBS_REQUIRED = ("cell_id", "shard", "row", "n_raw_cells", "raw_cells")
RAW_CELLS_SEPARATOR = ";"
_UNSIGNED = (np.uint8, np.uint16, np.uint32)


def shard_path(root: Path, name: str) -> Path:
    """Directory of shard ``name`` inside store ``root``."""
    return Path(root) / SHARDS / f"{name}.zarr"


def var_frame(kg) -> pd.DataFrame:
    """The store's columns: one row per RNA node of ``kg`` (node_index, node_id, symbol)."""
    rna = kg.nodes.iloc[: kg.n_rna]
    return pd.DataFrame({
        "node_index": np.arange(kg.n_rna, dtype=np.int64),
        "node_id": rna["node_id"].astype(str).to_numpy(),
        "symbol": rna["symbol"].astype(str).to_numpy(),
    })


def block_values(block) -> np.ndarray:
    """The explicitly stored values of a dense array or scipy sparse block, flattened."""
    data = getattr(block, "data", None)
    if data is not None and hasattr(block, "nnz"):
        return np.asarray(data).ravel()
    return np.asarray(block).ravel()


class ValueStats:
    """Running minimum / maximum / integrality over row blocks, to pick the storage type."""

    def __init__(self, where: str):
        self.where = where
        self.max = 0.0
        self.integral = True

    def update(self, values: np.ndarray) -> None:
        """Fold in a flat array of values; NaN, infinite and negative values are errors."""
        if values.size == 0:
            return
        if values.dtype.kind == "f":
            if not np.isfinite(values).all():
                raise MalformedInputError(
                    f"{self.where}: expression values contain NaN or infinite entries; counts must be "
                    "finite. Drop or impute those cells before building")
            if self.integral and not np.array_equal(values, np.floor(values)):
                self.integral = False
        elif values.dtype.kind not in "iub":
            raise MalformedInputError(f"{self.where}: expression values have non-numeric type {values.dtype}")
        low = values.min()
        if low < 0:
            raise MalformedInputError(
                f"{self.where}: expression values include negative numbers (minimum {low}); the store "
                "holds counts. Use raw counts (X, .raw or a counts layer), or --lognorm for log-normalised data")
        self.max = max(self.max, float(values.max()))

    def dtype(self) -> np.dtype:
        """Smallest unsigned integer type holding every value when integral, else float32."""
        if self.integral:
            for candidate in _UNSIGNED:
                if self.max <= np.iinfo(candidate).max:
                    return np.dtype(candidate)
        return np.dtype(np.float32)


def shard_obs(obs: pd.DataFrame) -> pd.DataFrame:
    """Obs columns as written into a shard: index ``cell_id``, list values joined, no shard/row."""
    frame = obs.drop(columns=[c for c in ("shard", "row") if c in obs.columns]).copy()
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object:
            text = [_scalar_text(v) for v in values]
            # anndata writes missing strings only inside categoricals.
            has_missing = any(t is None for t in text)
            frame[column] = pd.Categorical(text) if has_missing else np.array(text, dtype=object)
    frame.index = pd.Index(frame.pop("cell_id").astype(str).to_numpy(), name="cell_id")
    return frame


def _scalar_text(value):
    if isinstance(value, list | tuple | np.ndarray):
        return RAW_CELLS_SEPARATOR.join(str(v) for v in value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)
