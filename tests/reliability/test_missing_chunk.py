"""Row 2: a deleted chunk file is refused on read, reported by verify, and rebuilt by rerunning the build
(zarr alone would read it as zeros)."""

from __future__ import annotations

import numpy as np
import pytest
from tests.build.test_pipeline import mapped_counts, write_input

from celltosg.build import build_store
from celltosg.errors import StoreError
from celltosg.store import TOSGStore, verify_store

QC_KW = {"min_genes": 1, "min_cells": 1, "max_mito_fraction": 1.0}


def test_deleted_chunk_is_refused_reported_and_rebuilt(tmp_path, tiny_kg):
    source = tmp_path / "one.h5ad"
    adata = write_input(source)
    store = build_store([source], tmp_path / "store", kg=tiny_kg, metacell_size=1, shard_size=20,
                        chunk_rows=8, **QC_KW)
    expected = mapped_counts(adata).loc[store.obs["raw_cells"]].to_numpy()
    assert expected[:8].any()  # the chunk below holds non-zero counts, so zeros would be wrong values
    (store.root / "shards" / "one-0000.zarr" / "X" / "c" / "0" / "0").unlink()

    with pytest.raises(StoreError, match=r"shard one-0000 .* damaged \(missing chunk X/c/0/0\)"):
        TOSGStore.open(store.root).read_rows(np.arange(8))
    rows_elsewhere = np.arange(20, 28)  # other shards stay readable
    np.testing.assert_array_equal(TOSGStore.open(store.root).read_rows(rows_elsewhere), expected[rows_elsewhere])
    problems = verify_store(store.root)
    assert any("damaged shard one-0000: missing chunk X/c/0/0" in p for p in problems), problems

    rebuilt = build_store([source], tmp_path / "store", kg=tiny_kg, metacell_size=1, shard_size=20,
                          chunk_rows=8, **QC_KW)
    assert verify_store(rebuilt.root) == []
    np.testing.assert_array_equal(rebuilt.read_rows(np.arange(rebuilt.n_cells)), expected)


def test_extra_chunk_file_is_reported(tmp_path, tiny_kg):
    source = tmp_path / "one.h5ad"
    write_input(source)
    store = build_store([source], tmp_path / "store", kg=tiny_kg, metacell_size=4, **QC_KW)
    stray = store.root / "shards" / "one-0000.zarr" / "X" / "c" / "7" / "0"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"\0" * 16)
    assert any("unlisted chunk X/c/7/0" in p for p in verify_store(store.root))


def test_manifest_lists_every_file_of_every_shard_with_its_size(tmp_path, tiny_kg):
    source = tmp_path / "one.h5ad"
    write_input(source)
    store = build_store([source], tmp_path / "store", kg=tiny_kg, metacell_size=1, shard_size=20,
                        chunk_rows=8, **QC_KW)
    for entry in store.manifest["shards"]:
        shard = store.root / "shards" / f"{entry['name']}.zarr"
        on_disk = {p.relative_to(shard).as_posix(): p.stat().st_size for p in shard.rglob("*") if p.is_file()}
        assert entry["chunks"] == on_disk
        x_chunks = {name for name in on_disk if name.startswith("X/c/")}
        assert x_chunks == {f"X/c/{i}/0" for i in range(-(-entry["n_rows"] // 8))}  # all-zero chunks: none here
