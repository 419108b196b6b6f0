"""Row 2: a deleted chunk file is refused on read, reported by verify, and rebuilt by rerunning the build
(zarr alone would read it as zeros)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.build.test_pipeline import mapped_counts
from tests.reliability.conftest import BUILD_KW

from celltosg.build import build_store
from celltosg.errors import StoreError
from celltosg.store import TOSGStore, verify_store


def test_deleted_chunk_is_refused_reported_and_rebuilt(built_store, tiny_kg):
    root, inputs, adatas = built_store
    store = TOSGStore.open(root)
    truth = pd.concat([mapped_counts(a) for a in adatas]).loc[store.obs["raw_cells"]].to_numpy()
    first = np.flatnonzero(store.obs["shard"] == "in0-0000")
    assert truth[first].any()  # the chunk below holds counts, so zeros would be wrong values
    (root / "shards" / "in0-0000.zarr" / "X" / "c" / "0" / "0").unlink()

    with pytest.raises(StoreError, match=r"shard in0-0000 .* damaged \(missing chunk X/c/0/0\)"):
        TOSGStore.open(root).read_rows(first)
    elsewhere = np.flatnonzero(store.obs["shard"] == "in1-0000")  # other shards stay readable
    np.testing.assert_array_equal(TOSGStore.open(root).read_rows(elsewhere), truth[elsewhere])
    problems = verify_store(root)
    assert any("damaged shard in0-0000: missing chunk X/c/0/0" in p for p in problems), problems

    rebuilt = build_store(inputs, root, kg=tiny_kg, **BUILD_KW)
    assert verify_store(root) == []
    np.testing.assert_array_equal(rebuilt.read_rows(np.arange(rebuilt.n_cells)), truth)


def test_extra_chunk_file_is_reported(built_store):
    root = built_store[0]
    stray = root / "shards" / "in0-0000.zarr" / "X" / "c" / "7" / "0"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"\0" * 16)
    assert any("unlisted chunk X/c/7/0" in p for p in verify_store(root))


def test_manifest_lists_every_file_of_every_shard_with_its_size(built_store):
    store = TOSGStore.open(built_store[0])
    for entry in store.manifest["shards"]:
        shard = store.root / "shards" / f"{entry['name']}.zarr"
        on_disk = {p.relative_to(shard).as_posix(): p.stat().st_size for p in shard.rglob("*") if p.is_file()}
        assert entry["chunks"] == on_disk
        assert {name for name in on_disk if name.startswith("X/c/")} == {"X/c/0/0"}  # 20 rows: one chunk

