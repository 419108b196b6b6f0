"""TOSGStore: read a store's tables and expression rows, whole zarr chunks at a time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from celltosg.errors import QueryError, StoreError
from celltosg.store._format import OBS, VAR, shard_path
from celltosg.store._lock import holder, is_locked
from celltosg.store._manifest import read_manifest
from celltosg.store._shard import chunk_problems, open_shard_x

# A build that extends a store replaces obs.parquet, then manifest.json: a reader that opens in between
# sees the two disagree and reads the manifest again.
_OPEN_RETRIES = 20
_OPEN_WAIT_S = 0.05


class TOSGStore:
    """A read-only TOSG store: ``obs`` (one row per meta-cell), ``var`` (RNA nodes) and expression shards.

    Row ``i`` of :attr:`obs` is global position ``i``; every expression method takes such positions.
    """

    def __init__(self, root: Path, manifest: dict, kg=None):
        self.root = Path(root)
        self._manifest = manifest
        self._kg = kg
        self._arrays: dict[int, object] = {}

    @classmethod
    def open(cls, path: str | Path, *, kg=None) -> TOSGStore:
        """Open a complete store.

        ``kg`` optionally gives the pack (a KnowledgeGraph or a pack path) when the recorded one has
        moved; its checksum must match the store's.
        """
        root = Path(path)
        for _ in range(_OPEN_RETRIES):
            manifest = _complete_manifest(root)
            if _obs_rows(root) == manifest["n_cells"]:
                break
            time.sleep(_OPEN_WAIT_S)
        else:
            raise StoreError(f"store {root}: {OBS} has {_obs_rows(root)} rows, the manifest says "
                             f"{manifest['n_cells']} (an extension of the store stopped half-way); rerun the "
                             "`celltosg build` command that extended it, then `celltosg store verify`")
        store = cls(root, manifest)
        if kg is not None:
            store._kg = store._check_kg(kg)
        return store

    def __repr__(self) -> str:
        return f"TOSGStore({str(self.root)!r}, n_cells={self.n_cells}, n_nodes={self.n_nodes})"

    # ------------------------------------------------------------------ tables
    @property
    def manifest(self) -> dict:
        """The parsed ``manifest.json``."""
        return self._manifest

    @cached_property
    def obs(self) -> pd.DataFrame:
        """One row per meta-cell (RangeIndex = global position): cell_id, shard, row, n_raw_cells, ..."""
        obs = pd.read_parquet(self.root / OBS)
        if len(obs) != self.n_cells:
            raise StoreError(f"{self.root / OBS} has {len(obs)} rows, the manifest says {self.n_cells}; open "
                             "the store again (a build may have extended it since), else run `celltosg store verify`")
        return obs

    @cached_property
    def var(self) -> pd.DataFrame:
        """The expression columns: node_index, node_id, symbol (the pack's RNA nodes in order)."""
        return pd.read_parquet(self.root / VAR)

    @property
    def n_cells(self) -> int:
        return int(self._manifest["n_cells"])

    @property
    def n_nodes(self) -> int:
        """Number of expression columns (the pack's RNA nodes)."""
        return int(self._manifest["n_nodes"])

    @property
    def kg(self):
        """The store's knowledge graph (the recorded pack, checked against the recorded checksum)."""
        if self._kg is None:
            self._kg = self._check_kg(self._manifest["kg_pack"])
        return self._kg

    def _check_kg(self, kg):
        from celltosg.kg import KnowledgeGraph

        if not isinstance(kg, KnowledgeGraph):
            kg = KnowledgeGraph.load(kg)
        expected = self._manifest["kg_checksum"]
        if kg.checksum != expected:
            raise StoreError(
                f"the knowledge-graph pack {kg.pack_dir} has checksum {kg.checksum}, but store {self.root} "
                f"was built with pack {self._manifest['kg_pack']!r} of checksum {expected}; open the store "
                "with that pack (TOSGStore.open(path, kg=PACK)) or rebuild the store with this one")
        return kg

    # -------------------------------------------------------------- locations
    @cached_property
    def _location(self) -> tuple[np.ndarray, np.ndarray]:
        """Shard number (into manifest shards) and row inside the shard of every global position."""
        names = [entry["name"] for entry in self._manifest["shards"]]
        # Only two columns are needed: reading the whole obs table would cost far more than the rows asked.
        table = self.__dict__.get("obs")
        if table is None:
            table = pd.read_parquet(self.root / OBS, columns=["shard", "row"])
            if len(table) != self.n_cells:
                raise StoreError(f"{self.root / OBS} has {len(table)} rows, the manifest says {self.n_cells}; "
                                 "open the store again (a build may have extended it since), else run "
                                 "`celltosg store verify`")
        codes = pd.Categorical(table["shard"], categories=names).codes.astype(np.int64)
        if (codes < 0).any():
            raise StoreError(f"{self.root / OBS} names shards missing from the manifest; rebuild the store")
        return codes, table["row"].to_numpy(dtype=np.int64)

    @cached_property
    def _chunk_rows(self) -> np.ndarray:
        """Rows per zarr chunk of each shard (a shard shorter than one chunk is one chunk)."""
        size = int(self._manifest["chunk_rows"])
        return np.array([max(1, min(size, entry["n_rows"])) for entry in self._manifest["shards"]],
                        dtype=np.int64)

    def _array(self, shard: int):
        if shard not in self._arrays:
            entry = self._manifest["shards"][shard]
            path = shard_path(self.root, entry["name"])
            problems = chunk_problems(path, entry)
            if problems:
                raise StoreError(f"shard {entry['name']} of store {self.root} is damaged ({'; '.join(problems[:3])}"
                                 f"{'; ...' if len(problems) > 3 else ''}): reading it would give wrong values. "
                                 "Rerun the `celltosg build` command that made the store to rebuild the shard")
            self._arrays[shard] = open_shard_x(path)
        return self._arrays[shard]

    def _positions(self, positions) -> np.ndarray:
        pos = np.asarray(positions).ravel()
        if pos.size and pos.dtype.kind not in "iu":
            raise QueryError(f"positions must be integers, got dtype {pos.dtype}")
        pos = pos.astype(np.int64)
        if pos.size and (pos.min() < 0 or pos.max() >= self.n_cells):
            raise QueryError(f"positions must lie in 0..{self.n_cells - 1}; got {pos.min()}..{pos.max()}")
        return pos

    def _chunk_groups(self, pos: np.ndarray):
        """Yield (shard, chunk start, chunk stop, indices into pos) per zarr chunk, in storage order."""
        codes, rows = self._location
        shard, row = codes[pos], rows[pos]
        chunk_rows = self._chunk_rows
        chunk = row // chunk_rows[shard] if len(pos) else row
        order = np.lexsort((chunk, shard))
        key = np.stack([shard[order], chunk[order]], axis=1)
        bounds = np.flatnonzero(np.any(np.diff(key, axis=0) != 0, axis=1)) + 1
        for group in np.split(order, bounds) if len(order) else []:
            s = int(shard[group[0]])
            start = int(chunk[group[0]] * chunk_rows[s])
            stop = min(start + int(chunk_rows[s]), int(self._manifest["shards"][s]["n_rows"]))
            yield s, start, stop, group

    def _read_chunk(self, shard: int, start: int, stop: int) -> np.ndarray:
        try:
            return self._array(shard)[start:stop]
        except StoreError:
            raise
        except Exception as error:  # damaged chunk files surface as codec or key errors
            name = self._manifest["shards"][shard]["name"]
            raise StoreError(f"cannot read rows {start}..{stop} of shard {name} ({error}); run "
                             f"`celltosg store verify {self.root}`") from error

    # -------------------------------------------------------------- expression
    def read_rows(self, positions) -> np.ndarray:
        """Expression of the given global positions, in the order asked.

        Returns float32 (len(positions), n_nodes). Each needed zarr chunk is read once.
        """
        pos = self._positions(positions)
        return self.read_rows_into(pos, np.empty((len(pos), self.n_nodes), dtype=np.float32))

    def read_rows_into(self, positions, out: np.ndarray) -> np.ndarray:
        """Fill ``out`` (len(positions), n_nodes), any float dtype, with the rows asked and return it.

        Chunks are decoded one at a time straight into ``out``, so memory beyond ``out`` stays at one
        decoded chunk (chunk_rows x n_nodes in the stored integer or float32 type).
        """
        pos = self._positions(positions)
        if out.shape != (len(pos), self.n_nodes):
            raise QueryError(f"out has shape {out.shape}; expected ({len(pos)}, {self.n_nodes})")
        _, rows = self._location
        for shard, start, stop, group in self._chunk_groups(pos):
            _place(out, group, self._read_chunk(shard, start, stop), rows[pos[group]] - start)
        return out

    def iter_chunks(self, positions=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(positions, X)`` one zarr chunk at a time, in storage order.

        ``positions`` (default: all) selects rows; within a chunk they keep the order asked. X is
        float32 (len(positions), n_nodes).
        """
        pos = np.arange(self.n_cells, dtype=np.int64) if positions is None else self._positions(positions)
        _, rows = self._location
        for shard, start, stop, group in self._chunk_groups(pos):
            block = self._read_chunk(shard, start, stop)
            x = np.empty((len(group), self.n_nodes), dtype=np.float32)
            _place(x, np.arange(len(group)), block, rows[pos[group]] - start)
            yield pos[group], x

    # ------------------------------------------------------------ inspection
    def verify(self) -> list[str]:
        """Problems found by checking every shard and table against the manifest (empty when sound)."""
        from celltosg.store._verify import verify_store

        return verify_store(self.root)

    def info(self) -> dict:
        """Counts and sizes: n_cells, n_nodes, expression_bytes, counts per tissue / disease / cell type /
        source (see :func:`celltosg.store.store_info`)."""
        from celltosg.store._verify import store_info

        return store_info(self)


def _complete_manifest(root: Path) -> dict:
    """The manifest of a complete store with its tables on disk, else a StoreError saying why not."""
    manifest = read_manifest(root)
    if not manifest.get("complete"):
        if is_locked(root):
            raise StoreError(f"store {root} is being built now by {holder(root)}; wait for that build to "
                             "finish, then open it again")
        raise StoreError(f"store {root} is incomplete: its build was interrupted; rerun the same "
                         "`celltosg build` command to resume it")
    for name in (OBS, VAR):
        if not (root / name).is_file():
            raise StoreError(f"store {root} lacks {name}; rerun the build to rewrite it")
    return manifest


def _obs_rows(root: Path) -> int:
    """Rows of ``obs.parquet`` from its footer (no data read)."""
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(root / OBS).metadata.num_rows
    except (OSError, ValueError) as error:  # pyarrow raises ArrowInvalid (a ValueError) for damaged files
        raise StoreError(f"{root / OBS} cannot be read ({error}); run `celltosg store verify {root}` and "
                         "rerun the build to rewrite it") from error


def _place(out: np.ndarray, targets: np.ndarray, block: np.ndarray, local: np.ndarray) -> None:
    """``out[targets] = block[local]`` cast to out's dtype; one straight copy when a whole chunk lands on
    consecutive rows (the streaming case), avoiding the gathered temporary."""
    whole = len(local) == len(block) and bool((local == np.arange(len(block))).all())
    if whole and len(targets) and bool((np.diff(targets) == 1).all()):
        np.copyto(out[targets[0]:targets[0] + len(targets)], block, casting="unsafe")
    else:
        out[targets] = block[local]
